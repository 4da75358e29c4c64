from rest_framework.permissions import BasePermission

from api.models import ApiKey


class HasScope(BasePermission):
    """API keys need the view's scope; the website's own session needs none."""

    message = "This API key lacks the scope this endpoint needs."

    def has_permission(self, request, view):
        scope = getattr(view, "required_scopes", {}).get(request.method)
        if not isinstance(request.auth, ApiKey) or scope is None:
            return True
        if request.auth.has_scope(scope):
            return True
        self.message = f"This API key lacks the '{scope}' scope."
        return False
