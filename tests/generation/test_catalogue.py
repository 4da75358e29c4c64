from decimal import Decimal

import pytest

from core.errors import InputError
from generation import catalogue
from generation.catalogue import validate_input

T2V = "fal-ai/pika/v2.2/text-to-video"
V25 = "fal-ai/pika/v2.5/text-to-video"
I2V = "fal-ai/pika/v2.2/image-to-video"


def test_every_endpoint_of_the_protocol_is_catalogued():
    ids = {endpoint.id for endpoint in catalogue.endpoints()}
    assert ids == {
        "fal-ai/pika/v2.2/text-to-video",
        "fal-ai/pika/v2.2/image-to-video",
        "fal-ai/pika/v2.2/pikascenes",
        "fal-ai/pika/v2.2/pikaframes",
        "fal-ai/pika/v2.1/text-to-video",
        "fal-ai/pika/v2.1/image-to-video",
        "fal-ai/pika/v2/turbo/text-to-video",
        "fal-ai/pika/v2/turbo/image-to-video",
        "fal-ai/pika/v1.5/pikaffects",
        "fal-ai/pika/v2/pikadditions",
        "fal-ai/pika/v2/pikaswaps",
        "fal-ai/pika/v2.5/text-to-video",
    }


def test_text_to_video_defaults():
    valid = validate_input(T2V, {"prompt": "a fox"})
    assert valid.arguments == {
        "prompt": "a fox",
        "negative_prompt": "ugly, bad, terrible",
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "duration": 5,
    }
    assert (valid.resolution, valid.duration, valid.aspect_ratio) == ("720p", 5, "16:9")


def test_image_to_video_defaults_and_no_aspect_ratio():
    valid = validate_input(I2V, {"prompt": "waves"}, image_count=1)
    assert valid.arguments == {
        "prompt": "waves",
        "negative_prompt": "",
        "resolution": "720p",
        "duration": 5,
    }
    assert valid.aspect_ratio is None


def test_preset_is_phrased_into_the_prompt_but_not_the_user_prompt():
    valid = validate_input(T2V, {"prompt": "a fox"}, preset="dolly_in")
    assert valid.arguments["prompt"] == "a fox, slow dolly-in camera"
    assert valid.prompt == "a fox"


def test_duration_accepts_numeric_strings():
    assert validate_input(T2V, {"prompt": "x", "duration": "10"}).duration == 10


