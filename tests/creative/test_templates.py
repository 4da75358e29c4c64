"""Prompt templates: the shipped library, filling slots, validation, user templates, admin."""

import pytest

from core.errors import InputError
from creative import templating
from creative.models import PromptTemplate
from generation import catalogue

pytestmark = pytest.mark.django_db


def test_the_shipped_library_is_in_the_database_after_migrate():
    shipped = templating.shipped_templates()
    assert len(shipped) >= 20
    kinds = {item["kind"] for item in shipped}
    for kind in ("cinematic_intro", "product_shot", "portrait", "broll", "loop", "seasonal",
                 "ad_variant", "localisation"):  # fmt: skip
        assert kind in kinds
    slugs = set(PromptTemplate.objects.filter(owner=None).values_list("slug", flat=True))
    assert slugs == {item["slug"] for item in shipped}


@pytest.mark.parametrize("item", templating.shipped_templates(), ids=lambda item: item["slug"])
def test_every_shipped_template_is_consistent(item):
    """Its slots are exactly the {names} in its text, its endpoint exists and takes its
    settings, and its preview with the defaults names every required slot."""
    assert [slot["name"] for slot in item["slots"]] == templating.slot_names(item["text"])
    endpoint = catalogue.get_endpoint(item["endpoint"])
    assert not endpoint.retired
    for name, value in item["settings"].items():
        if name == "preset":
            continue
        assert name in endpoint.fields, (item["slug"], name)
        if endpoint.choices(name):
            assert value in endpoint.choices(name), (item["slug"], name, value)
    template = PromptTemplate.objects.get(owner=None, slug=item["slug"])
    preview = templating.template_preview(template)
    assert "{" not in preview
    for slot in item["slots"]:
        if not slot["default"]:
            assert f"[{slot['label']}]" in preview


def test_sync_adds_only_missing_templates_and_keeps_staff_edits():
    template = PromptTemplate.objects.get(owner=None, slug="product-turntable")
    template.title = "Turntable (edited by staff)"
    template.active = False
    template.save()
    PromptTemplate.objects.filter(owner=None, slug="broll-city").delete()
    assert templating.templates_sync() == 1
    template.refresh_from_db()
    assert (template.title, template.active) == ("Turntable (edited by staff)", False)
    assert PromptTemplate.objects.filter(owner=None, slug="broll-city").exists()


def test_filling_uses_given_values_then_defaults():
    template = PromptTemplate.objects.get(owner=None, slug="product-turntable")
    filled = templating.template_fill(template, {"product": "a ceramic mug", "lighting": "neon"})
    assert filled.prompt == (
        "Close-up product shot of a ceramic mug on a white marble pedestal, neon, camera slowly "
        "orbits the product, studio background, label facing the camera, true colours"
    )
    assert filled.slots["product"] == "a ceramic mug"
    assert filled.slots["surface"] == "a white marble pedestal"


def test_a_missing_slot_is_named():
    template = PromptTemplate.objects.get(owner=None, slug="product-turntable")
    with pytest.raises(InputError) as caught:
        templating.template_fill(template, {"lighting": "neon"})
    assert list(caught.value.errors) == ["slots.product"]
    assert "product" in caught.value.errors["slots.product"]


def test_unknown_overlong_and_non_text_slots_are_refused():
    template = PromptTemplate.objects.get(owner=None, slug="product-turntable")
    with pytest.raises(InputError) as caught:
        templating.template_fill(
            template, {"product": "x" * 201, "colour": "red", "surface": ["a", "list"]}
        )
    assert set(caught.value.errors) == {"slots.product", "slots.colour", "slots.surface"}
    assert "200" in caught.value.errors["slots.product"]
    assert "has no slot 'colour'" in caught.value.errors["slots.colour"]


def test_a_slot_value_with_braces_stays_text():
    template = PromptTemplate.objects.get(owner=None, slug="product-turntable")
    filled = templating.template_fill(template, {"product": "a {lighting} lamp"})
    assert "a {lighting} lamp" in filled.prompt


def test_user_templates_are_private_and_win_over_shared_slugs(user, other_user):
    own = templating.template_save(
        user=user,
        title="Product turntable",
        text="{product} spinning on {surface}",
        endpoint_id=catalogue.DEFAULT_TEXT_ENDPOINT,
        defaults={"surface": "a table"},
        settings={"aspect_ratio": "1:1", "evil": "x"},
    )
    assert own.slug == "product-turntable"
    assert [s["name"] for s in own.slots] == ["product", "surface"]
    assert own.settings == {"aspect_ratio": "1:1"}
    assert templating.template_get(user=user, slug="product-turntable") == own
    assert templating.template_get(user=other_user, slug="product-turntable").shared
    assert own not in templating.templates_for(other_user)
    assert templating.templates_for(user)[0] == own
    with pytest.raises(InputError) as caught:
        templating.template_fill(own, {})
    assert list(caught.value.errors) == ["slots.product"]


def test_saving_a_template_needs_a_title_text_and_a_known_endpoint(user):
    with pytest.raises(InputError) as caught:
        templating.template_save(user=user, title=" ", text="", endpoint_id="nope")
    assert set(caught.value.errors) == {"title", "text", "endpoint"}


def test_staff_curate_shared_templates_in_admin(client):
    from tests.factories import UserFactory

    staff = UserFactory(email="curator@example.com", is_staff=True, is_superuser=True)
    client.force_login(staff)
    template = PromptTemplate.objects.get(owner=None, slug="loop-abstract")
    page = client.get(f"/admin/creative/prompttemplate/{template.pk}/change/")
    assert page.status_code == 200
    assert "Seamless looping background of flowing liquid gradients" in page.content.decode()
    listing = client.get("/admin/creative/prompttemplate/")
    assert listing.status_code == 200 and "Abstract loop" in listing.content.decode()
