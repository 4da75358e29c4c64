"""Small real media and a tiny HTTP server for the media tests."""

import io
import ipaddress
import struct
import threading
import zlib
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import av
import httpx
import numpy as np
from django.test import Client
from PIL import Image

from core.safe_fetch import check_ip


def tiny_mp4(frames: int = 12, size=(64, 48), tags: dict | None = None) -> bytes:
    """A real, decodable H.264 MP4 (no tags unless given), a few KB."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        container.metadata.update(tags or {})
        stream = container.add_stream("libx264", rate=Fraction(12, 1))
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for index in range(frames):
            pixels = np.full((size[1], size[0], 3), (index * 20) % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG declaring huge dimensions with only a few KB of pixel data: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    data = zlib.compress(b"\x00" * 200_000, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def jpeg_with_metadata() -> bytes:
    """A JPEG carrying EXIF (camera, GPS) and a comment: what must not reach storage."""
    image = Image.new("RGB", (320, 240), (10, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0131] = "leaky-software 1.0"  # Software
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 1.0), 3: "E", 4: (4.0, 53.0, 2.0)}  # GPS
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=b"private comment")
    return out.getvalue()


def loopback_counts_as_public(ip) -> None:
    """Stand-in for check_ip in tests: 127.0.0.1 plays a public host; everything else is
    judged for real (so 127.0.0.2 is refused as loopback)."""
    if ip != ipaddress.IPv4Address("127.0.0.1"):
        check_ip(ip)


class Routes(BaseHTTPRequestHandler):
    """GET /<name> → the server's routes[name] = (status, headers, body)."""

    def do_GET(self):  # noqa: N802
        self.server.seen.append((self.client_address[0], self.path, self.headers.get("Host")))
        status, headers, body = self.server.routes.get(self.path, (404, {}, b"missing"))
        self.send_response(status)
        for key, value in headers.items():
            if value is not None:  # {"Content-Length": None}: send none, close to end the body
                self.send_header(key, value)
        if "Content-Length" not in headers and body is not None:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, *args):
        pass


def start_server(host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), Routes)
    server.daemon_threads = True
    server.routes, server.seen = {}, []
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
    return server


def follow(location: str, headers: dict | None = None):
    """GET a signed media link as a stranger without a session would: our signed view
    (filesystem) through a fresh test client, an S3 presigned URL over HTTP."""
    headers = headers or {}
    if location.startswith("/"):
        response = Client().get(location, headers=headers)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        return response.status_code, response, body
    with httpx.Client(trust_env=False) as client:
        response = client.get(location, headers=headers)
    return response.status_code, response.headers, response.content
