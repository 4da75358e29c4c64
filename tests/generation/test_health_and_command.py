import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from generation.models import Generation, State
from tests.support.media import png_bytes

pytestmark = pytest.mark.django_db


def test_healthz_checks_database_broker_and_storage(client, settings):
    settings.HEALTHZ_TOKEN = "monitor-token"
    response = client.get("/healthz", headers={"Authorization": "Bearer monitor-token"})
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert set(body["checks"]) == {"database", "broker", "storage"}
    assert body["parts"]["video_backend"] == "local"


def test_healthz_tells_the_public_only_ok(client, settings):
    settings.HEALTHZ_TOKEN = "monitor-token"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "monitor-token"}):
        response = client.get("/healthz", headers=headers)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain")
        assert response.content == b"ok"


def test_healthz_without_a_token_configured_refuses_an_empty_bearer(client, settings):
    settings.HEALTHZ_TOKEN = ""
    response = client.get("/healthz", headers={"Authorization": "Bearer "})
    assert response.content == b"ok"


def test_healthz_details_for_staff_but_not_for_users(client, user):
    client.force_login(user)
    assert client.get("/healthz").content == b"ok"
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    assert client.get("/healthz").json()["parts"]["broker"] in {"orm", "redis"}


def test_healthz_reports_a_broken_storage(client, settings, monkeypatch):
    from generation import health

    def broken():
        raise OSError("disk gone")

    monkeypatch.setitem(health.CHECKS, "storage", broken)
    public = client.get("/healthz")
    assert (public.status_code, public.content) == (503, b"fail")
    settings.HEALTHZ_TOKEN = "monitor-token"
    response = client.get("/healthz", headers={"Authorization": "Bearer monitor-token"})
    assert response.status_code == 503
    assert response.json()["checks"]["storage"] == {"ok": False, "error": "OSError"}


def test_generate_command_waits_and_prints_the_file(user, capsys, settings):
    settings.TRACK_POLL_MIN_SECONDS = 0
    call_command(
        "generate",
        "a red fox in snow, slow dolly-in",
        "--user",
        user.email,
        "--preset",
        "dolly_in",
        "--duration",
        "5",
        "--wait",
        "--timeout",
        "120",
    )
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-2] == "succeeded"
    assert out[-1].endswith(".mp4")
    generation = Generation.objects.get()
    assert generation.state == State.SUCCEEDED
    with open(out[-1], "rb") as video:
        assert b"ftyp" in video.read(64)


def test_generate_command_with_an_image(user, tmp_path, capsys, settings):
    settings.TRACK_POLL_MIN_SECONDS = 0
    image = tmp_path / "in.png"
    image.write_bytes(png_bytes(640, 360))
    call_command("generate", "ripples", "--image", str(image), "--user", user.email, "--wait")
    generation = Generation.objects.get()
    assert generation.endpoint_id == "fal-ai/pika/v2.2/image-to-video"
    assert (generation.video_width, generation.video_height) == (1280, 720)


def test_generate_command_refuses_bad_input_with_a_message(user):
    with pytest.raises(CommandError, match="resolution"):
        call_command("generate", "x", "--user", user.email, "--resolution", "4k")
    assert not Generation.objects.exists()


def test_generate_command_unknown_user():
    with pytest.raises(CommandError, match="No user"):
        call_command("generate", "x", "--user", "nobody@example.com")
