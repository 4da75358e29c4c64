"""The creative tools through the API: templates, constraints, hints, variations, reuse."""

import pytest

from billing import services
from billing.models import LedgerEntry
from creative.models import Batch, PromptTemplate, Recipe
from generation.models import Generation, State
from tests.generation.test_end_to_end import drive_until_terminal

pytestmark = pytest.mark.django_db

Kind = LedgerEntry.Kind


def test_templates_are_listed_with_slots_preview_and_endpoint(alice_api):
    response = alice_api.get("/api/v1/templates")
    assert response.status_code == 200
    rows = response.json()["templates"]
    assert len(rows) >= 20
    turntable = next(row for row in rows if row["slug"] == "product-turntable")
    assert turntable["endpoint"] == "fal-ai/pika/v2.2/text-to-video"
    assert turntable["settings"]["preset"] == "orbit"
    product = next(slot for slot in turntable["slots"] if slot["name"] == "product")
    assert product["required"] is True
    assert "[Product]" in turntable["preview"]
    only = alice_api.get("/api/v1/templates?kind=loop").json()["templates"]
    assert only and {row["kind"] for row in only} == {"loop"}


def test_a_user_saves_a_template_and_only_they_see_it(alice_api, bob_api):
    saved = alice_api.post(
        "/api/v1/templates",
        {"title": "My fox", "text": "{animal} in snow, slow dolly-in", "defaults": {}},
        format="json",
    )
    assert saved.status_code == 201, saved.json()
    assert saved.json()["slots"][0] == {
        "name": "animal", "label": "Animal", "default": "", "required": True, "help": "",
    }  # fmt: skip
    assert any(
        r["slug"] == "my-fox" for r in alice_api.get("/api/v1/templates").json()["templates"]
    )
    assert not any(
        r["slug"] == "my-fox" for r in bob_api.get("/api/v1/templates").json()["templates"]
    )
    bad = bob_api.post("/api/v1/generations", {"template": "my-fox"}, format="json")
    assert bad.status_code == 400 and "template" in bad.json()["errors"]


