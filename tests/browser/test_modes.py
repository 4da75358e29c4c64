"""Every mode of the studio, from the site to a playing <video>, in a real Chromium.

The offline `local` backend renders each clip (a real H.264 MP4) behind the tracker, as
`./dev.sh run` does; the tracker runs in a thread beside the live server and tasks run inline.
Each test prints the time from the click on Generate to the video playing (a figure for the
report, not an assertion: the machine is shared)."""

import json
import re
import time

import pytest
from django.core import mail

from billing import services
from generation import catalogue, media
from generation.models import Generation, State
from tests.factories import UserFactory
from tests.fakefal import FakeFal
from tests.fakefal.video import default_mp4
from tests.support.media import png_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SWAPS = "fal-ai/pika/v2/pikaswaps"


@pytest.fixture
def creator(settings):
    settings.LOCAL_QUEUE_SECONDS = 0.3
    user = UserFactory(email="modes@example.com")
    services.credits_purchase(
        account=services.account_for(user), credits=900, key="modes", reason="test"
    )
    return user


@pytest.fixture
def swaps_priced(settings):
    """fal publishes no Pikaswaps price: an operator sets one, and the mode appears."""
    settings.FAL_PRICE_OVERRIDES = json.dumps({SWAPS: {"*": {"*": "0.30"}}})
    catalogue._price_overrides.cache_clear()
    yield
    catalogue._price_overrides.cache_clear()


@pytest.fixture(scope="module")
def file_host():
    """An https host on loopback serving a real MP4 (the fake fal's file store)."""
    with FakeFal() as fake:
        yield fake


@pytest.fixture
def video_link(file_host, monkeypatch):
    # safe_fetch refuses loopback; here it may reach this one host, over its test CA.
    monkeypatch.setattr(
        media,
        "FETCH_OPTIONS",
        {
            "ip_check": lambda ip: None,
            "allowed_ports": {file_host.port},
            "verify": file_host.ca_bundle_path,
        },
    )
    return file_host.add_file("input-clip.mp4", default_mp4())


def _files(tmp_path, count):
    colours = [(220, 40, 40), (40, 200, 60), (40, 80, 230), (230, 200, 40), (200, 60, 200)]
    paths = []
    for index in range(count):
        path = tmp_path / f"still-{index + 1}.png"
        path.write_bytes(png_bytes(320, 180, colours[index]))
        paths.append(str(path))
    return paths


def _generate_and_play(tab, mode: str) -> float:
    """Click Generate, wait for the video page's player to play; seconds from the click."""
    page = tab.page
    button = page.locator("#generate-button")
    page.wait_for_function("() => !document.getElementById('generate-button').disabled")
    started = time.monotonic()
    button.click()
    page.wait_for_url(re.compile(r"/g/[0-9a-f-]+/$"))
    page.wait_for_selector("figure.player video", timeout=90_000)  # the page reloads when done
    page.evaluate("() => { const v = document.querySelector('video'); v.muted = true; v.play(); }")
    page.wait_for_function(
        "() => { const v = document.querySelector('video');"
        " return v.readyState >= 3 && v.currentTime > 0.2; }",
        timeout=30_000,
    )
    elapsed = time.monotonic() - started
    first = page.evaluate("document.querySelector('video').currentTime")
    page.wait_for_function(
        "t => document.querySelector('video').currentTime > t", arg=first, timeout=10_000
    )
    print(f"\nclick to playing video, {mode}: {elapsed:.2f} s")
    return elapsed


def _done(user, endpoint_id) -> Generation:
    generation = Generation.objects.filter(user=user).latest("created_at")
    assert generation.endpoint_id == endpoint_id
    assert generation.state == State.SUCCEEDED, generation.error_message
    return generation


def test_text_and_image_modes_play(tabs, creator, tracker, tmp_path):
    tab = tabs(creator)
    tab.open("/generate/")
    tab.page.fill("textarea[name=prompt]", "a red fox trots through snow")
    _generate_and_play(tab, "Text")
    _done(creator, catalogue.DEFAULT_TEXT_ENDPOINT)
    # The creator is told by email, once (workflows.notifications).
    assert [m.subject for m in mail.outbox] == ["Promptreel: your video is ready"]

    tab.open("/generate/")
    tab.page.check("input[name=mode][value=image]")
    tab.page.set_input_files("#id_image", _files(tmp_path, 1))
    tab.page.fill("textarea[name=prompt]", "the sea breathes")
    _generate_and_play(tab, "Image")
    assert _done(creator, catalogue.DEFAULT_IMAGE_ENDPOINT).inputs.count() == 1


def test_scenes_take_several_images_in_order(tabs, creator, tracker, tmp_path):
    tab = tabs(creator)
    tab.open("/generate/")
    page = tab.page
    page.check("input[name=mode][value=scenes]")
    files = _files(tmp_path, 3)
    page.set_input_files("#id_image", files[:2])
    page.set_input_files("#id_image", files[2:])  # a second pick adds to the list
    assert page.locator("#thumbs li").count() == 3
    page.click("#thumbs li:nth-child(3) button[aria-label^='Move']")  # blue before green
    page.check("input[name=resolution][value='720p']")  # the Free plan's resolution
    page.check("input[name=ingredients_mode][value=creative]")
    page.fill("textarea[name=prompt]", "a fox and a lantern in a snowy wood")
    _generate_and_play(tab, "Scenes")
    generation = _done(creator, "fal-ai/pika/v2.2/pikascenes")
    assert generation.arguments["ingredients_mode"] == "creative"
    colours = [_colour(item) for item in generation.inputs.order_by("position")]
    assert colours == ["red", "blue", "green"]


