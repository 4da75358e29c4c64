"""Tracker threads check their database connection now and then, and after a failed step."""

import threading

from workflows import tracking


def test_a_thread_checks_its_connection_every_few_seconds_and_after_a_failed_step(monkeypatch):
    checks = []
    monkeypatch.setattr(tracking, "close_old_connections", lambda: checks.append("checked"))
    monkeypatch.setattr(tracking, "_thread_checked", threading.local())
    outcomes = iter([True, True, False, True, True])
    monkeypatch.setattr(tracking, "_step", lambda generation: next(outcomes))

    for _ in range(5):
        tracking._step_in_thread(None)

    # The first step checks; the next two do not (seconds apart at most); the step after the
    # failure checks again; the one after that does not.
    assert checks == ["checked", "checked"]


def test_time_alone_brings_the_next_check(monkeypatch):
    checks = []
    monkeypatch.setattr(tracking, "close_old_connections", lambda: checks.append("checked"))
    monkeypatch.setattr(tracking, "_thread_checked", threading.local())
    monkeypatch.setattr(tracking, "_step", lambda generation: True)

    tracking._step_in_thread(None)
    tracking._step_in_thread(None)
    assert len(checks) == 1
    tracking._thread_checked.at -= tracking.CONNECTION_CHECK_SECONDS  # that long ago
    tracking._step_in_thread(None)
    assert len(checks) == 2
