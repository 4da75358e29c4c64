"""Built-in constraints: on by default, per endpoint, editable, recorded on the row."""

import pytest

from creative import constraints
from generation import catalogue
from workflows.generations import generation_create

pytestmark = pytest.mark.django_db

T2V = "fal-ai/pika/v2.2/text-to-video"


def test_default_is_on_with_the_standard_terms(user):
    choice = constraints.preference_of(user)
    assert choice.on is True
    assert choice.terms == "text, watermark, logo, distortion, flicker"
    assert constraints.DEFAULT_LABEL == (
        "no text, no watermark, no logo, no distortion, stable frames"
    )


def test_a_user_can_turn_them_off_or_reword_them(user, other_user):
    constraints.preference_set(user=user, on=False)
    assert constraints.preference_of(user).on is False
    assert constraints.preference_of(other_user).on is True
    constraints.preference_set(user=user, on=True, terms="  captions ,, subtitles ")
    assert constraints.preference_of(user).terms == "captions, subtitles"
    # A request's own choice wins over the default.
    assert constraints.resolve(user, on=False).on is False
    assert constraints.resolve(user, terms="blur").terms == "blur"


def test_terms_are_added_once_to_the_negative_prompt():
    assert constraints.with_constraints("ugly, Text", "text, logo") == "ugly, Text, logo"
    assert constraints.with_constraints("", "text, logo") == "text, logo"


@pytest.mark.parametrize(
    "endpoint", [e.id for e in catalogue.endpoints()], ids=lambda e: e.split("/", 2)[-1]
)
def test_which_endpoints_take_them(endpoint):
    """Every endpoint with a negative prompt takes them; the catalogue decides."""
    takes = "negative_prompt" in catalogue.get_endpoint(endpoint).fields
    assert constraints.takes_constraints(endpoint) is takes


def test_on_they_reach_the_provider_and_the_row(user):
    generation = generation_create(
        user=user,
        endpoint_id=T2V,
        inputs={"prompt": "a red fox in snow", "negative_prompt": "blurry"},
        constraints=constraints.DEFAULT_TERMS,
    )
    assert generation.arguments["negative_prompt"] == (
        "blurry, text, watermark, logo, distortion, flicker"
    )
    assert generation.constraints == constraints.DEFAULT_TERMS


def test_off_nothing_is_added(user):
    generation = generation_create(
        user=user, endpoint_id=T2V, inputs={"prompt": "a red fox in snow"}, constraints=""
    )
    assert generation.arguments["negative_prompt"] == "ugly, bad, terrible"  # the default
    assert generation.constraints == ""


def test_an_endpoint_without_a_negative_prompt_records_none(user, monkeypatch, settings):
    """No catalogued endpoint lacks one today, so one is made without: nothing is added."""
    endpoint = catalogue.get_endpoint(T2V)
    fields = {k: v for k, v in endpoint.fields.items() if k != "negative_prompt"}
    from dataclasses import replace

    bare = replace(endpoint, fields=fields)
    monkeypatch.setitem(catalogue._load(), T2V, bare)
    assert not constraints.takes_constraints(T2V)
    generation = generation_create(
        user=user,
        endpoint_id=T2V,
        inputs={"prompt": "a red fox in snow"},
        constraints=constraints.DEFAULT_TERMS,
    )
    assert "negative_prompt" not in generation.arguments
    assert generation.constraints == ""
