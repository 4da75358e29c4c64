"""The studio pages in a real Chromium: phone width, the player above the fold, the live price,
HD bought once, delete and filter, a kept image, and no Content-Security-Policy violation.

One browser for the whole session; each test opens its own contexts (cheap)."""

import re

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from billing import services
from generation.models import Generation, State
from tests.factories import GenerationFactory, UserFactory
from tests.support.media import png_bytes

from .pages import DESKTOP, PHONE

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("tasks_queued_not_run"),
]


@pytest.fixture
def creator():
    user = UserFactory(email="studio@example.com")
    services.credits_purchase(
        account=services.account_for(user), credits=500, key="studio", reason="test"
    )
    return user


def finished(user, **kwargs) -> Generation:
    """A ready clip with stored files (not a real MP4: layout and links are what is tested)."""
    output = default_storage.save("outputs/clip.mp4", ContentFile(b"not really an mp4"))
    poster = default_storage.save("posters/clip.jpg", ContentFile(png_bytes(64, 36)))
    return GenerationFactory(
        user=user,
        state=State.SUCCEEDED,
        output=output,
        poster=poster,
        video_width=1280,
        video_height=720,
        video_duration=5.0,
        video_bytes=1000,
        **kwargs,
    )


def test_every_page_fits_a_phone_and_the_player_is_above_the_fold(tabs, creator):
    clip = finished(creator, prompt="a fox " * 40)  # a long prompt must wrap, not widen
    failed = GenerationFactory(user=creator, state=State.FAILED, error_message="went wrong")
    signed_out = ["/", "/accounts/login/", "/accounts/signup/", "/policy/content/"]
    signed_in = [
        "/generate/",
        "/gallery/",
        "/billing/",
        "/api/keys/",
        clip.get_absolute_url(),
        failed.get_absolute_url(),
    ]
    for user, paths in ((None, signed_out), (creator, signed_in)):
        phone = tabs(user, PHONE)
        for path in paths:
            phone.open(path)
            assert phone.width() <= 390, path
    desktop = tabs(creator, DESKTOP)
    desktop.open(clip.get_absolute_url())
    box = desktop.page.locator("video").bounding_box()
    assert box["y"] + box["height"] / 2 < 800, box  # the player's middle is on the first screen
    settings_text = desktop.page.inner_text("dl.settings")
    assert "Text · Pika 2.2" in settings_text and "fal-ai" not in desktop.page.content()
    assert "dolly_in" not in settings_text
    desktop.open("/api/docs/")  # Swagger UI from our static files, under the same CSP
    desktop.page.wait_for_selector(".swagger-ui .info")


SCENES = "fal-ai/pika/v2.2/pikascenes"
FRAMES = "fal-ai/pika/v2.2/pikaframes"
ADDITIONS = "fal-ai/pika/v2/pikadditions"


