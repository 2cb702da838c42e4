"""Idle-time training: a background thread that takes a few training steps after each update.

An ``update()`` must return at once, but the annotator then spends seconds on each question, and
the model can keep learning from the answers meanwhile. After each :meth:`IdleTrainer.notify` the
thread takes up to ``steps`` steps, ``pause`` seconds apart, then sleeps until the next notify.

Shutdown: :meth:`IdleTrainer.stop` stops and joins the threads; an ``atexit`` handler does it for
every trainer, so the interpreter never exits while a thread is inside torch (which aborted the
process: "terminate called without an active exception").
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from typing import Any, Callable

IDLE_JOIN_TIMEOUT = 10.0  # seconds the atexit handler waits for each trainer's threads
THREAD_NAME = "sparse_ner-idle-training"
_RUNNING: "weakref.WeakSet[IdleTrainer]" = weakref.WeakSet()  # trainers that started a thread


@atexit.register
def _stop_all() -> None:
    """At interpreter exit, stop and join every idle-training thread: a daemon thread still inside
    torch when the interpreter finalizes aborts the process."""
    for trainer in list(_RUNNING):
        trainer.stop(IDLE_JOIN_TIMEOUT)


class IdleTrainer:
    """Calls ``step()`` in daemon threads, up to ``steps`` times after each :meth:`notify`, while
    ``ready()`` (there is something to learn)."""

    def __init__(self, step: Callable[[], Any], ready: Callable[[], bool], steps: int = 9):
        self.step, self.ready, self.steps = step, ready, steps
        self._budget = 0  # steps the threads may still take
        self._wake = threading.Event()  # set by notify(): wakes a waiting thread
        self._lock = threading.Lock()
        self._runs: list[tuple[threading.Thread, threading.Event]] = []  # (thread, its stop event)

    @property
    def threads(self) -> list[threading.Thread]:
        """The threads started and not yet finished."""
        with self._lock:
            return [thread for thread, _ in self._runs]

    @property
    def running(self) -> bool:
        """Whether a thread was started and has not finished."""
        return bool(self._runs)

    def notify(self) -> None:
        """New answers came in: allow ``steps`` more steps and wake the threads."""
        self._budget = self.steps
        self._wake.set()

    def start(self, pause: float = 0.05) -> threading.Event:
        """Start a daemon thread; it runs until the returned event is set or :meth:`stop`."""
        stop = threading.Event()

        def loop() -> None:
            try:
                while not stop.is_set():
                    if self._budget <= 0 or not self.ready():
                        self._wake.wait(0.5)
                        self._wake.clear()
                        continue
                    self._budget -= 1
                    self.step()
                    stop.wait(pause)
            finally:
                with self._lock:
                    self._runs = [r for r in self._runs if r[0] is not threading.current_thread()]

        thread = threading.Thread(target=loop, name=THREAD_NAME, daemon=True)
        with self._lock:
            self._runs.append((thread, stop))
        _RUNNING.add(self)
        thread.start()
        return stop

    def stop(self, timeout: float | None = IDLE_JOIN_TIMEOUT) -> bool:
        """Stop the threads and wait for them (their step in progress) up to ``timeout`` seconds in
        all (None: as long as it takes); True when none is left running."""
        with self._lock:
            runs = list(self._runs)
        for _, stop in runs:
            stop.set()
        self._wake.set()  # wake the threads that wait for an update
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread, _ in runs:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread, _ in runs)


__all__ = ["IDLE_JOIN_TIMEOUT", "IdleTrainer"]
