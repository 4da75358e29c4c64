"""Benchmark: what signing C2PA content credentials (and sampling frames for the output check)
costs per stored clip.

    .venv/bin/python -m benchmarks.provenance [--repeat 15] [--clips 720p5,1080p5,1080p10]

Makes real H.264 MP4s shaped like Pika's output (24 fps, the bitrate of a typical fal clip:
4 Mbit/s at 720p, 8 Mbit/s at 1080p, moving content plus noise so the encoder cannot shrink
them), then times, per clip, the median and p95 of --repeat runs of:

* sign: generation.provenance.sign_video (make the ES256 signer, build the manifest, hash the
  file's boxes, embed the manifest, write the copy), which is what store_video adds;
* verify: the self-check sign_video ends with (read_credentials on the signed copy), which is
  included in "sign" and shown on its own for the split;
* bytes added by the manifest;
* frames: generation.probe.sample_frames (first, middle, last as JPEG), which store_video also
  adds, for moderation.output_check (the OpenAI calls themselves are not included).

Runs with the throw-away development chain (made at first use in C2PA_DEV_CERT_DIR), in one
process on one core; wall time with perf_counter. The clips are cached in the temp folder.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(tempfile.gettempdir()) / "promptreel-bench"
CLIPS = {
    "720p5": (1280, 720, 5, 4_000_000),
    "1080p5": (1920, 1080, 5, 8_000_000),
    "1080p10": (1920, 1080, 10, 8_000_000),
}


def make_clip(name: str) -> Path:
    import av
    import numpy as np

    width, height, seconds, bitrate = CLIPS[name]
    path = CACHE / f"provenance-{name}.mp4"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fps = 24
    rng = np.random.default_rng(7)
    x = np.linspace(0, 255, width, dtype=np.float32)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps, 1))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = bitrate
        stream.codec_context.options = {"preset": "ultrafast"}
        for index in range(fps * seconds):
            row = (x + index * 8) % 256
            pixels = np.broadcast_to(row[None, :, None], (height, width, 3)).astype(np.int16)
            pixels = pixels + rng.integers(-40, 40, (height, width, 3), dtype=np.int16)
            frame = av.VideoFrame.from_ndarray(pixels.clip(0, 255).astype(np.uint8), "rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--clips", default=",".join(CLIPS))
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.utils import timezone

    from generation import provenance
    from generation.probe import sample_frames

    print(
        f"{'clip':8} {'MB':>6} {'sign ms p50':>12} {'p95':>7} {'verify ms p50':>14} {'+bytes':>7}"
        f" {'frames ms p50':>14}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        out = os.path.join(scratch, "signed.mp4")
        for name in args.clips.split(","):
            clip = make_clip(name)
            provenance.sign_video(str(clip), out, endpoint_id="warm-up", when=timezone.now())
            signs, verifies, samples = [], [], []
            for _ in range(args.repeat):
                started = time.perf_counter()
                provenance.sign_video(
                    str(clip),
                    out,
                    endpoint_id="fal-ai/pika/v2.2/text-to-video",
                    when=timezone.now(),
                )
                signs.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                provenance.read_credentials(out)
                verifies.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                sample_frames(out)
                samples.append((time.perf_counter() - started) * 1000)
            size = clip.stat().st_size
            print(
                f"{name:8} {size / 1e6:6.1f} {statistics.median(signs):12.1f} "
                f"{percentile(signs, 0.95):7.1f} {statistics.median(verifies):14.1f} "
                f"{os.path.getsize(out) - size:7d} {statistics.median(samples):14.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
