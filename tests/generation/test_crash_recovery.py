"""A worker SIGKILLed mid-render on the Redis broker: the offline render is redone by lease.

django-q2 does not acknowledge tasks on Redis, so the killed worker's task is gone for good;
the render's lease (the `rendering` marker, renewed by a heartbeat) runs out and the
tracker's next poll queues the render again (generation/backends/local.py).
"""

import os
import signal
import time

import pytest
from django.conf import settings
from django.urls import reverse
from django_q.conf import Conf

from generation.models import Generation, State
from tests.support.processes import (
    descendants,
    holding_file,
    output_of,
    process_env,
    running,
    unique_queue_name,
)

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/6")


def redis_env(monkeypatch, **extra) -> dict[str, str]:
    queue = unique_queue_name()
    monkeypatch.setattr(Conf, "SYNC", False)  # the tracker process submits, as in production
    return process_env(
        Q_QUEUE_NAME=queue,
        Q_WORKERS=1,
        REDIS_URL=REDIS_URL,
        CACHE_KEY_PREFIX=queue,
        TRACK_POLL_MAX_SECONDS="1",
        **extra,
    )


def wait_for(predicate, *, timeout: float, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return None


def wait_terminal(generation, *, timeout: float) -> None:
    def ended():
        generation.refresh_from_db()
        return generation.is_terminal

    wait_for(ended, timeout=timeout, every=0.25)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_render_on_redis_the_job_still_finishes(
    alice_client, tmp_path, monkeypatch
):
    env = redis_env(monkeypatch)
    with running(["qcluster"], ["track"], env=env, log_dir=tmp_path) as (cluster, _tracker):
        response = alice_client.post(
            reverse("generate"),
            {
                "endpoint": "fal-ai/pika/v2.2/text-to-video",
                "prompt": "a lighthouse at dusk",
                "aspect_ratio": "16:9",
                "resolution": "720p",
                "duration": "5",
                "preset": "dolly_in",
            },
        )
        assert response.status_code == 302
        generation = Generation.objects.get()
        renders = settings.LOCAL_RENDER_DIR

        def renderer():
            # The worker writing the partial MP4 is the one rendering.
            return holding_file(
                descendants(cluster.pid),
                lambda path: path.startswith(str(renders)) and path.endswith(".part.mp4"),
            )

        pids = wait_for(renderer, timeout=60)
        assert pids, output_of(tmp_path)[-3000:]
        generation.refresh_from_db()
        assert generation.state == State.IN_PROGRESS
        os.kill(pids[0], signal.SIGKILL)
        killed_at = time.monotonic()
        wait_terminal(generation, timeout=120)
        recovered_in = time.monotonic() - killed_at
    assert generation.state == State.SUCCEEDED, (generation.state, output_of(tmp_path)[-3000:])
    assert recovered_in < 120
    print(f"mid-render SIGKILL on Redis: succeeded {recovered_in:.1f} s after the kill")
    # Redone from scratch by another worker: the lost one's marker was taken over.
    folder = renders / generation.provider_request_id
    assert list(folder.glob("rendering.lost-*"))
