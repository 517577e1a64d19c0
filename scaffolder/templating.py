"""Template expressions as Backstage writes them: ``${{ parameters.name }}``, evaluated with
Jinja2's sandbox.

A template sees only what it is given (``parameters``, ``steps``, ``user``, ``values``...):
no files, no modules, no attribute that starts with an underscore; anything else is a
:class:`TemplatingError` naming the line. As in Backstage, a string that is one expression
and nothing else keeps its value's type (``${{ parameters.tags }}`` stays a list), and an
undefined value renders as nothing. Backstage's filters are here: ``parseRepoUrl``,
``parseEntityRef``, ``pick``, ``projectSlug``, and Nunjucks' ``dump``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from jinja2 import ChainableUndefined, Undefined
from jinja2 import TemplateError as JinjaError
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from catalog.refs import parse_ref
from portal.errors import FieldProblem, InvalidInput

# One expression and nothing else around it: its value is returned as it is.
_SINGLE_EXPRESSION = re.compile(r"^\s*\$\{\{(?P<expression>(?:(?!\}\}).)*)\}\}\s*$", re.DOTALL)
REPO_URL_FORM = "host?owner=<owner>&repo=<repo>, e.g. github.com?owner=acme&repo=scorer"
EXPRESSION_FORM = "${{ <expression> }} using what the template is given and its filters"


class TemplatingError(InvalidInput):
    """A template that cannot be rendered: its syntax, an unsafe access, a failing filter.
    Its problem names ``field``, where the text was (``spec.steps[0].input.message``, a
    template file's path), and the line in it."""

    def __init__(self, message: str, *, line: int | None = None, field: str = "template") -> None:
        where = f" (line {line})" if line else ""
        self.line = line
        problem = FieldProblem(field, f"{message}{where}", EXPRESSION_FORM)
        super().__init__(f"{field}{where}: {message}", [problem])


def parse_repo_url(url: str) -> dict[str, str]:
    """``github.com?owner=acme&repo=scorer`` as its parts: host, owner, repo, and for the
    hosts that have them organization, workspace and project."""
    if not isinstance(url, str) or "?" not in url:
        raise ValueError(f"{url!r} is not a repository location: expected {REPO_URL_FORM}")
    host, _, query = url.partition("?")
    parts = {key: values[-1] for key, values in parse_qs(query).items() if values}
    if not host or not parts.get("repo"):
        raise ValueError(f"{url!r} has no host or no repo: expected {REPO_URL_FORM}")
    found = {"host": host, "repo": parts["repo"]}
    for key in ("owner", "organization", "workspace", "project"):
        if parts.get(key):
            found[key] = parts[key]
    return found


def parse_entity_ref(ref: str, context: Mapping[str, str] | None = None) -> dict[str, str]:
    """``group:default/fraud`` as ``{kind, namespace, name}``; ``defaultKind`` and
    ``defaultNamespace`` in ``context`` fill in what the ref leaves out."""
    context = context or {}
    parsed = parse_ref(
        ref,
        default_kind=context.get("defaultKind"),
        default_namespace=context.get("defaultNamespace", "default"),
    )
    return {"kind": parsed.kind, "namespace": parsed.namespace, "name": parsed.name}


def pick(value: Mapping[str, Any], key: str) -> Any:
    """One key of an object (``parseRepoUrl | pick('owner')``)."""
    return value.get(key) if isinstance(value, Mapping) else None


def project_slug(url: str) -> str:
    """``owner/repo`` (or ``organization/repo``) of a repository location."""
    parts = parse_repo_url(url)
    return f"{parts.get('owner') or parts.get('organization', '')}/{parts['repo']}"


def dump(value: Any) -> str:
    """A value as JSON text."""
    return json.dumps(value, default=str)


FILTERS: dict[str, Callable[..., Any]] = {
    "parseRepoUrl": parse_repo_url,
    "parseEntityRef": parse_entity_ref,
    "pick": pick,
    "projectSlug": project_slug,
    "dump": dump,
}


EXAMPLES = {
    "parseRepoUrl": "${{ parameters.repoUrl | parseRepoUrl }}",
    "parseEntityRef": "${{ parameters.owner | parseEntityRef }}",
    "pick": "${{ parameters.repoUrl | parseRepoUrl | pick('owner') }}",
    "projectSlug": "${{ parameters.repoUrl | projectSlug }}",
    "dump": "${{ parameters | dump }}",
}


def list_extensions() -> dict[str, Any]:
    """The filters and globals expressions may use, as ``/v2/templating-extensions``
    lists them."""
    filters = {
        name: {
            "description": (function.__doc__ or name).strip().splitlines()[0],
            "examples": [{"example": EXAMPLES[name]}] if name in EXAMPLES else [],
        }
        for name, function in FILTERS.items()
    }
    functions = {
        "range": {
            "description": "The numbers from start to stop (exclusive), by step",
            "examples": [{"example": "${{ range(3) | list }}"}],
        }
    }
    return {"filters": filters, "globals": {"functions": functions, "values": {}}}


# How large a value one expression may build ("x" * n, n ** m): a template renders files,
# not gigabytes, and an expression that tries must not take the portal's memory with it.
MAX_LENGTH = 1_000_000
MAX_EXPONENT = 128


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's sandbox, in which nothing given can be changed (``steps.update(...)``), no
    expression builds a huge value, and an unsafe attribute is refused out loud instead of
    rendering nothing."""

    intercepted_binops = frozenset({"*", "**"})

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        raise SecurityError(f"{attribute!r} of a {type(obj).__name__} is out of a template's reach")

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"an exponent above {MAX_EXPONENT} is out of a template's reach")
        if operator == "*":
            sized = [side for side in (left, right) if isinstance(side, str | list | tuple)]
            times = [side for side in (left, right) if isinstance(side, int)]
            if sized and times and len(sized[0]) * times[0] > MAX_LENGTH:
                raise SecurityError(
                    f"a value longer than {MAX_LENGTH:,} is out of a template's reach"
                )
        return super().call_binop(context, operator, left, right)


class Templater:
    """Renders template strings, and every string inside a structure, with ``context``."""

    def __init__(self, extra_filters: Mapping[str, Callable[..., Any]] | None = None) -> None:
        self.environment = _Sandbox(
            variable_start_string="${{",
            variable_end_string="}}",
            undefined=ChainableUndefined,
            autoescape=False,
            keep_trailing_newline=True,
        )
        # Nothing but what the context brings (Jinja's cycler, joiner, lipsum... are not
        # Backstage's), and range, which Nunjucks has too.
        self.environment.globals = {"range": self.environment.globals["range"]}
        self.environment.filters.update(FILTERS)
        self.environment.filters.update(extra_filters or {})

    def render_text(self, text: str, context: Mapping[str, Any], *, field: str = "template") -> str:
        """``text`` with every expression replaced by its value, as text."""
        try:
            return self.environment.from_string(text).render(context)
        except JinjaError as exc:
            line = getattr(exc, "lineno", None)
            raise TemplatingError(_explain(exc), line=line, field=field) from None
        except (ValueError, TypeError, InvalidInput) as exc:  # a filter refusing its input
            raise TemplatingError(str(exc), field=field) from None

    def render_value(self, value: Any, context: Mapping[str, Any], *, field: str = "input") -> Any:
        """``value`` with its strings rendered, all the way down; a string that is a single
        expression becomes that expression's value, with its type."""
        if isinstance(value, str):
            single = _SINGLE_EXPRESSION.match(value)
            if single is None:
                return self.render_text(value, context, field=field)
            return self._evaluate(single.group("expression"), context, field)
        if isinstance(value, Mapping):
            return {
                key: self.render_value(inner, context, field=f"{field}.{key}")
                for key, inner in value.items()
            }
        if isinstance(value, list):
            return [
                self.render_value(inner, context, field=f"{field}[{index}]")
                for index, inner in enumerate(value)
            ]
        return value

    def _evaluate(self, expression: str, context: Mapping[str, Any], field: str) -> Any:
        try:
            found = self.environment.compile_expression(expression, undefined_to_none=True)(
                **context
            )
        except JinjaError as exc:
            line = getattr(exc, "lineno", None)
            raise TemplatingError(_explain(exc), line=line, field=field) from None
        except (ValueError, TypeError, InvalidInput) as exc:
            raise TemplatingError(str(exc), field=field) from None
        return _unwrap_undefined(found)


def _unwrap_undefined(value: Any) -> Any:
    """Undefined values (a missing parameter) as None; anything else as it is."""
    if isinstance(value, ChainableUndefined):
        return None
    return value


def _explain(exc: JinjaError) -> str:
    message = str(exc.message or exc).strip().splitlines()[0] if str(exc).strip() else ""
    return message or type(exc).__name__
