"""RFC 9457 problem details: the document every error of the API (restapi.problems) and of the
media links the API hands out (studio's signed media view) is written as."""

from django.http import JsonResponse

PROBLEM_TYPE_BASE = "https://promptreel.example/problems/"
CONTENT_TYPE = "application/problem+json"

TITLES = {
    "invalid_input": "The request has invalid input",
    "unauthenticated": "Authentication required",
    "forbidden": "Not allowed",
    "not_found": "Not found",
    "method_not_allowed": "Method not allowed",
    "unsupported_media_type": "Unsupported media type",
    "rate_limited": "Too many requests",
    "insufficient_credits": "Not enough credits",
    "plan_limit": "Your plan does not allow this",
    "moderation_blocked": "Refused by the content policy",
    "moderation_taken_down": "Taken down by moderators",
    "idempotency_conflict": "A request with this Idempotency-Key is still running",
    "idempotency_mismatch": "The Idempotency-Key was used with a different request",
    "conflict": "Conflict",
    "duplicate": "You made this video already",
    "server_error": "Internal error",
}


def problem_json(status_code: int, code: str, detail: str) -> JsonResponse:
    """The problem document as a plain Django response, for views outside DRF."""
    body = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": TITLES.get(code, code.replace("_", " ").capitalize()),
        "status": status_code,
        "code": code,
        "detail": detail,
    }
    return JsonResponse(body, status=status_code, content_type=CONTENT_TYPE)
