"""The process that serves one model version: MLflow's own scoring server app under uvicorn.

    python -m plugins.serving.model_server --model-uri models:/churn/3 --port 8101
    python -m plugins.serving.model_server --model-uri models:/churn/3 --fd 3

With ``--fd`` it serves on a listening socket it inherited (the local runtime binds the
port before it starts the process, so no other process can take it while MLflow loads).

It answers MLflow's scoring protocol: ``POST /invocations`` (``dataframe_split``,
``dataframe_records``, ``instances``, ``inputs``; CSV too), ``GET /ping`` and ``GET /health``
once the model is loaded. A model that raises while predicting answers 500 (MLflow's own
server answers 400, as if the request were wrong), so the router counts it against the
version. A model that cannot be loaded ends the process with status 1 and
one line on stderr saying why, which the local runtime reports.

It imports only MLflow, uvicorn and the standard library, so any interpreter with those
can run it (``serving.python``). The parent gives ``MLFLOW_TRACKING_URI`` for ``models:/``
and ``runs:/`` URIs.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any

LOAD_FAILED = 1
HOST = "127.0.0.1"


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m plugins.serving.model_server",
        description="Serve one MLflow model version with MLflow's scoring protocol.",
    )
    parser.add_argument("--model-uri", required=True, help="models:/name/3, runs:/..., a path")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", type=int, help="bind this port of --host")
    where.add_argument("--fd", type=int, help="serve on this inherited listening socket")
    parser.add_argument("--host", default=HOST, help=f"with --port; default: {HOST}")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # Imported after the arguments are read: MLflow takes seconds to import.
    import uvicorn
    from mlflow.pyfunc import load_model
    from mlflow.pyfunc.scoring_server import init

    try:
        model = load_model(arguments.model_uri)
    except Exception as exc:  # whatever the flavor raises, the parent needs one line
        reason = " ".join(str(exc).split()) or type(exc).__name__
        print(f"cannot load model {arguments.model_uri}: {reason}", file=sys.stderr, flush=True)
        return LOAD_FAILED
    _fail_as_server_errors(model)
    # uvicorn stops on SIGTERM after the requests in flight; access logs would grow
    # the log file by a line a request.
    config = uvicorn.Config(
        init(model),
        host=arguments.host,
        port=arguments.port or 0,
        access_log=False,
        log_level="info",
        timeout_graceful_shutdown=10,
    )
    listener = None if arguments.fd is None else socket.socket(fileno=arguments.fd)
    uvicorn.Server(config).run(sockets=None if listener is None else [listener])
    return 0


def _fail_as_server_errors(model: Any) -> None:
    """Make a model's own failure an MLflow ``INTERNAL_ERROR`` (HTTP 500); MLflow's
    exceptions (a request that does not fit the model's signature) stay what they are."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INTERNAL_ERROR

    predict = model.predict

    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return predict(*args, **kwargs)
        except MlflowException:
            raise
        except Exception as exc:
            message = f"the model failed: {type(exc).__name__}: {exc}"
            raise MlflowException(message, error_code=INTERNAL_ERROR) from exc

    model.predict = guarded


if __name__ == "__main__":
    sys.exit(main())
