import pytest
from django.db import IntegrityError, transaction

from generation.models import ALLOWED_SOURCES, STAGE_TIMESTAMP, TERMINAL, Generation, State
from tests.factories import GenerationFactory

pytestmark = pytest.mark.django_db

PAIRS = [(source, target) for target in State.values for source in State.values]


@pytest.mark.parametrize(("source", "target"), PAIRS)
def test_transition_table(source, target):
    generation = GenerationFactory(
        state=source, output="outputs/x.mp4" if source == State.SUCCEEDED else ""
    )
    changes = {"output": "outputs/done.mp4"} if target == State.SUCCEEDED else {}

    moved = Generation.objects.transition(generation.pk, target, **changes)

    generation.refresh_from_db()
    if source in ALLOWED_SOURCES[target]:
        assert moved, f"{source} -> {target} should be allowed"
        assert generation.state == target
        if target in STAGE_TIMESTAMP:
            assert getattr(generation, STAGE_TIMESTAMP[target]) is not None
    else:
        assert not moved, f"{source} -> {target} should be refused"
        assert generation.state == source


def test_terminal_states_are_final():
    for target, sources in ALLOWED_SOURCES.items():
        assert not (sources & TERMINAL), f"{target} may be entered from a terminal state"


def test_happy_path_in_order_stamps_every_stage():
    generation = GenerationFactory()
    for state in (State.SUBMITTING, State.IN_QUEUE, State.IN_PROGRESS, State.FINALIZING):
        assert Generation.objects.transition(generation.pk, state)
    assert Generation.objects.transition(generation.pk, State.SUCCEEDED, output="outputs/a.mp4")
    generation.refresh_from_db()
    stamps = [
        generation.queued_at,
        generation.submitting_at,
        generation.in_queue_at,
        generation.in_progress_at,
        generation.finalizing_at,
        generation.finished_at,
    ]
    assert all(stamps)
    assert stamps == sorted(stamps)


def test_duplicate_transition_is_a_no_op():
    generation = GenerationFactory(state=State.IN_PROGRESS)
    assert Generation.objects.transition(generation.pk, State.FINALIZING)
    first = Generation.objects.get(pk=generation.pk).finalizing_at

    assert not Generation.objects.transition(generation.pk, State.FINALIZING)
    assert Generation.objects.get(pk=generation.pk).finalizing_at == first


def test_sources_narrow_the_allowed_set():
    generation = GenerationFactory(state=State.IN_QUEUE)
    assert not Generation.objects.transition(generation.pk, State.CANCELED, sources=[State.QUEUED])
    assert Generation.objects.get(pk=generation.pk).state == State.IN_QUEUE


def test_database_refuses_success_without_output():
    generation = GenerationFactory(state=State.FINALIZING)
    with pytest.raises(IntegrityError), transaction.atomic():
        Generation.objects.filter(pk=generation.pk).update(state=State.SUCCEEDED)


def test_database_refuses_unknown_state():
    generation = GenerationFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Generation.objects.filter(pk=generation.pk).update(state="exploded")


def test_a_stale_finalize_task_does_nothing():
    from datetime import timedelta

    from django.utils import timezone

    from workflows import pipeline

    lease = timezone.now() + timedelta(minutes=5)
    generation = GenerationFactory(state=State.FINALIZING, next_check_at=lease)
    # A copy queued before the tracker re-queued the row carries an older lease value.
    assert not pipeline.generation_finalize(
        generation_id=generation.pk, lease=lease - timedelta(seconds=30)
    )
    # Without a lease, a finalize may only take one that has expired.
    assert not pipeline.generation_finalize(generation_id=generation.pk)
    generation.refresh_from_db()
    assert generation.state == State.FINALIZING and generation.next_check_at == lease
