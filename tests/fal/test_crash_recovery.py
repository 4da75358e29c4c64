"""A worker SIGKILLed mid-finalize on the Redis broker: the copy is redone once its lease
(the row's next_check_at, renewed by the finalize's heartbeat) runs out.

The real qcluster and tracker processes talk to the fake fal over loopback; fal's file is
served slowly, so the kill lands while the worker is still downloading it.
"""

import os
import signal
import time

import pytest
from django.urls import reverse

from generation.models import Generation, State
from tests.fakefal import Outcome
from tests.fakefal.video import make_mp4
from tests.generation.test_crash_recovery import redis_env, wait_for, wait_terminal
from tests.support.processes import descendants, holding_file, output_of, running
from workflows import pipeline

DOWNLOAD_SECONDS = 6.0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_finalize_on_redis_the_job_still_finishes(
    alice_client, fake_fal, tmp_path, monkeypatch
):
    size = len(make_mp4(320, 180, 2.0, 24))
    fake_fal.plan_outcomes(
        Outcome.success(video=(320, 180, 2.0, 24), bytes_per_s=size / DOWNLOAD_SECONDS)
    )
    env = redis_env(
        monkeypatch,
        **fake_fal.env(),
        VIDEO_BACKEND="fal",
        FAL_ALLOW_PRIVATE_RESULT_HOSTS="1",
        FAL_WEBHOOK_JWKS_URL=fake_fal.jwks_url,
    )
    with running(["qcluster"], ["track"], env=env, log_dir=tmp_path) as (cluster, _tracker):
        response = alice_client.post(
            reverse("generate"),
            {
                "endpoint": "fal-ai/pika/v2.2/text-to-video",
                "prompt": "a lighthouse at dusk",
                "aspect_ratio": "16:9",
                "resolution": "720p",
                "duration": "5",
                "preset": "static",
            },
        )
        assert response.status_code == 302
        generation = Generation.objects.get()
        assert generation.backend == "fal"

        def downloader():
            # The worker spooling fal's file (generation/media.py store_video) is finalizing.
            return holding_file(
                descendants(cluster.pid),
                lambda path: "/promptreel-" in path and path.endswith("download.mp4"),
            )

        pids = wait_for(downloader, timeout=60)
        assert pids, output_of(tmp_path)[-3000:]
        generation.refresh_from_db()
        assert generation.state == State.FINALIZING
        os.kill(pids[0], signal.SIGKILL)
        killed_at = time.monotonic()
        wait_terminal(generation, timeout=120)
        recovered_in = time.monotonic() - killed_at
    assert generation.state == State.SUCCEEDED, (generation.state, output_of(tmp_path)[-3000:])
    # Redone after the lease ran out (not before: the killed copy might still have been alive).
    assert pipeline.FINALIZE_LEASE.total_seconds() - 5 < recovered_in < 120
    print(f"mid-finalize SIGKILL on Redis: succeeded {recovered_in:.1f} s after the kill")
