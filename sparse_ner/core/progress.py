"""Progress bars on stderr for long passes over data (tqdm), or nothing where none is wanted."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from typing import Any


class _Silent(nullcontext):
    """What :func:`progress_bar` gives when no bar is wanted: ``update`` does nothing."""

    def __enter__(self) -> "_Silent":
        return self

    def update(self, n: int = 1) -> None:
        pass


def progress_bar(total: int, progress: bool | str, desc: str, unit: str = " texts") -> Any:
    """A tqdm bar over ``total`` items on stderr when ``progress`` is true (a string: the bar's
    description instead of ``desc``), else an object with the same ``update`` and ``with`` that shows
    nothing. The command lines turn it on where stderr is a terminal (``--no-progress`` turns it off)."""
    if not progress:
        return _Silent()
    from tqdm import tqdm

    return tqdm(total=total, desc=progress if isinstance(progress, str) else desc, unit=unit, file=sys.stderr)


def wanted(no_progress: bool) -> bool:
    """Whether a command line shows progress bars: stderr is a terminal and ``--no-progress`` was not given."""
    return not no_progress and sys.stderr.isatty()


__all__ = ["progress_bar", "wanted"]
