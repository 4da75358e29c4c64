import threading
import uuid

import pytest
from django.db import connection

from api import ratelimit

URL = "/api/v1/generations"


@pytest.mark.django_db(transaction=True)
def test_exactly_the_limit_passes_under_200_concurrent_hits():
    """Redis INCR with REDIS_URL (CI's second run), the database's conditional UPDATE without."""
    bucket, limit, workers = f"test:{uuid.uuid4().hex}", 37, 200
    verdicts, errors, start = [], [], threading.Barrier(workers)

    def one():
        start.wait()
        try:
            verdicts.append(ratelimit.hit(bucket, limit=limit, window_seconds=3600).allowed)
        except Exception as exc:  # reported below: every request must get a verdict
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=one) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]
    assert len(verdicts) == workers
    assert verdicts.count(True) == limit


@pytest.mark.django_db
def test_429_with_retry_after_and_ratelimit_headers(alice_api, settings):
    settings.API_REQUESTS_PER_MINUTE = 3
    answers = [alice_api.get(URL) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    ok, refused = answers[0], answers[3]
    assert ok["RateLimit-Policy"] == '"default";q=3;w=60'
    assert ok["RateLimit"].startswith('"default";r=2;t=')
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 60


@pytest.mark.django_db
def test_each_key_has_its_own_budget(alice_api, bob_api, settings):
    settings.API_REQUESTS_PER_MINUTE = 1
    assert alice_api.get(URL).status_code == 200
    assert alice_api.get(URL).status_code == 429
    assert bob_api.get(URL).status_code == 200


@pytest.mark.django_db
def test_anonymous_requests_are_limited_per_ip(client, settings):
    settings.API_ANONYMOUS_REQUESTS_PER_MINUTE = 2
    codes = [client.get(URL, REMOTE_ADDR="203.0.113.9").status_code for _ in range(3)]
    assert codes == [401, 401, 429]


@pytest.mark.django_db
def test_guessing_keys_is_limited_per_ip(client, settings):
    from api import keys

    settings.API_ANONYMOUS_REQUESTS_PER_MINUTE = 2
    codes = [
        client.get(
            URL, HTTP_AUTHORIZATION=f"Bearer {keys.new_key()}", REMOTE_ADDR="198.51.100.7"
        ).status_code
        for _ in range(3)
    ]
    assert codes == [401, 401, 429]