def _colour(item) -> str:
    from PIL import Image

    with item.file.open("rb") as handle:
        r, g, b = Image.open(handle).convert("RGB").getpixel((5, 5))
    return max((r, "red"), (g, "green"), (b, "blue"))[1]


def test_keyframes_with_a_prompt_and_length_per_transition(tabs, creator, tracker, tmp_path):
    tab = tabs(creator)
    tab.open("/generate/")
    page = tab.page
    page.check("input[name=mode][value=frames]")
    page.set_input_files("#id_image", _files(tmp_path, 3))
    assert page.locator(".transition:visible").count() == 2  # one fewer than the keyframes
    page.fill("#id_t1_prompt", "the fox looks up")
    page.fill("#id_t1_duration", "2")
    page.fill("#id_t2_prompt", "it runs off")
    page.fill("#id_t2_duration", "3")
    estimate = tab.api(
        "POST",
        "/api/v1/estimate",
        {
            "endpoint": "fal-ai/pika/v2.2/pikaframes",
            "image_count": 3,
            "transitions": [{"duration": 2}, {"duration": 3}],
        },
    ).json()
    wanted = "free preview" if estimate["free_preview"] else f"{estimate['credits']} credits"
    page.wait_for_function(
        "want => document.getElementById('generate-button').textContent.trim() === want",
        arg=f"Generate · {wanted}",
    )
    assert "5 s in all" in page.inner_text("#transition-total")
    _generate_and_play(tab, "Keyframes")
    generation = _done(creator, "fal-ai/pika/v2.2/pikaframes")
    assert generation.arguments["transitions"] == [
        {"duration": 2, "prompt": "the fox looks up"},
        {"duration": 3, "prompt": "it runs off"},
    ]
    assert generation.duration == 5 and generation.inputs.filter(kind="image").count() == 3


def test_effects_play(tabs, creator, tracker, tmp_path):
    tab = tabs(creator)
    tab.open("/generate/")
    tab.page.check("input[name=mode][value=effect]")
    tab.page.set_input_files("#id_image", _files(tmp_path, 1))
    tab.page.check("input[name=pikaffect][value=Melt]")
    _generate_and_play(tab, "Effects")
    assert _done(creator, "fal-ai/pika/v1.5/pikaffects").arguments["pikaffect"] == "Melt"


def test_additions_with_an_uploaded_video(tabs, creator, tracker, tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(default_mp4())
    tab = tabs(creator)
    tab.open("/generate/")
    page = tab.page
    page.check("input[name=mode][value=additions]")
    page.set_input_files("#id_image", _files(tmp_path, 1))
    page.set_input_files("#id_video", str(clip))
    page.fill("textarea[name=prompt]", "add a red balloon")
    _generate_and_play(tab, "Additions")
    generation = _done(creator, "fal-ai/pika/v2/pikadditions")
    (video,) = generation.inputs.filter(kind="video")
    assert (video.content_type, video.width, video.height) == ("video/mp4", 320, 180)


def test_swaps_with_a_video_link(tabs, creator, tracker, swaps_priced, video_link):
    tab = tabs(creator)
    tab.open("/generate/")
    page = tab.page
    page.check("input[name=mode][value=swaps]")
    page.fill("input[name=video_url]", video_link)
    page.fill("input[name=modify_region]", "the grey square")
    page.fill("textarea[name=prompt]", "a golden retriever")
    _generate_and_play(tab, "Swaps")
    generation = _done(creator, SWAPS)
    assert generation.arguments["modify_region"] == "the grey square"
    assert generation.inputs.filter(kind="video").count() == 1


def test_a_bad_video_is_refused_with_a_clear_message(tabs, creator, tmp_path):
    not_a_video = tmp_path / "clip.mp4"
    not_a_video.write_bytes(png_bytes())
    tab = tabs(creator)
    tab.open("/generate/")
    page = tab.page
    page.check("input[name=mode][value=additions]")
    page.set_input_files("#id_image", _files(tmp_path, 1))
    page.set_input_files("#id_video", str(not_a_video))
    page.click("#generate-button")
    page.wait_for_selector("[data-field=video] .error")
    assert "not an MP4" in page.inner_text("[data-field=video] .error")
    assert page.locator("#thumbs img").count() == 1, "the image is kept"
    page.check("input[name=mode][value=additions]")
    page.fill("input[name=video_url]", "https://127.0.0.1/clip.mp4")  # a private address
    page.click("#generate-button")
    page.wait_for_selector("[data-field=video_url] .error")
    assert Generation.objects.count() == 0


def test_swaps_are_explained_while_unpriced(tabs, creator):
    tab = tabs(creator)
    tab.open("/generate/")
    assert tab.page.locator("input[name=mode][value=swaps]").count() == 0
    tab.page.click("details.unavailable summary")
    assert "no price" in tab.page.inner_text("details.unavailable")