def test_the_button_shows_the_estimate_for_each_choice(tabs, creator, tmp_path):
    tab = tabs(creator)
    tab.open("/generate/")
    page = tab.page
    button = page.locator("#generate-button")
    stills = []
    for index in range(4):
        path = tmp_path / f"{index}.png"
        path.write_bytes(png_bytes(160, 90, (60 * index, 90, 200)))
        stills.append(str(path))
    # (mode, endpoint, resolution, duration, keyframe lengths)
    combinations = [
        ("text", "fal-ai/pika/v2.2/text-to-video", "720p", "5", None),
        ("text", "fal-ai/pika/v2.2/text-to-video", "720p", "10", None),
        ("text", "fal-ai/pika/v2.1/text-to-video", "720p", "5", None),
        ("image", "fal-ai/pika/v2.2/image-to-video", "720p", "5", None),
        ("image", "fal-ai/pika/v2/turbo/image-to-video", "720p", "5", None),
        ("image", "fal-ai/pika/v2.2/image-to-video", "1080p", "5", None),
        ("effect", "fal-ai/pika/v1.5/pikaffects", None, None, None),
        ("scenes", SCENES, "720p", "10", None),
        ("scenes", SCENES, "720p", "5", None),
        ("frames", FRAMES, "720p", None, [2, 3]),
        ("frames", FRAMES, "720p", None, [1, 1, 1]),
        ("frames", FRAMES, "1080p", None, [4, 4]),
        ("additions", ADDITIONS, None, None, None),
    ]
    for mode, endpoint, resolution, duration, lengths in combinations:
        page.check(f"input[name=mode][value={mode}]")
        page.check(f"input[name=endpoint][value='{endpoint}']")
        if resolution:
            page.check(f"input[name=resolution][value='{resolution}']")
        if duration:
            page.check(f"input[name=duration][value='{duration}']")
        body = {"endpoint": endpoint, "prompt": "x"}
        if resolution:
            body["resolution"] = resolution
        if duration:
            body["duration"] = int(duration)
        if lengths:
            while page.locator("#thumbs li").count():  # start again from no keyframes
                page.click("#thumbs li:first-child button[aria-label^=Remove]")
            page.set_input_files("#id_image", stills[: len(lengths) + 1])
            for number, seconds in enumerate(lengths, start=1):
                page.fill(f"#id_t{number}_duration", str(seconds))
            body.update(
                image_count=len(lengths) + 1, transitions=[{"duration": s} for s in lengths]
            )
        elif mode != "text":
            body["image_count"] = 1
        if mode == "effect":
            body["pikaffect"] = "Melt"
        if mode == "additions":
            body["video_url"] = "https://example.com/clip.mp4"  # only its presence is priced
        estimate = tab.api("POST", "/api/v1/estimate", body)
        if estimate.status == 400:  # the plan refuses it: so does the button, saying why
            assert estimate.json()["code"] == "plan_limit"
            page.wait_for_function("() => document.getElementById('generate-button').disabled")
            page.wait_for_function(
                "want => document.getElementById('price-note').textContent.includes(want)",
                arg=estimate.json()["detail"],
            )
            continue
        assert estimate.status == 200, estimate.text()
        estimate = estimate.json()
        wanted = "free preview" if estimate["free_preview"] else f"{estimate['credits']} credits"
        page.wait_for_function(
            "want => document.getElementById('generate-button').textContent.trim() === want",
            arg=f"Generate · {wanted}",
        )
        assert button.is_enabled() == estimate["enough"]
        # Only the fields this endpoint takes are on show.
        assert page.locator("[data-field=image]").is_visible() == (mode != "text")
        assert page.locator("[data-field=pikaffect]").is_visible() == (mode == "effect")
        assert page.locator("[data-field=transitions]").is_visible() == (mode == "frames")
        assert page.locator("[data-field=video]").is_visible() == (mode == "additions")
    # The Free plan refuses 1080p: the button says so and what to do.
    page.check("input[name=mode][value=text]")
    page.check("input[name=resolution][value='1080p']")
    page.wait_for_function("() => document.getElementById('generate-button').disabled")
    assert "1080p is not on the Free plan" in page.inner_text("#price-note")
    assert page.locator("#price-note a[href='/billing/']").is_visible()


def test_a_form_error_keeps_the_dropped_image(tabs, creator, tmp_path):
    tab = tabs(creator, PHONE)
    tab.open("/generate/")
    page = tab.page
    page.check("input[name=mode][value=image]")
    image = tmp_path / "still.png"
    image.write_bytes(png_bytes(320, 180, (20, 120, 220)))
    # A drop, as the browser delivers it: a DataTransfer with the file on the drop zone.
    page.evaluate(
        """async ([bytes]) => {
            const file = new File([new Uint8Array(bytes)], "still.png", {type: "image/png"});
            const transfer = new DataTransfer();
            transfer.items.add(file);
            const zone = document.getElementById("dropzone");
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true}));
        }""",
        [list(image.read_bytes())],
    )
    # The drop is read and uploaded as a draft asynchronously: wait for its thumbnail.
    page.locator("#thumbs img").wait_for(state="visible")
    assert page.locator("#thumbs img").is_visible()
    page.fill("textarea[name=prompt]", "")  # the error: image-to-video needs a prompt
    page.click("#generate-button")
    page.wait_for_selector("[data-field=prompt] .error")
    thumb = page.locator("#thumbs img")
    assert "/generate/draft/" in thumb.get_attribute("src")
    page.wait_for_function("() => document.querySelector('#thumbs img').naturalWidth > 0")
    assert "Your image is kept" in page.inner_text("#drop-text")
    page.fill("textarea[name=prompt]", "the sea breathes")
    page.click("#generate-button")
    page.wait_for_url(re.compile(r"/g/[0-9a-f-]+/$"))
    generation = Generation.objects.get(user=creator)
    assert generation.inputs.count() == 1 and generation.prompt == "the sea breathes"


