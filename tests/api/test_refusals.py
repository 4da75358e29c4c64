"""Every answer under /api/ carries the RateLimit headers, errors included (issue 19 item 3)."""

import pytest

pytestmark = pytest.mark.django_db


def test_every_answer_carries_ratelimit_headers(alice_api, client):
    answers = {
        "401": client.get("/api/v1/generations"),
        "404 id": alice_api.get("/api/v1/generations/00000000-0000-0000-0000-000000000000"),
        "404 path": alice_api.get("/api/v1/nope"),
        "404 path, no key": client.post("/api/v1/nope"),
        "405": alice_api.delete("/api/v1/models"),
        "406": alice_api.get("/api/v1/models", HTTP_ACCEPT="text/html"),
        "415": alice_api.generic("POST", "/api/v1/generations", "x", content_type="text/plain"),
        "400": alice_api.get("/api/v1/generations?limit=0"),
        "200 schema": client.get("/api/schema/"),
    }
    for name, answer in answers.items():
        expected = int(name.split()[0])
        assert answer.status_code == expected, name
        assert answer.get("RateLimit", "").startswith('"default";r='), name
        assert "RateLimit-Policy" in answer, name
        if expected >= 400:
            assert answer["Content-Type"] == "application/problem+json", name


@pytest.mark.parametrize("limit", ["0", "abc", "101", "-1", "1.5"])
def test_a_bad_limit_is_a_400_naming_the_parameter(alice_api, limit):
    answer = alice_api.get(f"/api/v1/generations?limit={limit}")
    assert answer.status_code == 400
    assert "limit" in answer.json()["errors"]


def test_a_bad_cursor_is_a_400(alice_api):
    answer = alice_api.get("/api/v1/generations?cursor=garbage")
    assert answer.status_code == 400
    assert "cursor" in answer.json()["errors"]
