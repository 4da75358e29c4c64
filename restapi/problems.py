"""RFC 9457 problem details for every API error, each with a stable machine `code`."""

from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.problems import CONTENT_TYPE, PROBLEM_TYPE_BASE, TITLES, problem_json  # noqa: F401


class Problem(exceptions.APIException):
    """An API refusal with a code, a status and optional per-field errors."""

    def __init__(
        self,
        *,
        status_code: int,
        code: str,
        detail: str,
        errors: dict | None = None,
        headers: dict | None = None,
        **extra,
    ):
        super().__init__(detail=detail, code=code)
        self.status_code = status_code
        self.problem_code = code
        self.errors = errors or {}
        self.headers = headers or {}
        self.extra = extra


_DRF_CODES = {
    exceptions.ValidationError: ("invalid_input", 400),
    exceptions.ParseError: ("invalid_input", 400),
    exceptions.NotAuthenticated: ("unauthenticated", 401),
    exceptions.AuthenticationFailed: ("unauthenticated", 401),
    exceptions.PermissionDenied: ("forbidden", 403),
    exceptions.NotFound: ("not_found", 404),
    exceptions.MethodNotAllowed: ("method_not_allowed", 405),
    exceptions.NotAcceptable: ("invalid_input", 406),
    exceptions.UnsupportedMediaType: ("unsupported_media_type", 415),
    exceptions.Throttled: ("rate_limited", 429),
}


def problem_response(
    status_code: int, code: str, detail: str, *, errors=None, headers=None, **extra
):
    body = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": TITLES.get(code, code.replace("_", " ").capitalize()),
        "status": status_code,
        "code": code,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    body.update(extra)
    return Response(body, status=status_code, headers=headers, content_type=CONTENT_TYPE)


def _flatten(detail) -> dict:
    """DRF's nested error lists → {field: "message"}."""
    if isinstance(detail, dict):
        flat = {}
        for name, value in detail.items():
            inner = _flatten(value)
            if isinstance(value, dict):
                flat.update({f"{name}.{key}": message for key, message in inner.items()})
            else:
                flat[name] = inner.get(
                    "",
                    " ".join(str(item) for item in value)
                    if isinstance(value, list)
                    else str(value),
                )
        return flat
    if isinstance(detail, list):
        return {"": " ".join(str(item) for item in detail)}
    return {"": str(detail)}


def exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, Problem):
        return problem_response(
            exc.status_code,
            exc.problem_code,
            str(exc.detail),
            errors=exc.errors,
            headers=exc.headers,
            **exc.extra,
        )
    for cls, (code, status_code) in _DRF_CODES.items():
        if isinstance(exc, cls):
            response = drf_exception_handler(exc, context)
            headers = {
                k: v
                for k, v in (response.headers.items() if response else [])
                if k.lower() != "content-type"
            }
            if isinstance(exc, exceptions.ValidationError):
                errors = _flatten(exc.detail)
                general = errors.pop("non_field_errors", None) or errors.pop("", None)
                detail = general or "Some fields are invalid: " + ", ".join(errors) + "."
                return problem_response(status_code, code, detail, errors=errors, headers=headers)
            errors = {"body": str(exc.detail)} if isinstance(exc, exceptions.ParseError) else None
            return problem_response(
                status_code, code, str(exc.detail), errors=errors, headers=headers
            )
    return None  # unexpected errors stay 500s, logged by Django


def server_error(request, *args, **kwargs):
    return problem_json(
        status.HTTP_500_INTERNAL_SERVER_ERROR, "server_error", "Something went wrong on our side."
    )
