"""The external fuzz run: schemathesis, from outside, against a live gunicorn on this test's
database, with all its checks. Bounded (a fixed seed and a few examples per operation) so it
finishes in well under a minute; `-m slow` runs it."""

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from api.models import Scope
from api.services import apikey_create
from tests.support.processes import ROOT, output_of, process_env

HERE = Path(__file__).parent
PORTS = range(19400, 19500)  # this worktree's range (TEAM.md)
SEED = 20261202
# The coverage phase (~1,000 boundary cases, ~90 s on a shared machine) runs with
# SCHEMATHESIS_PHASES=examples,coverage,fuzzing; the suite's smoke run fuzzes only.
PHASES = os.environ.get("SCHEMATHESIS_PHASES", "examples,fuzzing")
MAX_EXAMPLES = 25


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("no free port in 19400-19499")


def wait_listening(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_external_fuzz_run_finds_no_server_error_and_no_schema_violation(user, tmp_path):
    _, raw = apikey_create(user=user, name="schemathesis", scopes=list(Scope.values))
    port = free_port()
    env = process_env(API_REQUESTS_PER_MINUTE=100_000, API_ANONYMOUS_REQUESTS_PER_MINUTE=100_000)
    log = open(tmp_path / "process-0.log", "w+b")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "2",
            "--timeout",
            "60",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_listening(port)
        run = subprocess.run(
            [
                str(Path(sys.executable).with_name("st")),
                "--config-file",
                str(HERE / "schemathesis.toml"),
                "run",
                f"http://127.0.0.1:{port}/api/schema/?format=json",
                "--header",
                f"Authorization: Bearer {raw}",
                "--checks",
                "all",
                "--phases",
                PHASES,
                "--max-examples",
                str(MAX_EXAMPLES),
                "--seed",
                str(SEED),
                "--generation-database",
                "none",
                "--workers",
                "1",
                "--report",
                "ndjson",
                "--report-ndjson-path",
                str(tmp_path / "events.ndjson"),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.terminate()
        server.wait(timeout=15)
        log.close()
    output = run.stdout + run.stderr
    summary = re.search(r"(\d+) generated, (.*)", output)
    print(f"schemathesis: {summary.group(0) if summary else output[-400:]}")
    assert run.returncode == 0, output[-6000:] + output_of(tmp_path)[-3000:]
    assert summary and int(summary.group(1)) >= 100  # it really generated cases
    assert "server error" not in output.lower()


@pytest.mark.django_db
def test_schema_documents_every_error_as_a_problem(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    document = json.loads(response.content)
    assert "Problem" in document["components"]["schemas"]
    paths = document["paths"]
    create = paths["/api/v1/generations"]["post"]["responses"]
    for status in ("201", "400", "401", "402", "403", "409", "415", "422", "429"):
        assert status in create, status
    assert set(create["400"]["content"]) == {"application/problem+json"}
    assert "404" in paths["/api/v1/generations/{id}"]["get"]["responses"]
    assert "202" in paths["/api/v1/generations/{id}/cancel"]["post"]["responses"]
    listed = {p["name"] for p in paths["/api/v1/generations"]["get"]["parameters"]}
    assert {"cursor", "limit", "state", "endpoint", "created_after", "created_before"} <= listed
