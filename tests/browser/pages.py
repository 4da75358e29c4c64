"""What the browser tests share: viewports, a signed-in tab that records CSP violations, and
the axe-core check (axe-playwright-python bundles axe-core)."""

from django.conf import settings
from django.test import Client

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


class Tab:
    """A page in its own context, signed in as `user` (or not), that records every
    Content-Security-Policy violation the browser reports."""

    def __init__(self, browser, live_server, user=None, viewport=DESKTOP):
        self.base = live_server.url
        self.context = browser.new_context(viewport=viewport)
        if user is not None:
            client = Client()
            client.force_login(user)
            cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
            self.context.add_cookies(
                [{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": self.base}]
            )
        self.page = self.context.new_page()
        self.page.set_default_timeout(20_000)
        self.violations = []
        self.page.on(
            "console",
            lambda m: self.violations.append(m.text) if "Content Security Policy" in m.text else 0,
        )
        self.page.on("dialog", lambda dialog: dialog.accept())  # "Delete this clip?"

    def open(self, path):
        response = self.page.goto(self.base + path)
        assert response.status < 400, (path, response.status)
        assert "default-src 'self'" in response.headers["content-security-policy"], path
        return response

    def width(self) -> int:
        return self.page.evaluate("document.documentElement.scrollWidth")

    def api(self, method, path, data):
        csrf = next(c["value"] for c in self.context.cookies() if c["name"] == "csrftoken")
        return self.page.request.fetch(
            self.base + path, method=method, data=data, headers={"X-CSRFToken": csrf}
        )

    def close(self):
        assert self.violations == [], self.violations
        self.context.close()


SERIOUS = {"serious", "critical"}


def axe_violations(page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now, one line each.

    axe is injected through the DevTools protocol (page.evaluate), which the page's CSP does
    not govern, so the check runs against the page exactly as served."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    lines = []
    for violation in results.response["violations"]:
        if violation["impact"] not in SERIOUS:
            continue
        targets = [" ".join(map(str, node["target"])) for node in violation["nodes"]][:5]
        lines.append(f"{violation['impact']} {violation['id']}: {violation['help']} {targets}")
    return lines
