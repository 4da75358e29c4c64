"""Plan limits that guard money or abuse, checked where the hold is taken."""

import pytest

from billing import services as billing
from core.models import AuditEntry
from generation.models import Generation
from moderation.models import UserStanding
from workflows.generations import generation_create

pytestmark = pytest.mark.django_db

URL = "/api/v1/generations"


def test_daily_generation_cap_refuses_exactly_at_the_limit(alice_api, user, settings):
    settings.BILLING_PLAN_OVERRIDES = (
        '{"free": {"max_generations_per_day": 2, "max_in_flight": 10}}'
    )
    billing.credits_purchase(account=billing.account_for(user), credits=1000, key="t", reason="t")
    codes = [alice_api.post(URL, {"prompt": f"p{i}"}, format="json").status_code for i in range(3)]
    assert codes == [201, 201, 429]
    answer = alice_api.post(URL, {"prompt": "again"}, format="json")
    refusal = answer.json()
    assert refusal["code"] == "plan_limit" and "2 generations a day" in refusal["detail"]
    assert refusal["allowed_by"] == "creator"
    assert (refusal["limit"], refusal["allowed"]) == ("max_generations_per_day", 2)
    assert 0 < int(answer["Retry-After"]) <= 86400  # until midnight UTC
    assert Generation.objects.count() == 2


def test_a_burst_flags_the_account_for_review(user, settings):
    settings.BURST_FLAG_PER_MINUTE = 2
    settings.BILLING_PLAN_OVERRIDES = '{"free": {"max_in_flight": 10}}'
    billing.credits_purchase(account=billing.account_for(user), credits=1000, key="t", reason="t")
    for index in range(2):
        generation_create(
            user=user,
            endpoint_id="fal-ai/pika/v2.2/text-to-video",
            inputs={"prompt": f"calm sea {index}"},
        )
    assert not UserStanding.objects.filter(user=user, flagged_at__isnull=False).exists()
    generation_create(
        user=user, endpoint_id="fal-ai/pika/v2.2/text-to-video", inputs={"prompt": "calm sea 3"}
    )
    standing = UserStanding.objects.get(user=user)
    assert standing.flagged_at is not None and "in a minute" in standing.flag_reason
    assert AuditEntry.objects.filter(action="user.flag").count() == 1
    assert Generation.objects.count() == 3, "a burst is flagged, not refused"
