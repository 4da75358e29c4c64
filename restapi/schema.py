"""The OpenAPI schema's error responses: every status each operation can answer, as RFC 9457
problem details (api/problems.py), so clients and the external fuzz run (tests/api/
test_schemathesis.py) can rely on the schema for errors as for successes."""

from generation.models import State

from .problems import TITLES

PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details; `code` is stable, `errors` names the fields.",
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "code": {"type": "string", "enum": sorted({*TITLES, "moderation_taken_down"})},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "field name (or `field.index`) → what to fix",
        },
        "allowed_by": {"type": "string"},
        "duplicate_of": {
            "type": "object",
            "description": "code `duplicate`: your clip this request would make again",
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "state": {"type": "string"},
                "created_at": {"type": "string", "format": "date-time"},
                "url": {"type": "string", "format": "uri"},
            },
        },
    },
    "required": ["type", "title", "status", "code", "detail"],
}

WHY = {
    "400": "Invalid input (query, body or header); `errors` names the fields",
    "401": "No API key, or one that is unknown, revoked or expired",
    "402": "Not enough credits",
    "403": "The key lacks the scope, the account is suspended, or policy refuses it",
    "404": "No such generation for this account, or no such path",
    "405": "Method not allowed",
    "406": "Only application/json responses are available",
    "409": "A request with this Idempotency-Key is still running, or you made this exact video "
    "before (code `duplicate`, with `duplicate_of`; send force: true to render it again)",
    "415": "Unsupported body media type",
    "422": "The Idempotency-Key was used with a different request",
    "429": "Rate limited; see Retry-After",
}
# Every operation: authentication, scopes, negotiation, rate limits, wrong methods.
COMMON = ["401", "403", "405", "406", "429"]
BY_OPERATION = {
    ("get", "/api/v1/generations"): ["400"],
    ("post", "/api/v1/generations"): ["400", "402", "409", "415", "422"],
    ("post", "/api/v1/estimate"): ["400", "402", "415"],
    ("get", "/api/v1/generations/{id}"): ["404"],
    ("post", "/api/v1/generations/{id}/cancel"): ["404"],
    ("get", "/api/v1/generations/{id}/webhooks"): ["404"],
    # Creative tools (issue 18).
    ("post", "/api/v1/templates"): ["400", "415"],
    ("get", "/api/v1/batches/{id}"): ["404"],
    ("post", "/api/v1/storyboards"): ["400", "402", "415"],
}
_STATE = "(" + "|".join(sorted(State.values)) + ")"
LIST_FILTERS = [
    (
        "state",
        "Comma-separated states to include",
        {"type": "string", "pattern": f"^{_STATE}(,{_STATE})*$"},
    ),
    ("endpoint", "Only this catalogue endpoint id", {"type": "string", "maxLength": 200}),
    ("created_after", "Created at or after (ISO 8601)", {"type": "string", "format": "date-time"}),
    ("created_before", "Created before (ISO 8601)", {"type": "string", "format": "date-time"}),
]


def add_problem_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not path.startswith("/api/v1/"):
                continue
            responses = operation.setdefault("responses", {})
            for status in COMMON + BY_OPERATION.get((method, path), []):
                responses.setdefault(status, {"description": WHY[status], "content": problem})
            if (method, path) == ("post", "/api/v1/generations/{id}/cancel"):
                responses["202"] = {
                    **responses["200"],
                    "description": "Too late to cancel: the video is being saved",
                }
            if (method, path) == ("get", "/api/v1/generations"):
                _list_parameters(operation)
    return result


def _list_parameters(operation) -> None:
    parameters = operation.setdefault("parameters", [])
    for parameter in parameters:
        if parameter["name"] == "limit":
            parameter["schema"].update({"minimum": 1, "maximum": 100})
    known = {parameter["name"] for parameter in parameters}
    for name, description, schema in LIST_FILTERS:
        if name not in known:
            parameters.append(
                {
                    "name": name,
                    "in": "query",
                    "required": False,
                    "description": description,
                    "schema": schema,
                }
            )
