"""Production hardening: local assets, the proxy scheme header, check --deploy."""

import re
import runpy
from html import unescape
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.http import HttpResponse
from django.middleware.security import SecurityMiddleware
from django.test import RequestFactory

pytestmark = pytest.mark.django_db

SETTINGS_FILE = Path(__file__).resolve().parents[2] / "config" / "settings.py"


def test_swagger_ui_loads_only_our_own_files(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    urls = [unescape(u) for u in re.findall(r'(?:src|href)="([^"]+)"', html)]
    assert len(urls) >= 4  # css, favicon, bundle, preset, init script
    for url in urls:
        assert url.startswith("/"), f"{url} is not served by us"
    for url in urls:
        if url.startswith("/static/"):
            assert finders.find(url.removeprefix("/static/")), f"{url} is not a static file"
    # The init script is a file of its own (no inline script), pointing at our schema.
    assert "<script>" not in html
    (init,) = [url for url in urls if "script=" in url]
    script = client.get(init)
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "/api/schema/" in script.content.decode()


def production_settings(monkeypatch, **env) -> dict:
    """config/settings.py evaluated afresh under a production-like environment."""
    for name in ("DEBUG", "TRUSTED_PROXY_COUNT", "SECURE_HSTS_PRELOAD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SECRET_KEY", "x" * 60)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS_FILE))


def scheme_seen(settings, values: dict, headers: dict) -> tuple[bool, int]:
    """(request.is_secure(), status) for an http request with these headers."""
    for name in ("SECURE_PROXY_SSL_HEADER", "SECURE_SSL_REDIRECT"):
        setattr(settings, name, values.get(name))
    request = RequestFactory().get("/", **headers)
    response = SecurityMiddleware(lambda request: HttpResponse("served"))(request)
    return request.is_secure(), response.status_code


def test_x_forwarded_proto_is_ignored_without_a_trusted_proxy(monkeypatch, settings):
    values = production_settings(monkeypatch)
    assert values["DEBUG"] is False
    assert values.get("SECURE_PROXY_SSL_HEADER") is None
    spoofed = {"HTTP_X_FORWARDED_PROTO": "https"}
    # A plain-http request claiming https is still http: redirected, not served as secure.
    assert scheme_seen(settings, values, spoofed) == (False, 301)


def test_x_forwarded_proto_is_honoured_behind_a_trusted_proxy(monkeypatch, settings):
    values = production_settings(monkeypatch, TRUSTED_PROXY_COUNT="1")
    assert values["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    assert scheme_seen(settings, values, {"HTTP_X_FORWARDED_PROTO": "https"}) == (True, 200)
    assert scheme_seen(settings, values, {"HTTP_X_FORWARDED_PROTO": "http"}) == (False, 301)


def test_hsts_preload_is_on_unless_explicitly_turned_off(monkeypatch):
    values = production_settings(monkeypatch)
    assert values["SECURE_HSTS_PRELOAD"] is True
    assert "security.W021" not in values.get("SILENCED_SYSTEM_CHECKS", [])
    values = production_settings(monkeypatch, SECURE_HSTS_PRELOAD="off")
    assert values["SECURE_HSTS_PRELOAD"] is False
    assert values["SILENCED_SYSTEM_CHECKS"] == ["security.W021"]
