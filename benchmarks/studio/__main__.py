"""Click to playing video, per mode, on a running site (`./dev.sh run`), in real Chromium.

    .venv/bin/python -m benchmarks.studio --base http://127.0.0.1:8000 [--shots DIR] [--rounds 1]

Signs in as the demo account (DEMO_EMAIL / DEMO_PASSWORD), and for each mode the site offers
fills the generate page as a person would (images, keyframe lengths, an input video), clicks
Generate and waits on the video page until the <video> plays (readyState >= 3 and currentTime
advancing). Prints seconds from the click to that moment for each mode; with --shots, saves a
screenshot of the generate page and of the video page of each mode at 1280x800 and at 390x844.
Everything stays on the machine: the site's offline renderer makes the clips. Swaps appear only
once FAL_PRICE_OVERRIDES prices fal-ai/pika/v2/pikaswaps.
"""

import argparse
import io
import os
import re
import shutil
import statistics
import tempfile
import time

from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def _stills(folder: str, count: int) -> list[str]:
    colours = [(220, 40, 40), (40, 200, 60), (40, 80, 230), (230, 200, 40), (200, 60, 200)]
    paths = []
    for index in range(count):
        path = os.path.join(folder, f"still-{index + 1}.png")
        buffer = io.BytesIO()
        Image.new("RGB", (640, 360), colours[index]).save(buffer, "PNG")
        with open(path, "wb") as out:
            out.write(buffer.getvalue())
        paths.append(path)
    return paths


def _clip(folder: str) -> str:
    """A 2 s H.264 MP4 made with PyAV, the input video of Additions and Swaps."""
    import av
    import numpy as np

    path = os.path.join(folder, "input.mp4")
    with av.open(path, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for index in range(48):
            pixels = np.full((360, 640, 3), (index * 5) % 255, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _fill(page, mode: str, stills: list[str], clip: str) -> None:
    page.check(f"input[name=mode][value={mode}]")
    if mode in ("image", "effect", "additions"):
        page.set_input_files("#id_image", stills[:1])
    if mode == "scenes":
        page.set_input_files("#id_image", stills[:3])
        page.check("input[name=resolution][value='720p']")
    if mode == "frames":
        page.set_input_files("#id_image", stills[:3])
        page.fill("#id_t1_duration", "2")
        page.fill("#id_t2_duration", "3")
        page.fill("#id_t1_prompt", "the light turns green")
    if mode in ("additions", "swaps"):
        page.set_input_files("#id_video", clip)
    if mode == "swaps":
        page.fill("input[name=modify_region]", "the grey square")
    if mode != "effect":
        page.fill("textarea[name=prompt]", f"a {mode} test: a paper boat on a rainy street")


def _play(page) -> None:
    page.wait_for_selector("figure.player video", timeout=180_000)
    page.evaluate("() => { const v = document.querySelector('video'); v.muted = true; v.play(); }")
    page.wait_for_function(
        "() => { const v = document.querySelector('video');"
        " return v.readyState >= 3 && v.currentTime > 0.2; }",
        timeout=60_000,
    )


def _no_room(args, modes: int, why: str) -> SystemExit:
    return SystemExit(
        f"The account cannot render this run's {args.rounds * modes} clips: {why}\n"
        "Give it credits and a plan with room first (the benchmark does not change accounts):\n"
        f"  .venv/bin/python manage.py grant_credits {args.email} 5000 --plan studio"
    )


def _ready(page, args, modes: int) -> None:
    """The Generate button enabled, or a clear exit naming why not (credits, plan, cap)."""
    try:
        page.wait_for_function(
            "() => !document.getElementById('generate-button').disabled", timeout=30_000
        )
    except PlaywrightTimeout:
        raise _no_room(args, modes, page.inner_text("#price-note")) from None


def _started(page, args, modes: int) -> None:
    """On the video page after the click, or a clear exit with the refusal the page shows."""
    try:
        page.wait_for_url(re.compile(r".*/g/[^/]+/?$"), timeout=60_000)
    except PlaywrightTimeout:
        errors = page.locator("p.error").all_inner_texts()
        raise _no_room(args, modes, " ".join(errors) or "the create was not accepted") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument(
        "--email", default=os.environ.get("DEMO_EMAIL", "demo@promptreel.localhost")
    )
    parser.add_argument("--password", default=os.environ.get("DEMO_PASSWORD", "promptreel-demo"))
    parser.add_argument("--shots", default="", help="folder for screenshots")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    if args.shots:
        os.makedirs(args.shots, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="promptreel-bench-")
    stills, clip = _stills(scratch, 3), _clip(scratch)
    times: dict[str, list[float]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        page.goto(f"{args.base}/accounts/login/")
        page.fill("input[name=login]", args.email)
        page.fill("input[name=password]", args.password)
        page.click("form button[type=submit]")
        page.wait_for_url(f"{args.base}/generate/")
        modes = page.eval_on_selector_all("input[name=mode]", "els => els.map(e => e.value)")
        for _ in range(args.rounds):
            for mode in modes:
                page.goto(f"{args.base}/generate/")
                _fill(page, mode, stills, clip)
                _ready(page, args, len(modes))
                if args.shots:
                    page.screenshot(path=f"{args.shots}/generate-{mode}-1280.png", full_page=True)
                started = time.monotonic()
                page.click("#generate-button")
                _started(page, args, len(modes))
                _play(page)
                times.setdefault(mode, []).append(time.monotonic() - started)
                if args.shots:
                    page.screenshot(path=f"{args.shots}/video-{mode}-1280.png")
                    phone = browser.new_context(
                        viewport=PHONE, storage_state=context.storage_state()
                    )
                    small = phone.new_page()
                    small.goto(page.url)
                    small.screenshot(path=f"{args.shots}/video-{mode}-390.png", full_page=True)
                    small.goto(f"{args.base}/generate/")
                    small.check(f"input[name=mode][value={mode}]")
                    small.screenshot(path=f"{args.shots}/generate-{mode}-390.png", full_page=True)
                    phone.close()
        browser.close()
    shutil.rmtree(scratch, ignore_errors=True)
    print("mode        click → playing video (s)")
    for mode, values in times.items():
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"{mode:<11} {statistics.median(values):6.2f}  (runs: {runs})")


if __name__ == "__main__":
    main()
