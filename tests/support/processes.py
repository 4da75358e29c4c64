"""Run the product's real processes (qcluster, tracker) against the test database."""

import os
import signal
import subprocess
import sys
import uuid
from contextlib import contextmanager, suppress
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def process_env(**extra) -> dict[str, str]:
    """Environment that points a child process at this test's database, media and queue."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        env.pop("DATABASE_URL", None)
        env["SQLITE_PATH"] = str(db["NAME"])
    else:
        env["DATABASE_URL"] = (
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        )
    env.update(
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        LOCAL_RENDER_DIR=str(settings.LOCAL_RENDER_DIR),
        LOCAL_QUEUE_SECONDS=str(settings.LOCAL_QUEUE_SECONDS),
        TRACK_POLL_MIN_SECONDS="0.1",
        TESTING="1",
    )
    env.update({key: str(value) for key, value in extra.items()})
    return env


def unique_queue_name() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@contextmanager
def running(*commands: list[str], env: dict[str, str], log_dir: Path):
    """Start manage.py commands; stop them (and show their output on failure) afterwards."""
    processes = []
    try:
        for index, command in enumerate(commands):
            log = open(log_dir / f"process-{index}.log", "w+b")  # noqa: SIM115 - closed below
            proc = subprocess.Popen(
                [sys.executable, "manage.py", *command],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            processes.append((proc, log))
        yield [proc for proc, _ in processes]
    finally:
        for proc, _ in processes:
            _signal_group(proc, signal.SIGTERM)
        for proc, log in processes:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            # Whatever the command forked (qcluster's workers) goes too, even when a test killed
            # the command itself: left alone, they would outlive the test run.
            _signal_group(proc, signal.SIGKILL)
            log.seek(0)
            output = log.read().decode(errors="replace")
            log.close()
            if proc.returncode not in (0, -15, 143):
                print(f"--- {proc.args} exited {proc.returncode}:\n{output[-4000:]}")


def output_of(log_dir: Path) -> str:
    return "\n".join(
        path.read_text(errors="replace") for path in sorted(log_dir.glob("process-*.log"))
    )


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (from /proc; Linux only)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def holding_file(pids: list[int], match) -> list[int]:
    """The processes among `pids` with an open file whose path satisfies `match(path)`."""
    holders = []
    for pid in pids:
        try:
            targets = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        if any(match(target) for target in targets):
            holders.append(pid)
    return holders


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    """Signal the process group each command leads (start_new_session)."""
    with suppress(ProcessLookupError, PermissionError):  # the whole group has exited
        os.killpg(proc.pid, signum)