@pytest.mark.parametrize(
    ("endpoint", "data", "kwargs", "field", "fragment"),
    [
        (T2V, {}, {}, "prompt", "required"),
        (T2V, {"prompt": "   "}, {}, "prompt", "required"),
        (T2V, {"prompt": "x", "resolution": "4k"}, {}, "resolution", "720p, 1080p"),
        (T2V, {"prompt": "x", "aspect_ratio": "21:9"}, {}, "aspect_ratio", "16:9"),
        (T2V, {"prompt": "x", "duration": 7}, {}, "duration", "5, 10"),
        (T2V, {"prompt": "x", "duration": "long"}, {}, "duration", "not a number"),
        (T2V, {"prompt": "x", "colour": "red"}, {}, "colour", "does not take"),
        (T2V, {"prompt": "x" * 1001}, {}, "prompt", "limit is 1000"),
        (T2V, {"prompt": 5}, {}, "prompt", "text"),
        (T2V, {"prompt": "x"}, {"image_count": 1}, "image", "takes no image"),
        (T2V, {"prompt": "x"}, {"preset": "spin"}, "preset", "dolly_in"),
        (I2V, {"prompt": "x"}, {}, "image", "exactly 1 image"),
        (
            I2V,
            {"prompt": "x", "aspect_ratio": "1:1"},
            {"image_count": 1},
            "aspect_ratio",
            "does not take",
        ),
        ("fal-ai/pika/v2.2/pikaframes", {}, {"image_count": 1}, "image", "2 to 5"),
        (
            "fal-ai/pika/v2.2/pikaframes",
            {"transitions": [{"duration": 30}]},
            {"image_count": 2},
            "transitions[0].duration",
            "from 1 to 25",
        ),
        (
            "fal-ai/pika/v2.2/pikaframes",
            {"transitions": [{"duration": 20}] * 2},
            {"image_count": 3},
            "transitions",
            "limit is 25",
        ),
        ("fal-ai/pika/v2.2/pikascenes", {"prompt": "x"}, {"image_count": 7}, "image", "1 to 6"),
        ("fal-ai/pika/v1.5/pikaffects", {}, {"image_count": 1}, "pikaffect", "required"),
        (
            "fal-ai/pika/v1.5/pikaffects",
            {"pikaffect": "Vanish"},
            {"image_count": 1},
            "pikaffect",
            "Melt",
        ),
        ("fal-ai/pika/v2/pikadditions", {}, {"image_count": 1}, "video", "needs an input video"),
        ("fal-ai/pika/v2/pikaswaps", {}, {}, "video", "needs an input video"),
        (V25, {"prompt": "x", "aspect_ratio": "16:9"}, {}, "aspect_ratio", "does not take"),
        (V25, {"prompt": "x", "resolution": "4k"}, {}, "resolution", "480p, 720p, 1080p"),
        ("fal-ai/pika/v9/nothing", {}, {}, "endpoint", "Unknown endpoint"),
    ],
)
def test_bad_input_names_the_field(settings, endpoint, data, kwargs, field, fragment):
    settings.PROMPT_MAX_CHARS = 1000
    with pytest.raises(InputError) as caught:
        validate_input(endpoint, data, **kwargs)
    assert field in caught.value.errors
    assert fragment in caught.value.errors[field]


def test_pikaframes_default_transitions_follow_keyframes():
    valid = validate_input("fal-ai/pika/v2.2/pikaframes", {"prompt": "morph"}, image_count=3)
    assert valid.arguments["transitions"] == [{"duration": 5}, {"duration": 5}]
    assert valid.duration == 10


@pytest.mark.parametrize(
    ("resolution", "duration", "usd", "confirmed", "credits"),
    [
        ("720p", 5, "0.20", True, 40),
        ("1080p", 5, "0.45", True, 90),
        ("720p", 10, "0.40", False, 80),
        ("1080p", 10, "0.90", False, 180),
    ],
)
def test_price_table(resolution, duration, usd, confirmed, credits):
    valid = validate_input(T2V, {"prompt": "x", "resolution": resolution, "duration": duration})
    price = catalogue.price_of(valid)
    assert price.usd == Decimal(usd)
    assert price.confirmed is confirmed
    assert price.credits == credits


def test_credit_price_rounds_up_with_markup_settings(settings):
    settings.CREDIT_MARKUP = "1.5"
    settings.CREDIT_VALUE_USD = "0.07"
    # 0.20 * 1.5 / 0.07 = 4.285… -> 5
    assert catalogue.credits_for_usd(Decimal("0.20")) == 5


@pytest.fixture
def overrides(settings):
    def set_overrides(value: str) -> None:
        settings.FAL_PRICE_OVERRIDES = value
        catalogue._price_overrides.cache_clear()

    yield set_overrides
    catalogue._price_overrides.cache_clear()


def test_price_overrides_replace_estimates(overrides):
    overrides('{"fal-ai/pika/v2.2/text-to-video": {"720p": {"10": "0.35"}}}')
    valid = validate_input(T2V, {"prompt": "x", "duration": 10})
    price = catalogue.price_of(valid)
    assert (price.usd, price.confirmed) == (Decimal("0.35"), True)
    # The cells the override leaves out keep the catalogue's price.
    assert catalogue.price_of(validate_input(T2V, {"prompt": "x"})).usd == Decimal("0.20")


