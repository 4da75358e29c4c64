"""The website's generate page, gallery and delete, through Django's test client."""

import re

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from billing import plans, services
from billing.models import LedgerEntry
from core.models import AuditEntry
from generation.models import Generation, GenerationInput, State
from tests.factories import GenerationFactory
from tests.support.media import png_bytes, upload

pytestmark = pytest.mark.django_db

CHOICES = {"preset": "static", "aspect_ratio": "16:9", "resolution": "720p", "duration": "5"}

T2V = "fal-ai/pika/v2.2/text-to-video"
I2V = "fal-ai/pika/v2.2/image-to-video"
T2V_21 = "fal-ai/pika/v2.1/text-to-video"
EFFECTS = "fal-ai/pika/v1.5/pikaffects"


@pytest.mark.parametrize(
    ("endpoint", "resolution", "duration"),
    [
        (T2V, "720p", "5"),  # a free preview
        (T2V, "720p", "10"),  # paid, but the Free plan stops at 5 s
        (T2V, "1080p", "5"),
        (T2V, "1080p", "10"),
        (I2V, "720p", "10"),
        (T2V_21, "720p", "5"),
        (EFFECTS, "", ""),  # takes neither: priced at its defaults, as a create would be
    ],
)
def test_the_button_price_is_the_api_estimate(alice_client, user, endpoint, resolution, duration):
    account = services.account_for(user)
    services.plan_change(account=account, plan=plans.CREATOR, source="staff")
    services.credits_purchase(account=account, credits=50, key="t", reason="test")
    body = {"endpoint": endpoint, "prompt": "a fox"}
    if resolution:
        body.update(resolution=resolution, duration=int(duration))
    if endpoint in (I2V, EFFECTS):
        body["image_count"] = 1
    if endpoint == EFFECTS:
        body["pikaffect"] = "Melt"
    api = alice_client.post(reverse("api_estimate"), body, content_type="application/json")
    page = alice_client.get(
        reverse("generate_price"),
        {"endpoint": endpoint, "resolution": resolution, "duration": duration},
    ).json()
    assert api.status_code == 200, api.content
    api = api.json()
    assert page["credits"] == api["credits"] and page["free_preview"] == api["free_preview"]
    assert page["allowed"] == api["enough"]
    expected = "free preview" if api["free_preview"] else f"{api['credits']} credits"
    assert page["label"] == f"Generate · {expected}"


def test_the_button_says_why_not_and_what_to_do(alice_client):
    refused = alice_client.get(
        reverse("generate_price"), {"endpoint": T2V, "resolution": "1080p", "duration": "5"}
    ).json()
    assert not refused["allowed"] and "1080p is not on the Free plan" in refused["message"]
    assert refused["action"] == "billing"
    poor = alice_client.get(
        reverse("generate_price"), {"endpoint": T2V, "resolution": "720p", "duration": "5"}
    ).json()
    assert poor["allowed"] and poor["free_preview"]
    bad = alice_client.get(reverse("generate_price"), {"endpoint": "nope/x", "duration": "9"})
    assert bad.status_code == 200 and not bad.json()["allowed"]
    assert "Unknown endpoint" in bad.json()["message"]


