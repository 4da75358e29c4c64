"""The lone-job case of benchmarks/inflight runs end to end (a smoke run: figures are the
benchmark's to print, benchmarks/README.md; nothing here is timed)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# With webhooks it also starts gunicorn, and fal's webhook is what finishes each job.
@pytest.mark.parametrize("webhooks", ["off", "on"])
def test_lone_job_benchmark_runs_and_every_job_succeeds(tmp_path, webhooks):
    out = tmp_path / "lone.json"
    command = [sys.executable, "-m", "benchmarks.inflight", "--lone", "2", "--webhooks", webhooks]
    command += ["--queue", "0.2", "--inference", "0.5", "--json", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["all_succeeded"] and figures["lone"] == 2
    assert figures["create_to_succeeded_s"]["count"] == 2
    for job in figures["jobs"]:
        # Each stage in order: queued, submitted, seen running, finalizing, succeeded.
        stamps = ["submitting_at", "in_queue_at", "finalizing_at", "finished_at"]
        assert [job[name] for name in stamps] == sorted(job[name] for name in stamps)
    assert figures["webhooks"] == webhooks
    assert "create → succeeded" in done.stdout and "fal done → finalizing" in done.stdout