def test_every_endpoint_has_a_positive_price_for_its_defaults_or_is_unpublished():
    unpublished = set()
    for endpoint in catalogue.endpoints():
        resolution = endpoint.default("resolution") or "720p"
        duration = endpoint.default("duration") or 5
        if endpoint.price.rule == "unpublished":
            unpublished.add(endpoint.id)
            with pytest.raises(catalogue.PriceUnknown):
                catalogue.fal_price_usd(endpoint, resolution, duration)
            continue
        usd, _ = catalogue.fal_price_usd(endpoint, resolution, duration)
        assert usd > 0, endpoint.id
        assert endpoint.price.source, endpoint.id
    assert unpublished == {"fal-ai/pika/v2.5/text-to-video", "fal-ai/pika/v2/pikaswaps"}


FRAMES = "fal-ai/pika/v2.2/pikaframes"


def _frames(resolution: str, *seconds: int):
    transitions = [{"duration": s} for s in seconds]
    return validate_input(
        FRAMES,
        {"resolution": resolution, "transitions": transitions},
        image_count=len(seconds) + 1,
    )


@pytest.mark.parametrize(
    ("resolution", "seconds", "usd"),
    [
        # 5 s is the minimum billed, so 2 s + 1 s cost as much as 5 s.
        ("720p", (2, 1), "0.20"),
        ("720p", (5,), "0.20"),
        ("720p", (3, 4), "0.28"),
        ("720p", (5, 5, 5, 10), "1.00"),
        ("1080p", (2, 1), "0.30"),
        ("1080p", (5,), "0.30"),
        ("1080p", (3, 4), "0.42"),
        ("1080p", (5, 5, 5, 10), "1.50"),
    ],
)
def test_pikaframes_is_billed_per_second_with_a_5_second_minimum(resolution, seconds, usd):
    valid = _frames(resolution, *seconds)
    assert valid.duration == sum(seconds)
    price = catalogue.price_of(valid)
    assert price.usd == Decimal(usd)
    assert price.confirmed is True
    assert price.credits == catalogue.credits_for_usd(Decimal(usd))


def test_a_per_second_override_replaces_the_rate(overrides):
    overrides('{"fal-ai/pika/v2.2/pikaframes": {"per_second": {"1080p": "0.05"}}}')
    assert catalogue.price_of(_frames("1080p", 3, 4)).usd == Decimal("0.35")
    assert catalogue.price_of(_frames("1080p", 2)).usd == Decimal("0.25")  # minimum kept
    assert catalogue.price_of(_frames("720p", 3, 4)).usd == Decimal("0.28")  # not overridden


def test_a_per_video_override_of_a_per_second_endpoint_prices_whole_videos(overrides):
    overrides('{"fal-ai/pika/v2.2/pikaframes": {"720p": {"*": "0.10"}}}')
    assert catalogue.price_of(_frames("720p", 10, 10)).usd == Decimal("0.10")


def test_unpublished_price_is_refused_until_an_override_prices_it(overrides):
    valid = validate_input(V25, {"prompt": "x", "resolution": "480p"})
    assert valid.arguments == {
        "prompt": "x",
        "negative_prompt": "ugly, bad, terrible",
        "resolution": "480p",
        "duration": 5,
    }
    with pytest.raises(catalogue.PriceUnknown, match="FAL_PRICE_OVERRIDES prices it"):
        catalogue.price_of(valid)
    assert not catalogue.is_priced(catalogue.get_endpoint(V25))
    overrides('{"fal-ai/pika/v2.5/text-to-video": {"*": {"5": "0.25", "10": "0.50"}}}')
    assert catalogue.price_of(valid).usd == Decimal("0.25")
    assert catalogue.is_priced(catalogue.get_endpoint(V25))


def test_bad_price_data_is_a_configuration_error():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="source"):
        catalogue._price_rule("x", {"rule": "per_video", "usd": {"*": {"*": "1"}}})
    with pytest.raises(ImproperlyConfigured, match="rule"):
        catalogue._price_rule("x", {"rule": "per_block", "source": "s"})
