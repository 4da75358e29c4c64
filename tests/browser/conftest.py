import os
import shutil
import threading

import pytest

from .pages import Tab

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser():
    """One Chromium for the session; each test opens its own contexts (cheap)."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it with apt-get")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
        )
        yield browser
        browser.close()


@pytest.fixture
def browser_page(browser):
    """A page of the session's one Chromium: a second sync_playwright in the same process
    would fail inside the first one's event loop."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


@pytest.fixture
def tasks_queued_not_run(monkeypatch):
    """Renders are queued and left there (for tests about the pages): a render run inline
    inside the request (django-q's sync mode) would make each click take seconds."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)


@pytest.fixture
def tabs(browser, live_server):
    opened = []

    def open_tab(user=None, viewport=None):
        opened.append(Tab(browser, live_server, user, viewport or {"width": 1280, "height": 800}))
        return opened[-1]

    yield open_tab
    for tab in opened:
        tab.close()


@pytest.fixture
def tracker(settings):
    """The tracker process's loop, in a thread beside the live server (tasks run inline)."""
    from workflows.tracking import track_once

    settings.TRACK_POLL_MIN_SECONDS = 0.1
    stop = threading.Event()

    def loop():
        from django.db import connection

        try:
            while not stop.is_set():
                if track_once() == 0:
                    stop.wait(0.1)
        finally:
            connection.close()  # or PostgreSQL cannot drop the test database afterwards

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=10)
