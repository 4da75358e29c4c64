"""Every page, signed in and signed out, in a real Chromium: no serious or critical axe-core
violation (at 1280×800 and at 390×844) and nothing wider than a phone's 390 px."""

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from billing import services
from generation.models import State
from tests.factories import GenerationFactory, UserFactory
from tests.support.media import png_bytes

from .pages import DESKTOP, PHONE, axe_violations

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("tasks_queued_not_run"),
]

SIGNED_OUT = [
    "/",
    "/accounts/login/",
    "/accounts/signup/",
    "/accounts/password/reset/",
    "/accounts/password/reset/done/",
    "/accounts/confirm-email/",
    "/accounts/confirm-email/not-a-key/",
    "/accounts/password/reset/key/1-not-a-key/",
    "/accounts/inactive/",
    "/policy/content/",
    "/policy/acceptable-use/",
]


@pytest.fixture
def signed_in_pages():
    user = UserFactory(email="axe@example.com")
    services.credits_purchase(
        account=services.account_for(user), credits=100, key="axe", reason="test"
    )
    output = default_storage.save("outputs/clip.mp4", ContentFile(b"not really an mp4"))
    poster = default_storage.save("posters/clip.jpg", ContentFile(png_bytes(64, 36)))
    ready = GenerationFactory(
        user=user,
        state=State.SUCCEEDED,
        output=output,
        poster=poster,
        video_width=1280,
        video_height=720,
        video_duration=5.0,
        video_bytes=1000,
        prompt="a lighthouse at dusk " * 10,
    )
    failed = GenerationFactory(user=user, state=State.FAILED, error_message="went wrong")
    working = GenerationFactory(user=user, state=State.IN_QUEUE, queue_position=3)
    held = GenerationFactory(user=user, state=State.HELD)
    canceled = GenerationFactory(user=user, state=State.CANCELED)
    pages = [
        "/generate/",
        *(
            f"/generate/#mode={mode}"
            for mode in ("image", "scenes", "frames", "effect", "additions")
        ),
        "/gallery/",
        "/gallery/?q=nothing-matches",
        "/billing/",
        "/api/keys/",
        "/settings/",
        "/accounts/email/",
        "/accounts/password/change/",
        "/policy/content/",
        ready.get_absolute_url(),
        failed.get_absolute_url(),
        working.get_absolute_url(),
        held.get_absolute_url(),
        canceled.get_absolute_url(),
        f"/moderation/report/{ready.pk}/",
    ]
    return user, pages


def _check(tab, path) -> list[str]:
    if "#mode=" in path:  # the generate page with another mode chosen
        path, mode = path.split("#mode=")
        tab.open(path)
        tab.page.check(f"input[name=mode][value={mode}]")
    else:
        tab.open(path)
    return [f"{path} {line}" for line in axe_violations(tab.page)]


def test_every_page_has_no_serious_axe_violation_and_fits_a_phone(tabs, signed_in_pages):
    user, signed_in = signed_in_pages
    problems, too_wide = [], []
    for who, paths in ((None, SIGNED_OUT), (user, signed_in)):
        for viewport in (DESKTOP, PHONE):
            tab = tabs(who, viewport)
            for path in paths:
                problems += [f"{viewport['width']}px {line}" for line in _check(tab, path)]
                if viewport is PHONE and tab.width() > 390:
                    too_wide.append((path, tab.width()))
    assert problems == [], "\n".join(problems)
    assert too_wide == []
