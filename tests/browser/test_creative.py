"""The creative tools in a real Chromium, offline: from a blank studio to a comparison of
three variations (a template filled in, a lint hint fixed in one click, the total price
shown before), and from a pasted text to a five-scene storyboard in one batch."""

import pytest

from billing import plans, services
from creative.models import Batch
from generation.models import Generation
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("tasks_queued_not_run"),
]


STORY = "\n\n".join(
    [
        "A baker wakes before dawn in a small town.",
        "She kneads dough while the oven warms.",
        "The first customers queue in the cold street.",
        "Children press their noses to the window.",
        "At noon the shelves are empty and she smiles.",
    ]
)


@pytest.fixture
def studio_user(settings):
    """A Studio-plan creator (eight jobs at a time) with credits, offline (no OpenAI key)."""
    settings.OPENAI_API_KEY = ""
    user = UserFactory(email="director@example.com")
    account = services.account_for(user)
    services.plan_change(account=account, plan=plans.STUDIO, source="staff")
    services.credits_purchase(account=account, credits=2000, key="director", reason="test")
    return user


def test_blank_studio_to_a_three_variation_comparison(tabs, studio_user):
    tab = tabs(studio_user)
    tab.open("/generate/")
    page = tab.page
    # A short prompt without a camera: hints appear as one types; one click fixes the camera.
    page.fill("textarea[name=prompt]", "fox")
    page.wait_for_selector("#lint-hints li[data-rule=no_camera]")
    assert page.locator("#lint-hints li[data-rule=too_short]").count() == 1
    page.click("#lint-hints li[data-rule=no_camera] button")
    assert page.is_checked("input[name=preset][value=dolly_in]")
    page.wait_for_selector("#lint-hints li[data-rule=no_camera]", state="detached")

    # A template: its slots, the final prompt previewed, then used with its settings.
    page.click("#template-picker summary")
    page.select_option("#template-select", "product-turntable")
    page.click("#template-use")  # the product is required: the browser asks for it
    assert page.input_value("textarea[name=prompt]") == "fox"
    page.fill("#template-slots input[data-slot=product]", "a ceramic mug")
    assert "a ceramic mug on a white marble pedestal" in page.inner_text("#template-preview")
    page.click("#template-use")
    assert page.input_value("textarea[name=prompt]").startswith(
        "Close-up product shot of a ceramic mug"
    )
    assert page.is_checked("input[name=aspect_ratio][value='1:1']")
    assert page.is_checked("input[name=preset][value=orbit]")
    assert page.is_checked("#constraints-on")  # on by default, shown before the render

    # Three variations: the total is shown before anything is spent.
    page.click("#variations label:has-text('3 side by side')")
    page.wait_for_function(
        "() => document.getElementById('variations-note').textContent.includes('3 variations')"
    )
    assert "3 free previews" in page.inner_text("#variations-note")
    page.click("#generate-button")
    page.wait_for_url("**/batches/**")
    assert page.locator("#compare-grid .variant").count() == 3
    batch = Batch.objects.get()
    generations = Generation.objects.filter(recipe__batch=batch)
    assert generations.count() == 3 and len({g.seed for g in generations}) == 3
    assert {g.constraints for g in generations} == {"text, watermark, logo, distortion, flicker"}
    assert all(g.prompt.startswith("Close-up product shot of a ceramic mug") for g in generations)


def test_pasted_text_to_a_five_scene_storyboard(tabs, studio_user):
    tab = tabs(studio_user)
    tab.open("/generate/")
    page = tab.page
    page.click("#storyboard-link")
    page.wait_for_url("**/storyboard/")
    page.fill("#story-text", STORY)
    page.select_option("#story-template", "story-scene")
    page.click("#story-split")
    page.wait_for_selector("#scene-4")
    assert page.locator("ol.scenes textarea").count() == 5
    assert page.input_value("#scene-0") == "A baker wakes before dawn in a small town"
    page.fill("#scene-0", "A baker lights the oven before dawn")
    page.fill("#story-title", "The bakery")
    assert "5 renders" in page.inner_text("#story-price")
    page.click("#story-queue")
    page.wait_for_url("**/batches/**")
    assert page.locator("#compare-grid .variant").count() == 5
    assert "Scene 5" in page.inner_text("#compare-grid")
    batch = Batch.objects.get()
    assert (batch.kind, batch.title) == ("storyboard", "The bakery")
    first = Generation.objects.get(recipe__batch=batch, recipe__position=0)
    # The edited scene, its article lowered to read inside the template's sentence.
    assert "Cinematic medium shot of a baker lights the oven before dawn" in first.prompt
    tab.open("/gallery/")
    assert "The bakery" in page.inner_text("#collections")
