"""The README's API examples run as written (issue 19 item 5): its curl lines, its Python and
its JavaScript, against a live server on loopback, offline, with no `uuidgen`.

The examples are read from README.md, not copied here, so an edit that breaks one fails this
test. The test plays the parts a developer's machine has: the server (live_server), the
tracker that moves renders on (track_once, the tracker's own pass, between the examples'
requests), a webhook receiver on loopback, and a photo.jpg in the working directory.
"""

import io
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from PIL import Image

from api.models import Scope
from api.services import apikey_create
from generation.models import Generation, State
from tests.api.test_webhook_tools import PlainReceiver
from workflows.tracking import track_once

README = Path(settings.BASE_DIR) / "README.md"


def api_section() -> str:
    text = README.read_text()
    return text[text.index("## The API\n") : text.index("## Benchmarks\n")]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", api_section(), flags=re.DOTALL)


def run_while_tracking(command: list[str], *, cwd, env) -> subprocess.CompletedProcess:
    """Run an example; meanwhile do the tracker's work, as `manage.py track` would."""
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 240
    while process.poll() is None and time.monotonic() < deadline:
        # Every tracked row counts as due: the example waits, the test need not.
        track_once(now=timezone.now() + timedelta(hours=1))
        time.sleep(0.2)
    if process.poll() is None:
        process.kill()
    stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.fixture
def machine(live_server, user, settings, tmp_path):
    settings.FREE_DAILY_PREVIEWS = 20
    settings.BILLING_PLAN_OVERRIDES = '{"free": {"max_in_flight": 10}}'
    settings.DEBUG = True  # the laptop setting that lets the webhook receiver be loopback
    settings.WEBHOOK_ALLOW_LOOPBACK = True
    raw = apikey_create(user=user, name="readme", scopes=list(Scope.values))[1]
    photo = io.BytesIO()
    Image.new("RGB", (320, 240), (40, 120, 200)).save(photo, "JPEG")
    (tmp_path / "photo.jpg").write_bytes(photo.getvalue())
    receiver = PlainReceiver()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "KEY": raw,
        "API": f"{live_server.url}/api/v1",
        "HOOK": receiver.url,
    }
    yield tmp_path, env, receiver
    receiver.server.shutdown()


@pytest.mark.skipif(shutil.which("jq") is None, reason="the curl examples use jq")
@pytest.mark.django_db(transaction=True)
def test_the_readme_curl_examples_run_as_written(machine, user):
    cwd, env, receiver = machine
    setup, *examples = blocks("sh")
    assert "export KEY=" in setup and "export API=" in setup  # the one block not run here
    script = "set -euo pipefail\n" + "\n".join(examples)
    assert "uuidgen" not in script
    result = run_while_tracking(["bash", "-c", script], cwd=cwd, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("created ") and lines[1] == "succeeded", result.stdout
    clip = (cwd / "clip.mp4").read_bytes()
    assert clip[4:8] == b"ftyp"  # an MP4, downloaded from the signed link
    assert "conflict" in lines  # cancel of the ended one
    assert '"delivered": true' in result.stdout and len(receiver.received) == 1
    # two from the core examples; the creative tools' one from a template, two variations and a
    # two-scene storyboard
    assert Generation.objects.filter(user=user).count() == 7
    assert "null" not in lines, result.stdout  # no example printed an absent field


@pytest.mark.django_db(transaction=True)
def test_the_readme_python_example_runs_as_written(machine, user):
    cwd, env, _ = machine
    (example,) = [block for block in blocks("python") if "httpx.Client" in block]
    result = run_while_tracking([sys.executable, "-c", example], cwd=cwd, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "succeeded", result.stdout
    assert (cwd / "boat.mp4").read_bytes()[4:8] == b"ftyp"
    assert Generation.objects.get(user=user).state == State.SUCCEEDED


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
@pytest.mark.django_db(transaction=True)
def test_the_readme_javascript_example_runs_as_written(machine, user):
    cwd, env, _ = machine
    (example,) = blocks("javascript")
    result = run_while_tracking(["node", "--input-type=module", "-e", example], cwd=cwd, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    state, link = result.stdout.split()
    assert state == "succeeded" and "/media/" in link or link.startswith("http"), result.stdout
    assert Generation.objects.get(user=user).state == State.SUCCEEDED
