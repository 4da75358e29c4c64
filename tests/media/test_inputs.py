"""Image inputs by upload and by link, through the web form: every refusal is a clear 400."""

import io

import httpcore
import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from core.safe_fetch import FetchRefused, open_stream
from generation import media
from generation.models import Generation, GenerationInput
from tests.support.media import png_bytes, upload

from .helpers import jpeg_with_metadata, loopback_counts_as_public, png_header_only, start_server

pytestmark = pytest.mark.django_db

FORM = {
    "endpoint": "fal-ai/pika/v2.2/image-to-video",
    "prompt": "it glows",
    "resolution": "720p",
    "duration": "5",
    "preset": "static",
    "aspect_ratio": "16:9",
}


def post(client, **fields):
    return client.post(reverse("generate"), {**FORM, **fields})


def stored_files() -> list[str]:
    try:
        return default_storage.listdir("inputs")[0]
    except FileNotFoundError:
        return []


def refused(response, field: str) -> str:
    """The 400's error for this field; and nothing was created or stored."""
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors, errors
    assert not Generation.objects.exists() and not stored_files()
    return " ".join(errors[field])


@pytest.fixture
def connects(monkeypatch):
    """Records (and refuses) every TCP connection attempt below safe_fetch."""
    attempts = []

    def connect_tcp(backend, host, port, **kwargs):
        attempts.append((host, port))
        raise httpcore.ConnectError("refused by the test")

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect_tcp)
    return attempts


@pytest.fixture
def server():
    server = start_server("127.0.0.1")
    yield server
    server.shutdown()
    server.server_close()


def local_link(server, fetch_options, path="/photo.png", host="images.example", **extra):
    """A link to the local server under a public-looking name, reachable in tests only."""
    port = server.server_address[1]
    fetch_options.update(
        allow_http=True,
        allowed_ports={port},
        ip_check=loopback_counts_as_public,
        resolver=lambda name, _port: ["127.0.0.1"],
        **extra,
    )
    return f"http://{host}:{port}{path}"


# --- uploads -------------------------------------------------------------------------------


def test_a_decompression_bomb_is_refused_before_decoding(alice_client, monkeypatch):
    bomb = png_header_only(20000, 20000)
    assert len(bomb) < 10_000
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("pixels were decoded"))
    message = refused(post(alice_client, image=upload("bomb.png", bomb)), "image")
    assert "megapixel" in message and "Resize it" in message


def test_an_upload_one_byte_over_the_cap_is_refused(alice_client, settings):
    image = png_bytes(300, 300)
    settings.IMAGE_MAX_BYTES = len(image) - 1
    message = refused(post(alice_client, image=upload("photo.png", image)), "image")
    assert "larger than" in message
    settings.IMAGE_MAX_BYTES = len(image)
    assert post(alice_client, image=upload("photo.png", image)).status_code == 302


@pytest.mark.parametrize(
    "name, content, content_type, what",
    [
        ("photo.png", b"<html><script>alert(1)</script></html>", "image/png", "HTML"),
        ("photo.jpg", b"GIF89a" + b"\x00" * 100, "image/jpeg", "GIF"),
        ("photo.webp", b"%PDF-1.7\n" + b"x" * 100, "image/webp", "PDF"),
        ("photo.png", b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, "image/png", "damaged"),
    ],
)
def test_wrong_content_is_refused_whatever_the_name(
    alice_client, name, content, content_type, what
):
    response = post(alice_client, image=upload(name, content, content_type))
    message = refused(response, "image")
    assert what in message


def test_right_content_is_accepted_whatever_the_name(alice_client):
    response = post(alice_client, image=upload("notes.txt", png_bytes(), "text/plain"))
    assert response.status_code == 302
    stored = GenerationInput.objects.get()
    assert stored.content_type == "image/jpeg" and stored.file.name.endswith(".jpg")


def test_metadata_is_stripped_on_re_encode(storage, alice_client):
    original = jpeg_with_metadata()
    assert b"SecretCam" in original and b"private comment" in original
    assert post(alice_client, image=upload("photo.jpg", original, "image/jpeg")).status_code == 302
    with default_storage.open(GenerationInput.objects.get().file.name, "rb") as handle:
        stored = handle.read()
    for secret in (b"SecretCam", b"leaky-software", b"private comment", b"Exif"):
        assert secret not in stored
    image = Image.open(io.BytesIO(stored))
    assert not image.getexif() and "comment" not in image.info and "exif" not in image.info
    assert image.size == (320, 240)


