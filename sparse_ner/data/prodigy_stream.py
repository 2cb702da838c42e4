"""What a Prodigy recipe needs from Prodigy, with plain fallbacks where Prodigy is not installed.

- :data:`recipe`: ``prodigy.recipe`` where Prodigy is importable (it registers the recipe; a Prodigy
  that fails to import raises here, never swallowed), else a decorator that only tags the function.
- :func:`make_stream`: a Prodigy ``Stream`` (``Stream.from_iterable`` + ``.apply``, 1.12+) where that
  class exists, a plain generator otherwise (Prodigy 1.11, or no Prodigy).
- :func:`read_source`: the tasks of a JSONL source, lazily, each with Prodigy's hashes; a bad line is
  logged with its line number and skipped.

Nothing here imports torch: recipe modules stay cheap to register.
"""

# No `from __future__ import annotations`: the recipe modules using this read their signatures at run time.

import logging
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

from sparse_ner.data.hashes import prodigy_available, set_hashes

log = logging.getLogger("sparse_ner.recipes")


class RecipeError(ValueError):
    """A recipe cannot start; the message says what to do, in one line."""


def _recipe_decorator() -> Callable[..., Callable]:
    if prodigy_available():
        import prodigy  # type: ignore[import-not-found]  # a broken Prodigy install raises here, visibly

        return prodigy.recipe

    def recipe(name: str, **args: Any) -> Callable:  # without Prodigy: plain functions, tagged
        def wrap(fn: Callable) -> Callable:
            fn.recipe_name = name  # type: ignore[attr-defined]
            fn.recipe_args = args  # type: ignore[attr-defined]
            return fn

        return wrap

    return recipe


def recipe(name: str, **args: Any) -> Callable[[Callable], Callable]:
    """``@recipe("name", arg=(help, kind, short, type), ...)``: Prodigy's decorator where Prodigy is
    importable (decided when the recipe module is imported), else one that tags the function."""
    return _recipe_decorator()(name, **args)


def make_stream(tasks: Iterable[dict], fn: Optional[Callable[..., Iterable[dict]]] = None, **kwargs: Any) -> Any:
    """``fn(tasks, **kwargs)`` as a Prodigy ``Stream`` where that class exists, else a generator."""
    try:
        if not prodigy_available():
            raise ImportError
        from prodigy.components.stream import Stream  # type: ignore[import-not-found]
    except ImportError:  # Prodigy 1.11 (no Stream class) or no Prodigy: a plain generator
        return iter(fn(tasks, **kwargs)) if fn is not None else iter(tasks)
    stream = Stream.from_iterable(tasks)
    if fn is not None:
        stream.apply(fn, **kwargs)
    return stream


def read_source(source: str) -> Iterator[dict]:
    """The tasks of a JSONL source, lazily, each with Prodigy's hashes (recomputed, as Prodigy's
    ``get_stream(rehash=True)`` does). A line that is not a JSON object, or a task without a
    non-empty ``text``, is logged with its line number and skipped. A missing file raises
    :class:`RecipeError` here, before the first task is read (a recipe fails at start, not later)."""
    if str(source) != "-" and not Path(source).is_file():
        raise RecipeError(f"source file not found: {source}")
    return _read_source(source)


def _read_source(source: str) -> Iterator[dict]:
    from sparse_ner.data.io import read_jsonl
    from sparse_ner.data.prodigy import ReadStats

    stats = ReadStats()
    bad = 0
    last = 0
    for lineno, task in read_jsonl(source, on_error="skip", stats=stats):
        if stats.counts["malformed_json"] > bad:
            log.warning("%s: skipped %d malformed line(s) before line %d", source,
                        stats.counts["malformed_json"] - bad, lineno)  # fmt: skip
            bad = stats.counts["malformed_json"]
        last = lineno
        text = task.get("text")
        if not isinstance(text, str) or not text.strip():
            log.warning("%s:%d: skipped a task without text", source, lineno)
            continue
        yield set_hashes(task, overwrite=True)
    if stats.counts["malformed_json"] > bad:
        log.warning("%s: skipped %d malformed line(s) after line %d", source, stats.counts["malformed_json"] - bad, last)


__all__ = ["RecipeError", "make_stream", "read_source", "recipe"]
