"""The Kubernetes serving runtime: a deployment's versions as a KServe InferenceService that
splits canary traffic itself, or as a Deployment, Service and HorizontalPodAutoscaler per
version behind Paved's router (``kubernetes.serving_mode``).

``ServingRuntime.splits_traffic`` is fixed when the runtime is made, while the mode is a
setting: so there are two runtime values, both named ``kubernetes``. ``KUBERNETES`` is the
one for the default mode (``kserve``), to register in ``paved_serving_runtimes``;
``kubernetes_runtime(settings)`` gives the one matching the settings, for code that holds
them. Applied through the value of the other mode, ``apply`` fails with a line saying so
rather than serving traffic the router cannot route.

The portal's service account needs ``create``, ``patch``, ``list`` and ``delete`` on
``inferenceservices`` (serving.kserve.io) or on ``deployments`` (apps), ``services`` and
``horizontalpodautoscalers`` (autoscaling) in each team namespace, and ``list`` on them
cluster-wide: ``remove`` is given only the deployment's name, so it finds its objects by
label in every namespace.

``manifests`` builds what is sent (and decides where pods read each model from);
``cluster`` sends it.
"""

from plugins.serving.kubernetes.cluster import (
    KUBERNETES,
    KUBERNETES_DEPLOYMENTS,
    apply,
    kubernetes_runtime,
    remove,
)
from plugins.serving.kubernetes.manifests import deployment_manifests, inference_service

__all__ = [
    "KUBERNETES",
    "KUBERNETES_DEPLOYMENTS",
    "apply",
    "deployment_manifests",
    "inference_service",
    "kubernetes_runtime",
    "remove",
]
