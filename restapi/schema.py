"""The OpenAPI schema's error responses: every status each operation can answer, as RFC 9457
problem details (api/problems.py), so clients and the external fuzz run (tests/api/
test_schemathesis.py) can rely on the schema for errors as for successes."""

from drf_spectacular.utils import OpenApiWebhook, extend_schema

from generation.models import State

from .problems import TITLES
from .serializers import WebhookEventSerializer

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
        "allowed_by": {"type": "string", "description": "a plan that allows it"},
        "limit": {
            "type": "string",
            "enum": ["max_in_flight", "max_generations_per_day"],
            "description": "429 from a plan limit: which one",
        },
        "allowed": {"type": "integer", "minimum": 0, "description": "that limit's value"},
        "state": {
            "type": "string",
            "enum": sorted(State.values),
            "description": "409 on cancel: the state the generation ended in",
        },
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
    "409": "A request with this Idempotency-Key is still running, the generation has "
    "ended (cancel: `state` says how), or you made this exact video before (code "
    "`duplicate`, with `duplicate_of`; send force: true to render it again)",
    "415": "Unsupported body media type",
    "422": "The Idempotency-Key was used with a different request",
    "429": "Rate limited, or a plan limit that time lifts (jobs in flight, generations a "
    "day: `limit` names it); retry after Retry-After seconds",
}
# Every operation: authentication, scopes, negotiation, rate limits, wrong methods.
COMMON = ["401", "403", "405", "406", "429"]
BY_OPERATION = {
    ("get", "/api/v1/generations"): ["400"],
    ("post", "/api/v1/generations"): ["400", "402", "409", "415", "422"],
    ("post", "/api/v1/estimate"): ["400", "402", "415"],
    ("get", "/api/v1/generations/{id}"): ["404"],
    ("get", "/api/v1/generations/{id}/events"): ["404"],
    ("post", "/api/v1/generations/{id}/cancel"): ["404", "409"],
    ("get", "/api/v1/generations/{id}/webhooks"): ["404"],
    ("post", "/api/v1/generations/{id}/webhooks/{message_id}/redeliver"): ["404"],
    ("post", "/api/v1/webhooks/test"): ["400", "415"],
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


TRANSITION = {
    "type": "object",
    "description": "Pikaframes: the move from one keyframe to the next",
    "properties": {
        "duration": {"type": "integer", "minimum": 1, "maximum": 25, "description": "seconds"},
        "prompt": {"type": "string"},
    },
    "required": ["duration"],
}


def add_problem_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM
    schemas["Transition"] = TRANSITION
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not path.startswith("/api/v1/"):
                continue
            responses = operation.setdefault("responses", {})
            for status in COMMON + BY_OPERATION.get((method, path), []):
                responses.setdefault(status, {"description": WHY[status], "content": problem})
            _response_headers(method, path, responses)
            if (method, path) == ("get", "/api/v1/generations"):
                _list_parameters(operation)
    return result


def _header(description: str, schema: dict | None = None) -> dict:
    return {"description": description, "schema": schema or {"type": "string"}}


RATE_HEADERS = {
    "RateLimit": _header('draft-ietf-httpapi-ratelimit-headers, e.g. `"default";r=119;t=42`'),
    "RateLimit-Policy": _header('e.g. `"default";q=120;w=60`: requests per window of seconds'),
}


def _response_headers(method: str, path: str, responses: dict) -> None:
    """The headers a client can act on, on every answer they come with."""
    for status, response in responses.items():
        headers = response.setdefault("headers", {})
        headers.update(RATE_HEADERS)
        if status == "429":
            headers["Retry-After"] = _header(
                "seconds until a retry may succeed", {"type": "integer", "minimum": 1}
            )
        if (method, path, status) == ("post", "/api/v1/generations", "201"):
            headers["Location"] = _header("the new generation", {"type": "string", "format": "uri"})
            headers["Idempotent-Replayed"] = _header("`true` on a replay of an Idempotency-Key")
        if (method, path, status) in (
            ("post", "/api/v1/generations", "201"),
            ("get", "/api/v1/generations/{id}", "200"),
        ):
            headers["Preference-Applied"] = _header("`wait=N` when `Prefer: wait=N` was honoured")
        if (method, path) == ("get", "/api/v1/generations/{id}") and status in ("200", "304"):
            headers["ETag"] = _header("weak validator; send it back as If-None-Match")


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


GENERATION_EVENT = OpenApiWebhook(
    name="generation_event",
    decorator=extend_schema(
        summary="A generation event",
        description="POSTed to the `webhook_url` of a create when the generation reaches a "
        "state you asked for (`webhook_events`), or by the test-event action. Signed per "
        "Standard Webhooks (headers `webhook-id`, `webhook-timestamp`, `webhook-signature`, "
        "with your account's `whsec_` secret). Answer 2xx within 10 s; anything else is "
        "retried with back-off for about a day. `data` is the generation as the API returns "
        "it at sending time, its links valid until `data.output.expires_at`.",
        tags=["webhooks"],
        request=WebhookEventSerializer,
        responses={200: None},
    ),
)