def test_a_form_error_keeps_the_chosen_image(alice_client, client, user):
    image = png_bytes(200, 120)
    response = alice_client.post(
        reverse("generate"),
        {"endpoint": I2V, "prompt": "", **CHOICES, "image": upload("a.png", image)},
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "This field is required." in body
    token = re.search(r'name="image_draft" value="([^"]+)"', body).group(1)
    thumb = reverse("generate_draft", args=[token])
    assert thumb in body
    kept = alice_client.get(thumb)
    assert kept.status_code == 200 and kept["Content-Type"] in ("image/png", "image/jpeg")
    assert client.get(thumb).status_code == 302  # signed out: to sign-in, not the image
    # The next submit without a new file uses the kept image.
    response = alice_client.post(
        reverse("generate"),
        {"endpoint": I2V, "prompt": "it glows", **CHOICES, "image_draft": token},
    )
    generation = Generation.objects.get()
    assert response.status_code == 302 and response["Location"] == generation.get_absolute_url()
    assert GenerationInput.objects.filter(generation=generation).count() == 1
    assert alice_client.get(thumb).status_code == 404, "used up"


def test_a_kept_image_is_only_its_owners(alice_client, bob_client):
    response = alice_client.post(
        reverse("generate"),
        {"endpoint": I2V, "prompt": "", **CHOICES, "image": upload("a.png", png_bytes())},
    )
    token = re.search(r'name="image_draft" value="([^"]+)"', response.content.decode()).group(1)
    assert bob_client.get(reverse("generate_draft", args=[token])).status_code == 404
    response = bob_client.post(
        reverse("generate"),
        {"endpoint": I2V, "prompt": "mine now", **CHOICES, "image_draft": token},
    )
    assert response.status_code == 400 and not Generation.objects.exists()


def finished(user, **kwargs) -> Generation:
    output = default_storage.save("outputs/clip.mp4", ContentFile(b"mp4"))
    poster = default_storage.save("posters/clip.jpg", ContentFile(b"jpg"))
    return GenerationFactory(
        user=user, state=State.SUCCEEDED, output=output, poster=poster, **kwargs
    )


def test_delete_removes_the_files_and_keeps_the_ledger_and_audit(
    alice_client, bob_client, user, django_capture_on_commit_callbacks
):
    generation = finished(user)
    account = services.account_for(user)
    LedgerEntry.objects.create(
        account=account, kind="adjust", amount=0, generation=generation, idempotency_key="k"
    )
    names = [generation.output.name, generation.poster.name]
    assert all(default_storage.exists(name) for name in names)
    delete = reverse("generation_delete", args=[generation.pk])
    assert bob_client.post(delete).status_code == 404
    assert alice_client.get(delete).status_code == 405

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(delete)
    assert response.status_code == 302 and response["Location"] == reverse("gallery")
    assert not any(default_storage.exists(name) for name in names)
    assert alice_client.get(generation.get_absolute_url()).status_code == 404
    assert (
        alice_client.get(reverse("generation_media", args=[generation.pk, "video"])).status_code
        == 404
    )
    assert (
        generation.get_absolute_url() not in alice_client.get(reverse("gallery")).content.decode()
    )
    assert LedgerEntry.objects.filter(generation=generation).count() == 1
    entry = AuditEntry.objects.get(action="generation.delete")
    assert entry.target_id == str(generation.pk) and entry.actor == user
    api = alice_client.get(reverse("api_generation", args=[generation.pk]))
    assert api.status_code == 404


def test_a_video_being_made_is_not_deleted(alice_client, user):
    running = GenerationFactory(user=user, state=State.IN_PROGRESS)
    response = alice_client.post(reverse("generation_delete", args=[running.pk]), follow=True)
    assert "cancel it first" in response.content.decode()
    assert Generation.objects.visible_to(user).filter(pk=running.pk).exists()


def test_gallery_filters_by_state_and_mode_and_searches_prompts(alice_client, user, other_user):
    fox = finished(user, prompt="a red fox in snow")
    boat = GenerationFactory(user=user, state=State.FAILED, prompt="a paper boat")
    melt = finished(user, prompt="ice cream melts", endpoint_id=EFFECTS)
    finished(other_user, prompt="bob's fox")

    def shown(**query):
        body = alice_client.get(reverse("gallery"), query).content.decode()
        return {g for g in (fox, boat, melt) if g.get_absolute_url() in body}, body

    assert shown()[0] == {fox, boat, melt}
    assert shown(state="ready")[0] == {fox, melt}
    assert shown(state="failed")[0] == {boat}
    assert shown(mode="effect")[0] == {melt}
    assert shown(q="FOX")[0] == {fox}
    assert shown(model=EFFECTS)[0] == {melt}
    assert melt not in shown(model=T2V)[0] and fox in shown(model=fox.endpoint_id)[0]
    assert "bob" not in shown(q="fox")[1]
    found, body = shown(q="nothing like it")
    assert not found and "No clips match" in body
    assert shown(state="bogus", mode="nonsense")[0] == {fox, boat, melt}, "unknown: ignored"


def test_a_canceled_clip_offers_try_again_prefilled(alice_client, user):
    canceled = GenerationFactory(
        user=user,
        state=State.CANCELED,
        prompt="a lighthouse at dusk",
        preset="orbit",
        arguments={"prompt": "a lighthouse at dusk", "resolution": "720p", "duration": 10},
    )
    page = alice_client.get(canceled.get_absolute_url()).content.decode()
    again = f"{reverse('generate')}?from={canceled.pk}"
    assert again in page and "Try again" in page
    form = alice_client.get(again).content.decode()
    assert "a lighthouse at dusk</textarea>" in form
    assert re.search(r'value="orbit"[^>]*checked', form)
    assert re.search(r'name="duration" value="10"[^>]*checked', form)


def test_kept_images_are_swept_by_the_media_cleanup(alice_client, user):
    import datetime as dt

    from django.utils import timezone

    from generation import drafts, retention

    token = drafts.draft_save(user=user, upload=upload("a.png", png_bytes()))
    draft = drafts.draft_open(user=user, token=token)
    assert default_storage.exists(draft["name"])
    assert retention.delete_orphans(older_than=timezone.now() - dt.timedelta(hours=1)) == 0
    assert retention.delete_orphans(older_than=timezone.now() + dt.timedelta(seconds=1)) == 1
    assert drafts.draft_open(user=user, token=token) is None


def test_out_of_credits_names_what_this_site_offers(alice_client, settings):
    settings.FREE_DAILY_PREVIEWS = 0
    choice = {"endpoint": T2V, "resolution": "720p", "duration": "5"}
    offline = alice_client.get(reverse("generate_price"), choice).json()
    assert not offline["allowed"] and "costs 40 credits and you have 0" in offline["message"]
    assert "ask its staff" in offline["message"] and "Buy" not in offline["message"]
    response = alice_client.post(reverse("generate"), {**choice, **CHOICES, "prompt": "a fox"})
    assert response.status_code == 402 and "ask its staff" in response.content.decode()
    settings.BILLING_ENABLED = True
    online = alice_client.get(reverse("generate_price"), choice).json()
    assert "Buy a credit pack" in online["message"]


def test_a_preview_and_its_hd_render_are_one_clip_in_the_gallery(alice_client, user):
    preview = finished(user, prompt="a lighthouse")
    hd = finished(user, prompt="a lighthouse", tier="hd", resolution="1080p", rerender_of=preview)
    body = alice_client.get(reverse("gallery")).content.decode()
    assert body.count('<li data-state="succeeded">') == 1
    assert f'href="{hd.get_absolute_url()}">HD version' in body
    # Once the preview is deleted, the HD render is a clip of its own.
    Generation.objects.filter(pk=preview.pk).update(deleted_at=timezone.now())
    body = alice_client.get(reverse("gallery")).content.decode()
    assert hd.get_absolute_url() in body and preview.get_absolute_url() not in body


def test_copy_settings_brings_the_image_back_or_does_without(alice_client, user):
    generation = finished(user, endpoint_id=I2V, prompt="it glows")
    name = default_storage.save("inputs/still.png", ContentFile(png_bytes()))
    GenerationInput.objects.create(
        generation=generation, position=0, file=name, content_type="image/png"
    )
    form = alice_client.get(reverse("generate"), {"from": generation.pk}).content.decode()
    assert "/generate/draft/" in form and "it glows</textarea>" in form
    default_storage.delete(name)  # swept since: the settings still come back
    form = alice_client.get(reverse("generate"), {"from": generation.pk})
    assert form.status_code == 200 and "/generate/draft/" not in form.content.decode()
    assert alice_client.get(reverse("generate"), {"from": "not-a-uuid"}).status_code == 200


SCENES = "fal-ai/pika/v2.2/pikascenes"
FRAMES = "fal-ai/pika/v2.2/pikaframes"


def _colours(generation) -> list[tuple]:
    from PIL import Image

    out = []
    for item in generation.inputs.filter(kind="image").order_by("position"):
        with default_storage.open(item.file.name, "rb") as handle:
            pixel = Image.open(handle).convert("RGB").getpixel((3, 3))
        out.append(tuple(round(c / 10) * 10 for c in pixel))  # JPEG re-encoding shifts a little
    return out


def test_several_images_are_kept_in_order_across_an_error(alice_client, user):
    red, green, blue = (200, 30, 30), (30, 200, 30), (30, 30, 200)
    files = [upload(f"{n}.png", png_bytes(200, 120, c)) for n, c in enumerate((red, green, blue))]
    body = {"endpoint": SCENES, "prompt": "", "resolution": "720p", "duration": "5"}
    response = alice_client.post(reverse("generate"), {**body, "preset": "static", "image": files})
    assert response.status_code == 400  # Pikascenes needs a prompt
    page = response.content.decode()
    tokens = re.search(r'name="image_draft" value="([^"]+)"', page).group(1).split()
    assert len(tokens) == 3 and page.count("/generate/draft/") == 3
    # The page put the last one first, then a new image after them: "d d d u" reordered.
    yellow = upload("y.png", png_bytes(200, 120, (200, 200, 30)))
    response = alice_client.post(
        reverse("generate"),
        {
            **body,
            "prompt": "a fox and a lantern",
            "preset": "static",
            "image_draft": " ".join([tokens[2], tokens[0], tokens[1]]),
            "image_order": "d d u d",
            "image": [yellow],
        },
    )
    assert response.status_code == 302, response.content[:800]
    generation = Generation.objects.get()
    assert _colours(generation) == [blue, red, (200, 200, 30), green]


def test_keyframes_from_the_form_carry_each_transition(alice_client, user):
    files = [upload(f"{n}.png", png_bytes(200, 120, (40 * n, 90, 90))) for n in range(3)]
    response = alice_client.post(
        reverse("generate"),
        {
            "endpoint": FRAMES,
            "resolution": "720p",
            "preset": "static",
            "image": files,
            "t1_prompt": "it turns",
            "t1_duration": "2",
            "t2_duration": "3",
            "t3_duration": "9",  # a row for a fourth keyframe that is not there: not sent
        },
    )
    assert response.status_code == 302, response.content[:800]
    generation = Generation.objects.get()
    assert generation.arguments["transitions"] == [
        {"duration": 2, "prompt": "it turns"},
        {"duration": 3},
    ]
    assert generation.duration == 5
    page = alice_client.get(generation.get_absolute_url()).content.decode()
    assert "3, moving 2 s + 3 s" in page  # the video page says it in words
    price = alice_client.get(
        reverse("generate_price"), {"endpoint": FRAMES, "resolution": "720p", "transitions": "2,3"}
    ).json()
    assert (
        price["allowed"]
        and price["list_credits"] == generation.credit_cost
        or price["free_preview"]
    )
    too_long = alice_client.get(
        reverse("generate_price"), {"endpoint": FRAMES, "transitions": "20,20"}
    ).json()
    assert not too_long["allowed"] and "limit is 25 s" in too_long["message"]


def test_an_input_video_link_to_a_private_address_is_refused(alice_client, user):
    response = alice_client.post(
        reverse("generate"),
        {
            "endpoint": "fal-ai/pika/v2/pikadditions",
            "prompt": "add a balloon",
            "preset": "static",
            "image": upload("a.png", png_bytes()),
            "video_url": "https://169.254.169.254/latest/clip.mp4",
        },
    )
    assert response.status_code == 400
    assert "public" in response.content.decode() or "address" in response.content.decode()
    assert not Generation.objects.exists()


def test_copy_settings_brings_every_keyframe_back_in_order(alice_client, user):
    files = [upload(f"{n}.png", png_bytes(200, 120, (60 * n, 90, 90))) for n in range(3)]
    alice_client.post(
        reverse("generate"),
        {
            "endpoint": FRAMES,
            "preset": "static",
            "image": files,
            "t1_duration": "2",
            "t2_duration": "2",
            "t1_prompt": "first move",
        },
    )
    source = Generation.objects.get()
    form = alice_client.get(f"{reverse('generate')}?from={source.pk}").content.decode()
    tokens = re.search(r'name="image_draft" value="([^"]+)"', form).group(1).split()
    assert len(tokens) == 3
    assert 'value="first move"' in form


def test_at_the_days_cap_the_button_says_so_before_the_click(alice_client, user, settings):
    settings.BILLING_PLAN_OVERRIDES = '{"free": {"max_generations_per_day": 1, "max_in_flight": 5}}'
    choice = {"endpoint": T2V, "resolution": "720p", "duration": "5"}
    assert alice_client.get(reverse("generate_price"), choice).json()["allowed"]
    made = alice_client.post(reverse("generate"), {**choice, **CHOICES, "prompt": "a fox"})
    assert made.status_code == 302
    price = alice_client.get(reverse("generate_price"), choice).json()
    assert not price["allowed"] and price["action"] == "billing"
    assert "allows 1 generation a day" in price["message"]
    refused = alice_client.post(reverse("generate"), {**choice, **CHOICES, "prompt": "a cat"})
    assert refused.status_code == 429 and Generation.objects.count() == 1


def test_the_credentials_line_says_which_renderer_made_the_clip(alice_client, user):
    offline = GenerationFactory(user=user, succeeded=True, backend="local", c2pa_manifest="urn:x")
    at_fal = GenerationFactory(user=user, succeeded=True, backend="fal", c2pa_manifest="urn:y")
    page = alice_client.get(reverse("generation_detail", args=[offline.pk])).content.decode()
    assert "made by the offline renderer in place of" in page and "AI-generated by" not in page
    page = alice_client.get(reverse("generation_detail", args=[at_fal.pk])).content.decode()
    assert "AI-generated by" in page
