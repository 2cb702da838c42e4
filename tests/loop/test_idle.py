"""The idle trainer (sparse_ner.loop.idle): ``steps`` steps after each notify and then a wait,
nothing while there is nothing to learn, and stop / join, with a stand-in step (no model)."""

from __future__ import annotations

import threading
import time

from sparse_ner.loop.idle import IdleTrainer


def wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_takes_its_steps_after_each_notify_then_waits():
    calls: list[int] = []
    trainer = IdleTrainer(lambda: calls.append(1), lambda: True, steps=3)
    stop = trainer.start(pause=0.0)
    try:
        time.sleep(0.2)
        assert calls == []  # not notified yet
        trainer.notify()
        assert wait_for(lambda: len(calls) >= 3)
        time.sleep(0.3)
        assert len(calls) == 3  # its budget, then it waits
        trainer.notify()
        assert wait_for(lambda: len(calls) >= 6)
        time.sleep(0.3)
        assert len(calls) == 6
    finally:
        stop.set()


def test_nothing_to_learn_no_steps():
    calls: list[int] = []
    ready = threading.Event()
    trainer = IdleTrainer(lambda: calls.append(1), ready.is_set, steps=2)
    trainer.start(pause=0.0)
    try:
        trainer.notify()
        time.sleep(0.3)
        assert calls == []
        ready.set()
        trainer.notify()  # wakes it at once
        assert wait_for(lambda: len(calls) >= 2)
    finally:
        assert trainer.stop(timeout=10)


def test_running_threads_and_stop():
    trainer = IdleTrainer(lambda: None, lambda: True)
    assert not trainer.running and trainer.threads == [] and trainer.stop() is True  # nothing to stop
    stops = [trainer.start(), trainer.start()]
    threads = trainer.threads
    assert trainer.running and len(threads) == 2 and all(t.daemon and t.is_alive() for t in threads)
    assert trainer.stop(timeout=10) is True
    assert all(s.is_set() for s in stops) and not any(t.is_alive() for t in threads)
    assert not trainer.running and trainer.threads == []
    stop = trainer.start()
    stop.set()  # the returned event alone stops its thread
    assert wait_for(lambda: not trainer.running)


def test_stop_waits_for_the_step_in_progress_up_to_the_timeout():
    inside, release = threading.Event(), threading.Event()
    trainer = IdleTrainer(lambda: (inside.set(), release.wait(10)), lambda: True, steps=1)
    trainer.start(pause=0.0)
    trainer.notify()
    assert inside.wait(10)
    assert trainer.stop(timeout=0.1) is False  # still inside its step
    release.set()
    assert trainer.stop(timeout=10) is True and not trainer.running
