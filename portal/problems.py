"""One shape for every error: RFC 9457 problem JSON for clients, an HTML page for people."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, RedirectResponse, Response

from portal.errors import Denied, FieldProblem, NotAuthenticated, PavedError
from portal.shell import Shell, wants_html

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("paved.errors")

# Backstage's error names for each status: every problem also carries Backstage's error
# members (``error``, ``request``, ``response``), so Backstage's clients read Paved's errors.
BACKSTAGE_NAMES = {
    400: "InputError",
    401: "AuthenticationError",
    403: "NotAllowedError",
    404: "NotFoundError",
    409: "ConflictError",
    422: "InputError",
    503: "ServiceUnavailableError",
}
BACKSTAGE_STYLE = "paved.backstage_statuses"
BACKSTAGE_BODIES = "paved.backstage_bodies"


async def use_backstage_statuses(request: Request) -> None:
    """A router dependency for Backstage-compatible APIs: invalid input is 400, as there,
    and errors say ``application/json`` (Backstage's clients read no other error body).

    Paved answers invalid input with 422 and ``application/problem+json`` elsewhere.
    """
    request.state.error_style = BACKSTAGE_STYLE


async def use_backstage_error_bodies(request: Request) -> None:
    """A router dependency for Backstage-shaped APIs that keep Paved's statuses (invalid
    input is 422): errors say ``application/json``, which Backstage's clients read."""
    request.state.error_style = BACKSTAGE_BODIES


def problem_type(slug: str) -> str:
    return f"urn:paved:problem:{slug}"


def respond_with_problem(
    request: Request,
    *,
    status: int,
    slug: str,
    title: str,
    detail: str,
    errors: list[FieldProblem] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    style = getattr(request.state, "error_style", None)
    backstage_style = style in (BACKSTAGE_STYLE, BACKSTAGE_BODIES)
    if status == 422 and style == BACKSTAGE_STYLE:
        status = 400
    body: dict[str, Any] = {
        "type": problem_type(slug),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": getattr(request.state, "request_id", None),
    }
    if errors:
        body["errors"] = [problem.as_dict() for problem in errors]
    body.update(extra or {})
    body["error"] = {"name": BACKSTAGE_NAMES.get(status, "Error"), "message": detail}
    body["request"] = {"method": request.method, "url": str(request.url.path)}
    body["response"] = {"statusCode": status}
    shell: Shell | None = getattr(request.app.state, "shell", None)
    if shell is not None and wants_html(request):
        return shell.render(request, "error.html", {"problem": body}, status_code=status)
    # Backstage's clients read an error's body only when it says application/json.
    media_type = "application/json" if backstage_style else PROBLEM_MEDIA_TYPE
    return JSONResponse(body, status_code=status, media_type=media_type)


def sign_in_url(request: Request) -> str:
    """The sign-in page, coming back here afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/auth/login?" + urlencode({"next": here})


async def respond_to_paved_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PavedError)
    if isinstance(exc, NotAuthenticated):
        # A person without a session is sent to sign in, and brought back afterwards.
        if request.headers.get("HX-Request") == "true":
            return Response(status_code=401, headers={"HX-Redirect": sign_in_url(request)})
        if request.method == "GET" and wants_html(request):
            return RedirectResponse(sign_in_url(request), status_code=303)
    extra = {"reasons": exc.reasons, "action": exc.action} if isinstance(exc, Denied) else None
    return respond_with_problem(
        request,
        status=exc.status,
        slug=exc.slug,
        title=exc.title,
        detail=exc.detail,
        errors=exc.errors,
        extra=extra,
    )


def _field_problem(error: dict[str, Any]) -> FieldProblem:
    location = [str(part) for part in error.get("loc", ())]
    # FastAPI's first element says where (body, query, path, header); keep it for
    # query/path/header, drop it for the body so the field reads as the client sent it.
    if location and location[0] == "body":
        location = location[1:]
    field = ".".join(location) or "body"
    message = "missing" if error.get("type") == "missing" else str(error.get("msg", "invalid"))
    expected = _expected(error)
    return FieldProblem(field, message, expected)


def _expected(error: dict[str, Any]) -> str | None:
    context = error.get("ctx") or {}
    kind = str(error.get("type", ""))
    if "expected" in context:
        return str(context["expected"])
    if kind == "missing":
        return "a value"
    if kind.endswith(("_parsing", "_type")):
        return "a valid " + kind.removesuffix("_parsing").removesuffix("_type").replace("_", " ")
    if "pattern" in context:
        return f"text matching {context['pattern']}"
    bounds = [
        f"{words} {context[key]}"
        for key, words in (("ge", "at least"), ("gt", "more than"), ("le", "at most"),
                           ("lt", "less than"))
        if key in context
    ]  # fmt: skip
    if bounds:
        return "a number " + " and ".join(bounds)
    return None  # the message already says what was expected


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = [_field_problem(error) for error in exc.errors()]
    detail = "; ".join(f"{p.field}: {p.message}" for p in problems)
    return respond_with_problem(
        request,
        status=422,
        slug="invalid-input",
        title="Invalid input",
        detail=detail,
        errors=problems,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    try:
        phrase = HTTPStatus(exc.status_code).phrase
    except ValueError:  # a status outside the standard list, e.g. 499
        phrase = "Error"
    detail = (
        exc.detail
        if isinstance(exc.detail, str) and exc.detail != phrase
        else {
            404: f"nothing is at {request.url.path}",
            405: f"{request.method} is not allowed on {request.url.path}",
        }.get(exc.status_code, phrase)
    )
    response = respond_with_problem(
        request,
        status=exc.status_code,
        slug=phrase.lower().replace(" ", "-"),
        title=phrase,
        detail=str(detail),
    )
    response.headers.update(exc.headers or {})
    return response


async def respond_to_unexpected_error(request: Request, exc: Exception) -> Response:
    """Log an unexpected error with its traceback and answer 500 without internals."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return respond_with_problem(
        request,
        status=500,
        slug="internal",
        title="Internal error",
        detail="something went wrong on our side; the request id identifies it in the logs",
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PavedError, respond_to_paved_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, respond_to_unexpected_error)