# --- links ---------------------------------------------------------------------------------

REFUSED_LINKS = [
    ("http://images.example/cat.png", "https://"),
    ("ftp://images.example/cat.png", "https://"),
    ("https://127.0.0.1/cat.png", "127.0.0.1 is a private"),
    ("https://localhost/cat.png", "full server name"),
    ("https://10.1.2.3/cat.png", "private"),
    ("https://192.168.0.10/cat.png", "private"),
    ("https://172.16.5.5/cat.png", "private"),
    ("https://169.254.169.254/latest/meta-data/", "private"),  # cloud metadata
    ("https://100.64.0.1/cat.png", "private"),  # CGNAT
    ("https://[::1]/cat.png", "private"),
    ("https://[fe80::1]/cat.png", "private"),
    ("https://[fd00::1]/cat.png", "private"),
    ("https://[::ffff:127.0.0.1]/cat.png", "private"),  # IPv4-mapped IPv6
    ("https://[::ffff:169.254.169.254]/cat.png", "private"),
    ("https://[64:ff9b::a9fe:a9fe]/cat.png", "private"),  # NAT64 of 169.254.169.254
    ("https://[64:ff9b::7f00:1]/cat.png", "private"),  # NAT64 of 127.0.0.1
    ("https://2130706433/cat.png", "127.0.0.1"),  # integer form
    ("https://0x7f000001/cat.png", "127.0.0.1"),  # hex form
    ("https://0177.0.0.1/cat.png", "127.0.0.1"),  # octal form
    ("https://127.1/cat.png", "127.0.0.1"),  # short form
    ("https://0/cat.png", "0.0.0.0"),  # noqa: S104
    ("https://user:secret@images.example/cat.png", "user name or password"),
    ("https://images.example:8443/cat.png", "Port 8443"),
    ("not a link", "invalid characters"),
    ("images.example/cat.png", "https://"),
]


@pytest.mark.parametrize("link, hint", REFUSED_LINKS)
def test_refused_links_are_a_400_that_says_what_to_fix(alice_client, connects, link, hint):
    message = refused(post(alice_client, image_url=link), "image_url")
    assert hint in message
    assert connects == []  # refused before any connection


def test_a_host_resolving_to_public_then_loopback_is_fetched_from_the_checked_address(
    alice_client, server, fetch_options
):
    """DNS rebinding: the first answer is public, any later one loopback. We ask once and
    connect to the address we checked, so the loopback service never sees a request."""
    port = server.server_address[1]
    server.routes["/photo.png"] = (200, {"Content-Type": "image/png"}, png_bytes(200, 100))
    internal = start_server("127.0.0.2", port)  # the "internal" service on the same port
    internal.routes["/photo.png"] = (200, {"Content-Type": "image/png"}, png_bytes(99, 99))
    calls = []

    def rebinding(name, _port):
        calls.append(name)
        return ["127.0.0.1"] if len(calls) == 1 else ["127.0.0.2"]

    try:
        link = local_link(server, fetch_options, host="rebind.example")
        fetch_options["resolver"] = rebinding
        response = post(alice_client, image_url=link)
        assert response.status_code == 302, response.context["form"].errors
        assert calls == ["rebind.example"]
        assert internal.seen == []
        assert server.seen[0][2] == f"rebind.example:{port}"  # the name still goes as Host
        stored = GenerationInput.objects.get()
        assert (stored.width, stored.height) == (200, 100)  # the public server's image
    finally:
        internal.shutdown()
        internal.server_close()


def test_a_host_with_any_loopback_answer_is_refused(alice_client, server, fetch_options):
    link = local_link(server, fetch_options)
    fetch_options["resolver"] = lambda name, _port: ["127.0.0.1", "127.0.0.2"]
    message = refused(post(alice_client, image_url=link), "image_url")
    assert "private, local or reserved" in message and "127.0.0.2" not in message
    assert server.seen == []


def test_a_redirect_to_a_refused_address_is_refused(alice_client, server, fetch_options):
    port = server.server_address[1]
    server.routes["/photo.png"] = (302, {"Location": f"http://127.0.0.2:{port}/x.png"}, b"")
    message = refused(post(alice_client, image_url=local_link(server, fetch_options)), "image_url")
    assert "redirects to a refused address" in message


