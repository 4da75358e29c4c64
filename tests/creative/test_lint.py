"""Prompt lint: every rule with a positive and a negative example, and its one-click fix."""

import pytest

from creative.lint import RULES, prompt_hints

T2V = "fal-ai/pika/v2.2/text-to-video"
I2V = "fal-ai/pika/v2.2/image-to-video"
GOOD = "A red fox trots through fresh snow at dawn, slow dolly-in"

# rule, request that must raise it, request that must not
TABLE = [
    (
        "too_many_styles",
        {"prompt": "A fox in snow, anime, watercolor, cyberpunk, slow dolly-in"},
        {"prompt": "A fox in snow, anime, watercolor, slow dolly-in"},
    ),
    (
        "no_camera",
        {"prompt": "A red fox trots through fresh snow at dawn"},
        {"prompt": "A red fox trots through fresh snow at dawn", "preset": "pan_left"},
    ),
    (
        "strong_motion_on_still",
        {
            "prompt": "She starts spinning and jumping, camera pans left",
            "endpoint_id": I2V,
            "image_count": 1,
        },
        {
            "prompt": "She smiles and blinks slowly, camera pans left",
            "endpoint_id": I2V,
            "image_count": 1,
        },
    ),
    ("too_short", {"prompt": "fox, dolly-in"}, {"prompt": GOOD}),
    (
        "too_long",
        {"prompt": "A red fox trots through snow, slow dolly-in, " + "with bright trees " * 25},
        {"prompt": "A red fox trots through snow, slow dolly-in, " + "with bright trees " * 5},
    ),
    (
        "contradiction",
        {"prompt": "A lighthouse at dusk, static camera, camera orbits the tower"},
        {"prompt": "A lighthouse at dusk, camera orbits the tower"},
    ),
    (
        "missing_subject",
        {"prompt": "Cinematic, golden hour, slow dolly-in, 4k, dramatic"},
        {"prompt": "A lighthouse, cinematic, golden hour, slow dolly-in, 4k"},
    ),
]


def rules_of(request) -> list[str]:
    request = dict(request)
    prompt = request.pop("prompt")
    return [hint.rule for hint in prompt_hints(prompt, **request)]


def test_the_table_covers_every_rule():
    assert sorted(row[0] for row in TABLE) == sorted(RULES)


@pytest.mark.parametrize("rule,positive,negative", TABLE, ids=[row[0] for row in TABLE])
def test_rule(rule, positive, negative):
    assert rule in rules_of(positive)
    assert rule not in rules_of(negative)


def test_a_good_prompt_has_no_hint():
    assert rules_of({"prompt": GOOD}) == []


def test_the_static_preset_with_an_orbit_prompt_is_no_contradiction_but_orbit_preset_is():
    assert "contradiction" not in rules_of({"prompt": "A tower, camera orbits it"})
    assert "contradiction" in rules_of(
        {"prompt": "A tower at dusk, static camera, locked-off", "preset": "orbit"}
    )


def test_strong_motion_on_a_portrait_shape_text_request():
    request = {"prompt": "Portrait of a woman spinning fast, camera pans left",
               "aspect_ratio": "9:16"}  # fmt: skip
    assert "strong_motion_on_still" in rules_of(request)
    assert "strong_motion_on_still" not in rules_of(
        {"prompt": "A car rushing down a highway at night, camera pans left"}
    )


def test_fixes_apply_in_one_click_and_clear_the_hint():
    """Applying a hint's fix to the request removes that hint."""
    for rule, positive, _ in TABLE:
        request = dict(positive)
        prompt = request.pop("prompt")
        hint = next(h for h in prompt_hints(prompt, **request) if h.rule == rule)
        if hint.fix is None:
            continue
        if hint.fix["field"] == "prompt":
            prompt = hint.fix["value"]
        else:
            request[hint.fix["field"]] = hint.fix["value"]
        assert rule not in [h.rule for h in prompt_hints(prompt, **request)], (rule, hint.fix)


def test_rules_with_a_fix_and_without():
    fixed = {row[0] for row in TABLE if any(
        h.fix for h in prompt_hints(row[1]["prompt"], **{k: v for k, v in row[1].items()
                                                            if k != "prompt"}))}  # fmt: skip
    assert fixed == {"too_many_styles", "no_camera", "strong_motion_on_still", "contradiction"}


def test_lint_never_refuses_odd_input():
    assert prompt_hints("", endpoint_id="no/such/endpoint") == []
    assert prompt_hints("") == []
    assert isinstance(prompt_hints("{}" * 500), list)


def test_every_hint_explains_itself():
    for _, positive, _ in TABLE:
        request = dict(positive)
        for hint in prompt_hints(request.pop("prompt"), **request):
            assert hint.message.endswith(".") and len(hint.message) > 30
            assert set(hint.as_dict()) == {"rule", "message", "fix"}
