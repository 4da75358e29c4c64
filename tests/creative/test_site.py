"""The creative tools on the website, through Django's test client (the browser test drives
the same pages in Chromium)."""

import json

import pytest

from creative.models import Batch, CreativePreference, Recipe
from generation.models import Generation

pytestmark = pytest.mark.django_db

FORM = {
    "endpoint": "fal-ai/pika/v2.2/text-to-video",
    "prompt": "a red fox trots through snow, slow dolly-in",
    "aspect_ratio": "16:9",
    "resolution": "720p",
    "duration": "5",
    "preset": "static",
    "constraints_shown": "1",
    "constraints_on": "1",
    "constraints_text": "text, watermark, logo, distortion, flicker",
}


@pytest.fixture
def site(client, creator):
    client.force_login(creator)
    return client


def test_the_generate_page_shows_the_panel(site):
    page = site.get("/generate/").content.decode()
    assert 'id="creative-panel"' in page and 'id="template-select"' in page
    assert "no text, no watermark, no logo, no distortion, stable frames" in page
    templates = page.split('id="creative-templates" type="application/json">')[1]
    assert json.loads(templates.split("</script>")[0])[0]["slug"]


def test_one_render_with_a_template_and_constraints(site):
    response = site.post(
        "/generate/",
        {**FORM, "template": "product-turntable", "slots": json.dumps({"product": "a mug"})},
    )
    assert response.status_code == 302
    generation = Generation.objects.get()
    assert generation.constraints == "text, watermark, logo, distortion, flicker"
    assert Recipe.objects.get(generation=generation).slots == {"product": "a mug"}


def test_constraints_unticked_and_remembered(site, creator):
    form = {k: v for k, v in FORM.items() if k != "constraints_on"}
    site.post("/generate/", {**form, "constraints_remember": "1"})
    assert Generation.objects.get().constraints == ""
    assert CreativePreference.objects.get(user=creator).constraints_on is False
    assert 'id="constraints-on" value="1" checked' not in site.get("/generate/").content.decode()


def test_three_variations_lead_to_the_comparison_page(site):
    response = site.post("/generate/", {**FORM, "variations": "3"})
    batch = Batch.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/batches/{batch.pk}/"
    page = site.get(response["Location"]).content.decode()
    assert page.count('class="card variant') == 3
    assert "Render in HD" not in page  # not finished yet (queued: no on-commit in this test)


def test_a_refused_variation_explains_and_offers_the_ones_that_fit(client, user):
    client.force_login(user)  # free plan: one job at a time
    page = client.post("/generate/", {**FORM, "variations": "2"})
    assert page.status_code == 429  # the in-flight limit, as every plan limit
    text = page.content.decode()
    assert "Variation 2 of 2" in text and 'id="start-fitting"' in text
    assert not Generation.objects.exists()
    started = client.post("/generate/", {**FORM, "variations": "2", "partial": "1"})
    assert started.status_code == 302
    assert Generation.objects.count() == 1


def test_the_same_request_offers_the_clip(site):
    form = {**FORM, "seed": "99"}
    first = site.post("/generate/", form)
    assert first.status_code == 302
    again = site.post("/generate/", form)
    assert again.status_code == 409
    text = again.content.decode()
    assert "You made this" in text and 'id="duplicate-force"' in text
    assert Generation.objects.get().get_absolute_url() in text
    forced = site.post("/generate/", {**form, "force": "1"})
    assert forced.status_code == 302 and Generation.objects.count() == 2


def test_hints_and_variation_prices(site):
    hints = site.get("/generate/hints/", {"prompt": "fox", "preset": "static"}).json()["hints"]
    assert {h["rule"] for h in hints} == {"no_camera", "too_short"}
    price = site.get(
        "/generate/variations/price/", {"variations": "3", "duration": "10",
                                        "endpoint": "fal-ai/pika/v2.2/text-to-video"}
    ).json()  # fmt: skip
    assert price["label"] == f"Generate 3 variations · {price['estimate']['total_credits']} credits"
    assert price["estimate"]["total_credits"] > 0


def test_keep_marks_one_variant(site):
    site.post("/generate/", {**FORM, "variations": "2"})
    batch = Batch.objects.get()
    recipe = Recipe.objects.filter(batch=batch).first()
    site.post(f"/batches/{batch.pk}/keep/{recipe.generation_id}/")
    recipe.refresh_from_db()
    assert recipe.kept


def test_storyboard_split_edit_and_queue(site):
    text = "\n\n".join(f"Paragraph {n}: a baker at work." for n in range(1, 4))
    page = site.post("/storyboard/", {"text": text, "template": "story-scene", "action": "split"})
    assert page.status_code == 200
    body = page.content.decode()
    assert body.count('name="scene_') == 3 and "Render 3 scenes" in body
    queued = site.post(
        "/storyboard/",
        {
            "text": text,
            "template": "story-scene",
            "action": "queue",
            "scene_0": "a baker",
            "scene_1": "an oven",
            "scene_2": "",
            "title": "Bakery",
        },  # fmt: skip
    )
    batch = Batch.objects.get()
    assert queued["Location"] == f"/batches/{batch.pk}/"
    assert (batch.kind, batch.title) == ("storyboard", "Bakery")
    assert Recipe.objects.filter(batch=batch).count() == 2
    gallery = site.get("/gallery/").content.decode()
    assert 'id="collections"' in gallery and "Bakery" in gallery


def test_someone_elses_batch_is_404(site, other_user, client):
    site.post("/generate/", {**FORM, "variations": "2"})
    batch = Batch.objects.get()
    client.force_login(other_user)
    assert client.get(f"/batches/{batch.pk}/").status_code == 404


def test_one_slot_varied_keeps_one_seed(site):
    response = site.post(
        "/generate/",
        {
            **FORM,
            "template": "cinematic-establishing",
            "slots": json.dumps({"subject": "a lighthouse"}),
            "vary_slot": "lighting",
            "vary_values": "soft golden light\ncold blue moonlight\n",
        },
    )
    assert response.status_code == 302
    batch = Batch.objects.get()
    generations = Generation.objects.filter(recipe__batch=batch).order_by("recipe__position")
    assert batch.varied == "lighting" and len({g.seed for g in generations}) == 1
    assert ["soft golden light" in generations[0].prompt, "cold blue moonlight" in
            generations[1].prompt] == [True, True]  # fmt: skip
    one = site.post(
        "/generate/",
        {
            **FORM,
            "template": "cinematic-establishing",
            "slots": "{}",
            "vary_slot": "lighting",
            "vary_values": "only one",
        },  # fmt: skip
    )
    assert one.status_code == 400 and "Give 2 to 4 values" in one.content.decode()
