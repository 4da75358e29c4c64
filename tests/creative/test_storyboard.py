"""Storyboards: split offline or written by the chat model (the real openai client against
the local fake), filled into a template, priced as one total, queued as one batch."""

import json

import pytest

from core.errors import InputError
from creative import storyboard
from creative.models import Batch, PromptTemplate, Recipe
from generation.models import Generation

pytestmark = pytest.mark.django_db

POST = (
    "A baker wakes before dawn in a small town.\n\n"
    "She kneads dough while the oven warms.\n\n"
    "The first customers queue in the cold street.\n\n"
    "Children press their noses to the window.\n\n"
    "At noon the shelves are empty and she smiles."
)


@pytest.fixture
def chat(fake_openai_server, settings):
    fake_openai_server.chat_mode = "ok"
    fake_openai_server.chat_content = None
    fake_openai_server.requests.clear()
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_BASE_URL = fake_openai_server.base_url
    return fake_openai_server


def test_paragraphs_are_scenes():
    assert storyboard.split_scenes(POST) == [
        "A baker wakes before dawn in a small town",
        "She kneads dough while the oven warms",
        "The first customers queue in the cold street",
        "Children press their noses to the window",
        "At noon the shelves are empty and she smiles",
    ]


def test_one_paragraph_is_split_by_sentences_and_merged_to_five():
    text = " ".join(f"Sentence number {n} happens here." for n in range(1, 12))
    scenes = storyboard.split_scenes(text)
    assert len(scenes) == 5
    assert scenes[0].startswith("Sentence number 1 happens here. Sentence number 2")
    assert scenes[-1].endswith("Sentence number 11 happens here")
    assert all(len(scene) <= 200 for scene in scenes)


def test_a_long_scene_is_cut_at_a_word():
    scene = storyboard.split_scenes("word " * 100)[0]
    assert len(scene) <= 200 and scene.endswith("word")


def test_offline_without_a_key(settings, fake_openai_server):
    settings.OPENAI_API_KEY = ""
    fake_openai_server.requests.clear()
    draft = storyboard.storyboard_draft(POST)
    assert draft.source == "offline" and len(draft.scenes) == 5
    assert fake_openai_server.requests == []


def test_with_a_key_the_chat_model_writes_the_scenes(chat):
    draft = storyboard.storyboard_draft(POST)
    assert draft.source == "openai"
    assert draft.scenes[0] == "Visual: A baker wakes before dawn in a small town"
    assert len(draft.scenes) == 5
    sent = next(r for r in chat.requests if r["path"].endswith("/chat/completions"))
    assert sent["auth"] == "Bearer sk-test"
    assert sent["body"]["response_format"] == {"type": "json_object"}
    assert sent["body"]["messages"][1]["content"] == POST


def test_the_model_never_gives_more_than_five(chat):
    chat.chat_content = json.dumps({"scenes": [{"prompt": f"scene {n}"} for n in range(9)]})
    assert storyboard.storyboard_draft(POST).scenes == [f"scene {n}" for n in range(5)]


@pytest.mark.parametrize("mode", ["500", "garbage"])
def test_a_failing_model_falls_back_to_the_offline_split(chat, mode):
    chat.chat_mode = mode
    draft = storyboard.storyboard_draft(POST)
    assert draft.source == "offline" and "did not answer" in draft.note
    assert draft.scenes == storyboard.split_scenes(POST)


def test_empty_and_too_long_texts_are_refused():
    with pytest.raises(InputError):
        storyboard.storyboard_draft("  ")
    with pytest.raises(InputError) as caught:
        storyboard.storyboard_draft("x" * 20_001)
    assert "20000" in caught.value.errors["text"]


def test_scenes_fill_the_templates_main_slot():
    template = PromptTemplate.objects.get(owner=None, slug="story-scene")
    assert storyboard.main_slot(template) == "action"
    filled = storyboard.storyboard_fill(template, ["a baker kneads dough"], {"mood": "warm"})
    assert filled[0].prompt == (
        "Cinematic medium shot of a baker kneads dough, a consistent setting, warm, soft natural "
        "light, slow dolly-in"
    )
    with pytest.raises(InputError) as caught:
        storyboard.storyboard_fill(template, ["ok", "x" * 300])
    assert list(caught.value.errors) == ["scenes[1]"]


def test_a_scene_sentence_reads_as_part_of_the_templates_sentence():
    template = PromptTemplate.objects.get(owner=None, slug="story-scene")
    scenes = ["A baker wakes before dawn.", "Paris wakes up.", "The oven glows"]
    prompts = [f.prompt for f in storyboard.storyboard_fill(template, scenes, {"mood": "warm"})]
    assert prompts[0].startswith("Cinematic medium shot of a baker wakes before dawn.")
    assert prompts[1].startswith("Cinematic medium shot of Paris wakes up.")  # a name stays
    assert prompts[2].startswith("Cinematic medium shot of the oven glows")


def test_api_draft_then_queue_as_one_batch(alice_api, creator, settings):
    settings.OPENAI_API_KEY = ""
    draft = alice_api.post(
        "/api/v1/storyboards", {"text": POST, "draft": True, "duration": 10}, format="json"
    )
    assert draft.status_code == 200, draft.json()
    body = draft.json()
    assert body["source"] == "offline" and len(body["scenes"]) == 5
    assert body["price"]["count"] == 5 and body["price"]["all_fit"] is False  # 3 at a time
    assert body["price"]["fitting"] == 3
    assert not Generation.objects.exists()
    edited = [scene["text"] for scene in body["scenes"]][:3]
    edited[0] = "a baker lights the oven at 4 am"
    queued = alice_api.post(
        "/api/v1/storyboards",
        {"text": POST, "scenes": edited, "title": "The bakery", "duration": 10},
        format="json",
    )
    assert queued.status_code == 201, queued.json()
    batch = Batch.objects.get(pk=queued.json()["batch"]["id"])
    assert (batch.kind, batch.title, batch.source_text) == ("storyboard", "The bakery", POST)
    generations = [Generation.objects.get(pk=g["id"]) for g in queued.json()["generations"]]
    assert "a baker lights the oven at 4 am" in generations[0].prompt
    assert batch.total_credits == sum(g.credit_cost for g in generations) > 0
    assert list(Recipe.objects.filter(batch=batch).values_list("position", flat=True)) == [0, 1, 2]


def test_api_storyboard_with_the_chat_model(alice_api, creator, chat):
    body = alice_api.post(
        "/api/v1/storyboards", {"text": POST, "draft": True, "template": "story-explainer"},
        format="json",
    ).json()  # fmt: skip
    assert body["source"] == "openai"
    assert body["scenes"][0]["prompt"].startswith(
        "Clear medium shot illustrating Visual: A baker wakes"
    )
