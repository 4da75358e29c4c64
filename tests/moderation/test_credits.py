"""A blocked generation gets its credits back exactly once (billing's transition hook)."""

import pytest
from django.db import transaction

from billing import holds
from billing import services as billing
from billing.models import LedgerEntry
from generation.models import Generation, State
from moderation.policy import BLOCK, Decision
from tests.factories import GenerationFactory
from tests.support.lifecycle import move
from workflows import review

pytestmark = pytest.mark.django_db


def _create_held_with_hold(user, cost=30):
    """What generation_create does for a held / blocked decision: quote, insert, hold."""
    quote = holds.credits_quote(user=user, resolution="1080p", duration=10, list_credits=cost)
    with transaction.atomic():
        generation = GenerationFactory(
            user=user, state=State.HELD, queued_at=None, credit_cost=quote.credits,
            resolution="1080p", duration=10,
        )  # fmt: skip
        holds.credits_hold(quote=quote, generation=generation)
    return generation


def _releases(generation):
    return LedgerEntry.objects.filter(generation_id=generation.pk, kind="release").count()


@pytest.fixture
def funded(user):
    # Creator allows the 1080p, 10 s renders these tests hold credits for.
    billing.plan_change(account=billing.account_for(user), plan="creator", source="staff")
    billing.credits_adjust(user=user, amount=100, reason="test credits")
    return user


def test_automatic_block_releases_once(funded):
    generation = _create_held_with_hold(funded)
    assert billing.account_for(funded).balance == 70
    decision = Decision(
        action=BLOCK, category="hate", title="Hate", explanation="x", source="rules"
    )
    review.apply_decision(generation=generation, decision=decision)
    assert Generation.objects.get(pk=generation.pk).state == State.BLOCKED
    # A second attempt to block (a retried request, a racing moderator) moves nothing.
    assert not move(generation.pk, State.BLOCKED)
    assert _releases(generation) == 1
    assert billing.account_for(funded).balance == 100


def test_moderator_reject_releases_once(funded, moderator):
    generation = _create_held_with_hold(funded)
    assert review.held_reject(generation=generation, moderator=moderator, category="hate")
    assert not review.held_reject(generation=generation, moderator=moderator)
    assert _releases(generation) == 1
    assert billing.account_for(funded).balance == 100


def test_approve_keeps_the_hold(funded, moderator, monkeypatch):
    from workflows import generations as generation_services

    monkeypatch.setattr(generation_services, "enqueue_submit", lambda pk: None)
    generation = _create_held_with_hold(funded)
    assert review.held_approve(generation=generation, moderator=moderator)
    assert _releases(generation) == 0
    assert billing.account_for(funded).balance == 70
