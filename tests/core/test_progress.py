"""The command lines' progress switch: bars only on a terminal and never with --no-progress."""

from __future__ import annotations

import io
import sys

import pytest

from sparse_ner.core.progress import progress_bar, wanted


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("terminal", "no_progress", "expected"),
                         [(True, False, True), (True, True, False), (False, False, False), (False, True, False)])  # fmt: skip
def test_bars_show_on_a_terminal_unless_turned_off(monkeypatch: pytest.MonkeyPatch, terminal: bool,
                                                   no_progress: bool, expected: bool) -> None:  # fmt: skip
    monkeypatch.setattr(sys, "stderr", Terminal() if terminal else io.StringIO())
    assert wanted(no_progress) is expected


def test_a_silent_bar_writes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    with progress_bar(3, False, "x") as bar:
        bar.update(3)
    assert err.getvalue() == ""
    with progress_bar(3, "counting", "x") as bar:
        bar.update(3)
    assert "counting" in err.getvalue() and "3/3" in err.getvalue()