def test_create_from_a_template_fills_the_prompt_and_records_the_recipe(alice_api, user):
    response = alice_api.post(
        "/api/v1/generations",
        {"template": "product-turntable", "slots": {"product": "a ceramic mug"}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    generation = Generation.objects.get(pk=response.json()["id"])
    assert generation.prompt.startswith("Close-up product shot of a ceramic mug on a white")
    assert generation.preset == "orbit"
    assert generation.aspect_ratio == "1:1"  # the template's setting
    recipe = Recipe.objects.get(generation=generation)
    assert recipe.template_slug == "product-turntable"
    assert recipe.slots["product"] == "a ceramic mug"
    # Constraints are on by default and recorded on the row.
    assert generation.constraints == "text, watermark, logo, distortion, flicker"
    assert generation.arguments["negative_prompt"].endswith("distortion, flicker")


def test_a_missing_slot_is_a_400_naming_it(alice_api):
    response = alice_api.post(
        "/api/v1/generations", {"template": "product-turntable", "slots": {}}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert list(body["errors"]) == ["slots.product"]
    assert "slots.product" in body["detail"]
    assert not Generation.objects.exists()
    estimate = alice_api.post("/api/v1/estimate", {"template": "product-turntable"}, format="json")
    assert estimate.status_code == 400 and list(estimate.json()["errors"]) == ["slots.product"]


def test_prompt_and_template_together_are_refused(alice_api):
    response = alice_api.post(
        "/api/v1/generations",
        {"template": "product-turntable", "slots": {"product": "a mug"}, "prompt": "a fox"},
        format="json",
    )
    assert response.status_code == 400 and "prompt" in response.json()["errors"]


def test_the_request_wins_over_the_template_settings(alice_api):
    response = alice_api.post(
        "/api/v1/generations",
        {
            "template": "product-turntable",
            "slots": {"product": "a mug"},
            "aspect_ratio": "16:9",
            "preset": "pan_left",
        },  # fmt: skip
        format="json",
    )
    assert response.status_code == 201
    assert (response.json()["aspect_ratio"], response.json()["preset"]) == ("16:9", "pan_left")


def test_constraints_off_per_request(alice_api):
    response = alice_api.post(
        "/api/v1/generations", {"prompt": "a red fox in snow", "constraints": False}, format="json"
    )
    generation = Generation.objects.get(pk=response.json()["id"])
    assert generation.constraints == ""
    assert generation.arguments["negative_prompt"] == "ugly, bad, terrible"


def test_estimate_shows_the_final_prompt_constraints_and_hints(alice_api):
    response = alice_api.post(
        "/api/v1/estimate",
        {"template": "product-turntable", "slots": {"product": "a mug"}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["prompt"].startswith("Close-up product shot of a mug")
    assert body["constraints"] == {
        "on": True, "terms": "text, watermark, logo, distortion, flicker", "applies": True,
    }  # fmt: skip
    assert body["negative_prompt"].endswith("flicker")
    assert body["hints"] == []  # a template's prompt names its camera and subject
    lint = alice_api.post("/api/v1/estimate", {"prompt": "fox"}, format="json").json()
    assert {h["rule"] for h in lint["hints"]} == {"no_camera", "too_short"}
    no_camera = next(h for h in lint["hints"] if h["rule"] == "no_camera")
    assert no_camera["fix"] == {"field": "preset", "value": "dolly_in"}


def test_estimate_of_variations_prices_each_and_the_total(alice_api, creator):
    response = alice_api.post(
        "/api/v1/estimate",
        {"prompt": "a red fox in snow, slow dolly-in", "variations": 3, "resolution": "720p"},
        format="json",
    )
    body = response.json()["variations"]
    # Creator: 10 free previews a day, so all three are free; the total says so.
    assert body["count"] == 3 and body["all_fit"] is True
    assert [r["free_preview"] for r in body["renders"]] == [True, True, True]
    assert body["total_credits"] == 0
    ten = alice_api.post(
        "/api/v1/estimate",
        {"prompt": "a red fox in snow, slow dolly-in", "variations": 2, "duration": 10},
        format="json",
    ).json()["variations"]
    assert ten["total_credits"] == 2 * ten["list_credits_each"] > 0


def test_three_variations_are_three_priced_held_and_settled_renders(
    alice_api, creator, django_capture_on_commit_callbacks
):
    account = services.account_for(creator)
    before = account.balance
    with django_capture_on_commit_callbacks(execute=True):  # submitted and rendered inline
        response = alice_api.post(
            "/api/v1/generations",
            {"prompt": "a red fox in snow, slow dolly-in", "variations": 3, "duration": 10},
            format="json",
        )
    assert response.status_code == 201, response.json()
    body = response.json()
    batch = Batch.objects.get(pk=body["batch"]["id"])
    assert batch.kind == "variations" and batch.varied == "seed"
    ids = [g["id"] for g in body["generations"]]
    assert len(ids) == 3 and body["refused"] == []
    generations = [Generation.objects.get(pk=pk) for pk in ids]
    assert len({g.seed for g in generations}) == 3
    each = generations[0].credit_cost
    assert each > 0 and batch.total_credits == 3 * each == body["batch"]["total_credits"]
    drive_until_terminal(django_capture_on_commit_callbacks)
    for generation in generations:  # each rendered and settled on its own
        generation.refresh_from_db()
        assert generation.state == State.SUCCEEDED
        entries = LedgerEntry.objects.filter(generation_id=generation.pk)
        assert sorted(entries.values_list("kind", flat=True)) == [Kind.CAPTURE, Kind.HOLD]
        assert entries.get(kind=Kind.HOLD).amount == -each
    account.refresh_from_db()
    assert account.balance == before - 3 * each
    detail = alice_api.get(f"/api/v1/batches/{batch.pk}").json()
    assert [g["id"] for g in detail["generations"]] == ids


def test_variations_held_before_they_render(alice_api, creator, queued_only):
    response = alice_api.post(
        "/api/v1/generations",
        {"prompt": "a red fox in snow, slow dolly-in", "variations": 2, "duration": 10},
        format="json",
    )
    ids = [g["id"] for g in response.json()["generations"]]
    assert {Generation.objects.get(pk=pk).state for pk in ids} == {State.QUEUED}
    assert LedgerEntry.objects.filter(generation_id__in=ids, kind=Kind.HOLD).count() == 2
    assert services.account_for(creator).in_flight == 2  # a plan slot per variant


def test_limits_count_per_variant_and_the_refusal_says_which(alice_api, user, queued_only):
    """Free plan: one job at a time. The second variation is refused, so none start."""
    response = alice_api.post(
        "/api/v1/generations",
        {"prompt": "a red fox in snow, slow dolly-in", "variations": 3},
        format="json",
    )
    assert response.status_code == 429  # the in-flight limit: the plan refusal's own status
    body = response.json()
    assert body["code"] == "plan_limit"
    assert "Variation 2 of 3" in body["detail"]
    assert "Only the first would fit" in body["detail"]
    assert "Nothing was started or charged" in body["detail"]
    assert not Generation.objects.exists() and not Batch.objects.exists()
    assert services.account_for(user).in_flight == 0


def test_partial_starts_the_ones_that_fit_and_lists_the_rest(alice_api, user, queued_only):
    response = alice_api.post(
        "/api/v1/generations",
        {"prompt": "a red fox in snow, slow dolly-in", "variations": 3, "partial": True},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert len(body["generations"]) == 1
    assert [r["position"] for r in body["refused"]] == [1, 2]
    assert all(r["code"] == "plan_limit" and "at a time" in r["message"] for r in body["refused"])
    estimate = alice_api.post(
        "/api/v1/estimate",
        {"prompt": "a red fox in snow, slow dolly-in", "variations": 2},
        format="json",
    ).json()["variations"]
    assert estimate["fitting"] == 0 and "at a time" in estimate["renders"][0]["why"]


def test_variations_of_one_slot_keep_one_seed(alice_api, creator):
    response = alice_api.post(
        "/api/v1/generations",
        {
            "template": "cinematic-establishing",
            "slots": {"subject": "a lighthouse"},
            "vary_slot": "lighting",
            "vary_values": ["soft golden light", "cold blue moonlight"],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    generations = [Generation.objects.get(pk=g["id"]) for g in response.json()["generations"]]
    assert len({g.seed for g in generations}) == 1
    assert "soft golden light" in generations[0].prompt
    assert "cold blue moonlight" in generations[1].prompt
    labels = list(Recipe.objects.order_by("position").values_list("label", flat=True))
    assert labels == ["soft golden light", "cold blue moonlight"]
    assert Batch.objects.get().varied == "lighting"


def test_variations_out_of_range_are_400(alice_api):
    for count in (1, 5):
        response = alice_api.post(
            "/api/v1/generations", {"prompt": "a fox", "variations": count}, format="json"
        )
        assert response.status_code == 400 and "variations" in response.json()["errors"]


def test_the_same_request_is_offered_the_existing_clip_unless_forced(alice_api, creator):
    request = {"prompt": "a red fox in snow, slow dolly-in", "seed": 42}
    first = alice_api.post("/api/v1/generations", request, format="json")
    assert first.status_code == 201
    again = alice_api.post("/api/v1/generations", request, format="json")
    assert again.status_code == 409
    body = again.json()
    assert body["code"] == "duplicate"
    assert body["duplicate_of"]["id"] == first.json()["id"]
    assert body["duplicate_of"]["url"].endswith(f"/api/v1/generations/{first.json()['id']}")
    assert Generation.objects.count() == 1
    forced = alice_api.post("/api/v1/generations", {**request, "force": True}, format="json")
    assert forced.status_code == 201 and forced.json()["id"] != first.json()["id"]


def test_what_differs_is_not_a_duplicate(alice_api, bob_api, creator):
    services.plan_change(account=services.account_for(creator), plan="studio", source="staff")
    base = {"prompt": "a red fox in snow, slow dolly-in", "seed": 42}
    assert alice_api.post("/api/v1/generations", base, format="json").status_code == 201
    for changed in ({"seed": 43}, {"duration": 10}, {"preset": "orbit"}, {"constraints": False}):
        response = alice_api.post("/api/v1/generations", {**base, **changed}, format="json")
        assert response.status_code == 201, (changed, response.json())
    assert bob_api.post("/api/v1/generations", base, format="json").status_code == 201
    # Without a seed each render draws its own: never a duplicate.
    unseeded = {"prompt": "a red fox in snow, slow dolly-in"}
    assert alice_api.post("/api/v1/generations", unseeded, format="json").status_code == 201
    assert alice_api.post("/api/v1/generations", unseeded, format="json").status_code == 201


def test_a_failed_or_deleted_clip_is_not_offered(alice_api, creator):
    request = {"prompt": "a red fox in snow, slow dolly-in", "seed": 7}
    first = Generation.objects.get(
        pk=alice_api.post("/api/v1/generations", request, format="json").json()["id"]
    )
    Generation.objects.filter(pk=first.pk).update(state=State.FAILED)
    second = alice_api.post("/api/v1/generations", request, format="json")
    assert second.status_code == 201
    Generation.objects.filter(pk=second.json()["id"]).update(deleted_at=second_time())
    assert alice_api.post("/api/v1/generations", request, format="json").status_code == 201


def second_time():
    from django.utils import timezone

    return timezone.now()


def test_same_images_matter(alice_api, creator):
    from tests.support.media import png_bytes

    def post(color):
        from django.core.files.uploadedfile import SimpleUploadedFile

        image = SimpleUploadedFile("a.png", png_bytes(64, 64, color), content_type="image/png")
        return alice_api.post(
            "/api/v1/generations",
            {"prompt": "it glows, slow dolly-in", "seed": 5, "image": image},
            format="multipart",
        )

    assert post((10, 20, 200)).status_code == 201
    assert post((10, 20, 200)).status_code == 409
    assert post((200, 20, 10)).status_code == 201


def test_shared_templates_hidden_by_staff_are_not_offered(alice_api):
    PromptTemplate.objects.filter(slug="product-turntable").update(active=False)
    rows = alice_api.get("/api/v1/templates").json()["templates"]
    assert not any(row["slug"] == "product-turntable" for row in rows)
    response = alice_api.post(
        "/api/v1/generations",
        {"template": "product-turntable", "slots": {"product": "a mug"}},
        format="json",
    )
    assert response.status_code == 400


def test_estimate_says_when_you_made_it_already(alice_api, creator):
    request = {"prompt": "a red fox in snow, slow dolly-in", "seed": 11}
    assert "duplicate_of" not in alice_api.post("/api/v1/estimate", request, format="json").json()
    made = alice_api.post("/api/v1/generations", request, format="json").json()
    estimate = alice_api.post("/api/v1/estimate", request, format="json").json()
    assert estimate["duplicate_of"]["id"] == made["id"]
    other = alice_api.post("/api/v1/estimate", {**request, "seed": 12}, format="json").json()
    assert "duplicate_of" not in other
