"""generation.leases: one keeper thread per process renews every lease held in it."""

import threading

from generation import leases


def test_a_lease_is_renewed_while_its_block_runs_and_never_after():
    beats = threading.Semaphore(0)
    calls = []

    def renew():
        calls.append(1)
        beats.release()
        return True

    with leases.heartbeat(renew, every=0.01, longest=60):
        assert beats.acquire(timeout=5) and beats.acquire(timeout=5), "renewed twice"
    after = len(calls)
    stopped = threading.Event()
    stopped.wait(0.1)
    assert len(calls) == after, "no renewal once the block has exited"


def test_two_leases_share_one_thread_and_a_lost_lease_stops_alone():
    lost_once = threading.Event()
    kept = threading.Semaphore(0)
    lost_calls = []

    def lose():
        lost_calls.append(1)
        lost_once.set()
        return False  # the lease was taken over: stop renewing it

    def keep():
        kept.release()
        return True

    with leases.heartbeat(keep, every=0.01, longest=60):
        with leases.heartbeat(lose, every=0.01, longest=60):
            assert lost_once.wait(5)
            for _ in range(3):
                assert kept.acquire(timeout=5)
        names = [thread.name for thread in threading.enumerate()]
        assert names.count("lease-keeper") == 1
    assert lost_calls == [1]


def test_a_renewal_under_way_finishes_before_the_block_exits():
    inside = threading.Event()
    release = threading.Event()
    finished = []

    def slow_renew():
        inside.set()
        release.wait(5)
        finished.append(1)
        return True

    exited = threading.Event()

    def work():
        with leases.heartbeat(slow_renew, every=0.01, longest=60):
            assert inside.wait(5)
        exited.set()

    worker = threading.Thread(target=work)
    worker.start()
    assert inside.wait(5)
    assert not exited.wait(0.05), "the block waits for the renewal in progress"
    release.set()
    worker.join(5)
    assert exited.is_set() and finished


def test_a_lease_past_its_longest_is_let_go(caplog):
    calls = []
    done = threading.Event()

    def renew():
        calls.append(1)
        return True

    with leases.heartbeat(renew, every=0.01, longest=0):
        done.wait(0.1)
    assert calls == [], "past its longest at the first beat: never renewed"
    assert "taken as stuck" in caplog.text