def test_hd_is_bought_once_then_delete_and_filter(tabs, creator):
    preview = finished(creator, prompt="a lighthouse at dusk", free_preview=True, credit_cost=0)
    finished(creator, prompt="a paper boat")
    tab, stale = tabs(creator), tabs(creator)
    tab.open(preview.get_absolute_url())
    stale.open(preview.get_absolute_url())  # an old tab, still offering the purchase
    tab.page.click("#render-hd button")
    tab.page.wait_for_url(re.compile(r"/g/[0-9a-f-]+/$"))
    hd = Generation.objects.get(rerender_of=preview)
    assert tab.page.url.endswith(hd.get_absolute_url())
    balance = services.account_for(creator).balance
    assert balance == 500 - hd.credit_cost
    stale.page.click("#render-hd button")
    stale.page.wait_for_url(re.compile(re.escape(hd.get_absolute_url()) + "$"))
    assert services.account_for(creator).balance == balance, "charged once"
    tab.open(preview.get_absolute_url())
    tab.page.click("#hd-version")
    tab.page.wait_for_url(re.compile(re.escape(hd.get_absolute_url()) + "$"))

    # Filter and search, then delete from the gallery.
    tab.open("/gallery/?state=ready")
    assert tab.page.locator(".gallery li").count() == 2
    tab.page.fill("input[name=q]", "boat")
    tab.page.click("#gallery-filters button")
    tab.page.wait_for_url(re.compile(r"q=boat"))
    assert tab.page.locator(".gallery li").count() == 1
    tab.page.click(".gallery li button.danger")
    tab.page.wait_for_selector("text=Deleted.")
    assert "a paper boat" not in tab.page.inner_text("main")
    assert Generation.objects.filter(prompt="a paper boat", deleted_at__isnull=False).exists()


def test_a_new_api_key_is_copied_with_one_click(tabs, creator):
    tab = tabs(creator)
    tab.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=tab.base)
    tab.open("/api/keys/")
    tab.page.fill("input[name=name]", "my script")
    tab.page.click("form.card:has(input[name=name]) button[type=submit]")
    key = tab.page.inner_text("#new-key").strip()
    assert key.startswith("prk_")
    tab.page.click("button[data-copy='#new-key']")
    tab.page.wait_for_selector("button[data-copy='#new-key']:has-text('Copied')")
    assert tab.page.evaluate("navigator.clipboard.readText()") == key


def test_leave_out_shows_what_the_model_leaves_out_by_default(tabs, creator):
    tab = tabs(creator)
    tab.open("/generate/")
    leave_out = tab.page.locator("[name=negative_prompt]")
    tab.page.check("input[name=mode][value=scenes]")
    assert leave_out.get_attribute("placeholder") == "Left out by default: ugly, bad, terrible"
    # Each endpoint's own default, from the catalogue (an empty one: no placeholder).
    from generation import catalogue

    tab.page.check("input[name=mode][value=text]")
    endpoint = tab.page.locator("input[name=endpoint]:checked").get_attribute("value")
    default = catalogue.get_endpoint(endpoint).default("negative_prompt") or ""
    expected = f"Left out by default: {default}" if default else ""
    assert leave_out.get_attribute("placeholder") == expected
