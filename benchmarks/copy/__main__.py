"""Benchmark: copy a 200 MB provider video into our storage, in bounded memory.

    .venv/bin/python -m benchmarks.copy [--mb 200] [--cases filesystem,s3]

The parent process makes a real H.264 MP4 of about --mb megabytes (intra-only frames of
noise, so it cannot compress and every packet is a keyframe), serves it from a local HTTP
server thread and runs moto's S3 server in a thread. Each case then runs in a FRESH child
process (peak RSS is a process-lifetime figure, so cases must not share a process), which
does exactly what finalize does: safe_fetch.open_stream(url) → media.store_video(...) into
default_storage (spool to a temp file with the byte cap, probe, add the AI-generated tags by
stream copy, probe our copy, cut a poster, save video + poster; on S3 a multipart upload).

Peak RSS growth = VmHWM after the copy − VmRSS before it, with the peak reset just before
the copy (echo 5 > /proc/self/clear_refs), after Django, PyAV, boto3 and the storage
connection are loaded. Target: ≤ 30 MB. Linux only (reads /proc).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VIDEO_CACHE = Path(tempfile.gettempdir()) / "promptreel-bench"


def make_video(path: Path, megabytes: int) -> None:
    import av
    import numpy as np

    if path.exists() and path.stat().st_size >= megabytes * 10**6:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height, fps = 640, 360, 30
    rng = np.random.default_rng(1)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps, 1))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = 1
        stream.codec_context.options = {"preset": "ultrafast", "qp": "0", "keyint": "1"}
        packets = []
        for index in range(30):
            pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            packets += stream.encode(frame)
        packets += stream.encode(None)
        # Muxing hands a packet's data to FFmpeg, so keep the bytes and make fresh packets.
        payloads = [bytes(packet) for packet in packets]
        written, pts = 0, 0
        while written < megabytes * 10**6:
            for payload in payloads:  # every packet is a keyframe: repeating them is valid
                packet = av.Packet(payload)
                packet.stream = stream
                packet.time_base = Fraction(1, fps)
                packet.pts = packet.dts = pts
                packet.is_keyframe = True
                pts += 1
                written += len(payload)
                container.mux(packet)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def guess_type(self, path):
        return "video/mp4"


def serve(directory: Path) -> ThreadingHTTPServer:
    def handler(*args, **kwargs):
        return QuietHandler(*args, directory=str(directory), **kwargs)

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def proc_status(field: str) -> int:
    """A /proc/self/status figure in bytes (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def child(args) -> None:
    """One copy in this fresh process; prints a JSON line with the figures."""
    scratch = tempfile.mkdtemp(prefix="promptreel-bench-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["MEDIA_ROOT"] = os.path.join(scratch, "media")
    os.environ["VIDEO_MAX_BYTES"] = str(args.mb * 10**6 * 2)
    if args.storage == "s3":
        os.environ.update(
            AWS_STORAGE_BUCKET_NAME=args.bucket,
            AWS_S3_ENDPOINT_URL=args.endpoint,
            AWS_S3_REGION_NAME="us-east-1",
            AWS_S3_ADDRESSING_STYLE="path",
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
        )
    import django

    django.setup()
    from django.core.files.storage import default_storage

    from core.safe_fetch import open_stream
    from generation import media, probe
    from generation.models import Generation

    default_storage.exists("warm-up")  # loads boto3 and opens the connection on S3
    generation = Generation(user_id=1, endpoint_id="fal-ai/pika/v2.2/text-to-video")
    timings = {"probe_tag_poster": 0.0, "save": 0.0}

    def timed(key, function):
        def wrapper(*a, **k):
            started = time.perf_counter()
            try:
                return function(*a, **k)
            finally:
                timings[key] += time.perf_counter() - started

        return wrapper

    for method in ("info", "copy_as_mp4", "save_poster"):
        setattr(
            probe.OpenVideo, method, timed("probe_tag_poster", getattr(probe.OpenVideo, method))
        )
    media.save_file = timed("save", media.save_file)

    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = proc_status("VmRSS")
    started = time.perf_counter()
    with open_stream(
        args.url,
        max_bytes=args.mb * 10**6 * 2,
        timeout=600,
        allow_http=True,
        allowed_ports={int(args.url.rsplit(":", 1)[1].split("/")[0])},
        ip_check=lambda ip: None,
        what="video",
    ) as stream:
        stored = media.store_video(generation, stream, declared_type=stream.content_type)
    elapsed = time.perf_counter() - started
    peak = proc_status("VmHWM")
    print(
        json.dumps(
            {
                "storage": args.storage,
                "bytes": stored.info.size_bytes,
                "seconds": elapsed,
                "probe_tag_poster_s": timings["probe_tag_poster"],
                "save_s": timings["save"],
                "rss_before": before,
                "peak_growth": peak - before,
                "stored_size": default_storage.size(stored.video_name),
                "tags": stored.info.metadata.get("comment", ""),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--cases", default="filesystem,s3")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--storage", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--bucket", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    video = VIDEO_CACHE / f"video-{args.mb}mb.mp4"
    print(f"making a {args.mb} MB test video at {video} …", flush=True)
    make_video(video, args.mb)
    size = video.stat().st_size
    http = serve(video.parent)
    url = f"http://127.0.0.1:{http.server_address[1]}/{video.name}"

    moto = endpoint = None
    bucket = "promptreel-bench"
    if "s3" in args.cases:
        import logging

        import boto3
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log

        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        host, port = moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        ).create_bucket(Bucket=bucket)

    print(f"source: {size / 1e6:.1f} MB real H.264 MP4 over HTTP from {url}\n")
    header = (
        f"{'storage':<11} {'MB':>7} {'total s':>8} {'MB/s':>7} "
        f"{'probe+tag+poster s':>19} {'save s':>7} {'peak RSS growth':>16}"
    )
    print(header)
    print("-" * len(header))
    failed = False
    for case in args.cases.split(","):
        command = [sys.executable, "-m", "benchmarks.copy", "--child", "--mb", str(args.mb)]
        command += ["--storage", case, "--url", url]
        if case == "s3":
            command += ["--endpoint", endpoint, "--bucket", bucket]
        env = {**os.environ, "LOG_LEVEL": "WARNING"}
        result = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
        if result.returncode:
            print(f"{case}: failed\n{result.stderr[-3000:]}")
            failed = True
            continue
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        megabytes = figures["bytes"] / 1e6
        growth = figures["peak_growth"] / 2**20
        failed |= growth > 30
        print(
            f"{case:<11} {megabytes:7.1f} {figures['seconds']:8.2f} "
            f"{megabytes / figures['seconds']:7.1f} {figures['probe_tag_poster_s']:19.2f} "
            f"{figures['save_s']:7.2f} {growth:13.1f} MiB"
        )
    print("\ntarget: peak RSS growth ≤ 30 MiB per copy")
    if moto is not None:
        moto.stop()
    http.shutdown()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
