"""The chaos benchmark's smoke run loses nothing (benchmarks/chaos; its figures are the
benchmark's to print, benchmarks/README.md; nothing here is timed).

It needs what the benchmark measures on: PostgreSQL and Redis, from DATABASE_URL / REDIS_URL
(it creates a database next to DATABASE_URL's and drops it; its Redis keys carry a per-run tag
and are deleted). With either unset it is skipped.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.chaos.__main__ import LOSSES

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (
            os.environ.get("DATABASE_URL", "").startswith("postgres")
            and os.environ.get("REDIS_URL")
        ),
        reason="the chaos benchmark runs on PostgreSQL + Redis: set DATABASE_URL and REDIS_URL",
    ),
]


def test_chaos_smoke_run_kills_both_processes_and_loses_nothing(tmp_path):
    out = tmp_path / "chaos.json"
    command = [sys.executable, "-m", "benchmarks.chaos", "--smoke", "--json", str(out)]
    # A tracker killed in the middle of a submit leaves its row for the reaper (5 minutes):
    # rare, but the limit allows it.
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.exists(), done.stdout[-2000:] + done.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["created"] == 20
    assert sorted(kill["role"] for kill in figures["kills"]) == ["cluster", "tracker"]
    assert {name: figures[name] for name in LOSSES} == dict.fromkeys(LOSSES, 0), done.stdout
    assert figures["losses"] == 0 and done.returncode == 0
    # Every row was announced to its client: succeeded, failed or canceled.
    assert figures["webhooks_expected"] == 20
    assert "LOSSES (target 0)" in done.stdout
