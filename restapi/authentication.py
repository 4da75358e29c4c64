from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from api.services import KeyRefused, apikey_authenticate


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer prk_…`; request.auth is the ApiKey."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        raw = raw.strip()
        if not raw:
            raise exceptions.AuthenticationFailed(
                "The Authorization header has no key after 'Bearer'."
            )
        try:
            api_key = apikey_authenticate(raw=raw)
        except KeyRefused as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        return api_key.user, api_key

    def authenticate_header(self, request):
        return self.keyword


class ApiKeySchema(OpenApiAuthenticationExtension):
    target_class = "restapi.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "prk_…"}