def test_a_link_one_byte_over_the_cap_is_refused(alice_client, server, fetch_options, settings):
    image = png_bytes(300, 300)
    settings.IMAGE_MAX_BYTES = len(image) - 1
    server.routes["/photo.png"] = (200, {"Content-Type": "image/png"}, image)
    message = refused(post(alice_client, image_url=local_link(server, fetch_options)), "image_url")
    assert f"{len(image) - 1:,}-byte limit" in message


def test_a_link_serving_html_is_refused_as_not_an_image(alice_client, server, fetch_options):
    server.routes["/photo.png"] = (200, {"Content-Type": "image/png"}, b"<html>hi</html>")
    response = post(alice_client, image_url=local_link(server, fetch_options))
    assert response.status_code == 400
    assert "HTML" in " ".join(response.context["form"].errors["image"])
    assert not Generation.objects.exists()


def test_an_image_by_link_is_cleaned_and_stored(storage, alice_client, server, fetch_options):
    server.routes["/photo.jpg"] = (200, {"Content-Type": "image/jpeg"}, jpeg_with_metadata())
    response = post(alice_client, image_url=local_link(server, fetch_options, path="/photo.jpg"))
    assert response.status_code == 302
    stored = GenerationInput.objects.get()
    with default_storage.open(stored.file.name, "rb") as handle:
        assert b"SecretCam" not in handle.read()


def test_a_file_and_a_link_together_are_refused(alice_client, connects):
    response = post(
        alice_client, image=upload("a.png", png_bytes()), image_url="https://images.example/a"
    )
    assert "not both" in refused(response, "image_url")


def test_fetch_image_url_raises_fetch_refused_for_the_api(connects):
    with pytest.raises(FetchRefused) as info:
        media.fetch_image_url("https://169.254.169.254/")
    assert info.value.code == "url_private_address"


# --- open_stream: the streamed download for large files ------------------------------------


def stream_options(server):
    return {
        "allow_http": True,
        "allowed_ports": {server.server_address[1]},
        "ip_check": loopback_counts_as_public,
    }


def test_open_stream_yields_chunks_and_metadata(server):
    body = bytes(range(256)) * 4000
    server.routes["/v.mp4"] = (200, {"Content-Type": "video/mp4"}, body)
    url = f"http://127.0.0.1:{server.server_address[1]}/v.mp4"
    with open_stream(url, max_bytes=len(body), **stream_options(server)) as stream:
        assert stream.content_type == "video/mp4" and stream.content_length == len(body)
        chunks = list(stream)
    assert b"".join(chunks) == body and len(chunks) > 1


def test_open_stream_aborts_one_byte_over_the_cap_without_a_length(server):
    # No Content-Length (the body ends when the connection closes): only counting catches it.
    headers = {"Content-Type": "video/mp4", "Content-Length": None, "Connection": "close"}
    server.routes["/v.mp4"] = (200, headers, b"x" * 100_001)
    url = f"http://127.0.0.1:{server.server_address[1]}/v.mp4"
    received = []
    with (
        pytest.raises(FetchRefused) as info,
        open_stream(url, max_bytes=100_000, **stream_options(server)) as stream,
    ):
        assert stream.content_length is None
        for chunk in stream:
            received.append(len(chunk))
    assert info.value.code == "url_too_large"
    assert sum(received) <= 100_000


def test_open_stream_refuses_a_declared_length_over_the_cap_before_reading(server):
    server.routes["/v.mp4"] = (200, {"Content-Type": "video/mp4"}, b"x" * 1001)
    url = f"http://127.0.0.1:{server.server_address[1]}/v.mp4"
    with (
        pytest.raises(FetchRefused) as info,
        open_stream(url, max_bytes=1000, **stream_options(server)),
    ):
        pytest.fail("the body must not be offered")
    assert info.value.code == "url_too_large" and "file" in str(info.value)


def test_open_stream_lets_the_callers_own_errors_through(server):
    server.routes["/v.mp4"] = (200, {"Content-Type": "video/mp4"}, b"x" * 1000)
    url = f"http://127.0.0.1:{server.server_address[1]}/v.mp4"
    with (
        pytest.raises(OSError, match="disk full"),
        open_stream(url, max_bytes=1000, **stream_options(server)),
    ):
        raise OSError("disk full")
