"""Task hashes that agree with Prodigy's: ``_input_hash`` (the text) and ``_task_hash`` (the question).

Prodigy groups answers by ``_input_hash`` (``--exclude``, ``prodigy train``, ``data-to-spacy``,
``exclude_by: "input"``) and skips questions whose ``_task_hash`` is already in the dataset. Tasks
made here must carry the hashes Prodigy itself would give them, or one text gets two input hashes.

- Where Prodigy is importable, :func:`set_hashes` is Prodigy's own ``prodigy.set_hashes`` (so the
  numbers are exactly Prodigy's).
- Elsewhere a documented deterministic fallback: ``_input_hash`` is a signed 32-bit MD5 hash of the
  text (:func:`sparse_ner.data.prodigy.input_hash`, the hash ``read_examples`` gives records without
  one), ``_task_hash`` an MD5 hash of the input hash and the task keys (span offsets and labels;
  ``score`` and other ignored keys left out). It is stable across runs and machines, but it is *not*
  Prodigy's number: a dataset annotated with Prodigy keeps Prodigy's hashes, which every reader here
  takes as given.

:func:`record_key` is the one "key of this text" rule of the annotation loop: the record's own
``_input_hash``; a record that has none gets the hash :func:`set_hashes` would give it. A record
saved by an earlier version with the MD5 fallback while Prodigy is now importable is re-keyed to
Prodigy's hash (:func:`record_key` with ``migrate=True``), so an answer memory saved under the old
keys still loads into the same text as the new tasks.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import sys
from typing import Any, Callable, Iterable, Optional, Sequence


INPUT_KEYS = ("text", "image", "html", "input")  # Prodigy's defaults
TASK_KEYS = ("spans", "label", "options")
REVIEW_TASK_KEYS = ("spans", "label", "options", "_review")  # a review question differs from the original
IGNORE = ("score", "rank", "model", "source", "pattern", "priority", "path", "_view_id", "_session_id",
          "_annotator_id", "answer", "meta", "_timestamp")  # fmt: skip


def hash32(*parts: str) -> int:
    """A stable signed 32-bit hash (the size of Prodigy's hashes) of some strings (MD5)."""
    digest = hashlib.md5("\x1f".join(parts).encode("utf8")).digest()
    return int.from_bytes(digest[:4], "little", signed=True)


def input_hash(text: str) -> int:
    """The fallback ``_input_hash`` of a text."""
    return hash32("input", text)


def task_hash(in_hash: int, view_id: str, spans: Iterable[dict]) -> int:
    """A task hash over the input hash, the view and the spans' offsets and labels (records written here)."""
    keys = sorted((s["start"], s["end"], s["label"]) for s in spans)
    return hash32("task", str(in_hash), view_id, repr(keys))


@functools.lru_cache(maxsize=1)
def _installed() -> bool:
    try:
        return importlib.util.find_spec("prodigy") is not None
    except (ImportError, ValueError):
        return False


def prodigy_available() -> bool:
    """Whether ``import prodigy`` would find a module (without importing it)."""
    if "prodigy" in sys.modules:
        return sys.modules["prodigy"] is not None
    return _installed()


def _prodigy_set_hashes() -> Optional[Callable[..., dict]]:
    if not prodigy_available():
        return None
    import prodigy  # an installed Prodigy that fails to import raises here: visible, never swallowed

    fn = getattr(prodigy, "set_hashes", None)
    if fn is None:  # Prodigy 1.11 keeps it in prodigy.util only
        from prodigy.util import set_hashes as fn  # type: ignore[import-not-found,no-redef]
    return fn


def _strip(value: Any) -> Any:
    """``value`` without ignored keys at any depth (scores on spans do not change a question)."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in IGNORE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def fallback_hashes(task: dict, task_keys: Sequence[str] = TASK_KEYS) -> tuple[int, int]:
    """The fallback ``(_input_hash, _task_hash)`` of a task (module docstring)."""
    text = task.get("text")
    if isinstance(text, str) and not any(k in task for k in INPUT_KEYS if k != "text"):
        in_hash = input_hash(text)
    else:
        inputs = {k: task[k] for k in INPUT_KEYS if k in task}
        in_hash = hash32("input", json.dumps(inputs, sort_keys=True, ensure_ascii=False, default=str))
    keys = {k: _strip(task[k]) for k in task_keys if k in task}
    return in_hash, hash32("task", str(in_hash), json.dumps(keys, sort_keys=True, ensure_ascii=False, default=str))


def set_hashes(task: dict, overwrite: bool = False, task_keys: Sequence[str] = TASK_KEYS) -> dict:
    """``task`` with ``_input_hash`` and ``_task_hash`` set (in place, and returned): Prodigy's
    ``set_hashes`` where Prodigy is importable, else the fallback. ``overwrite=True`` recomputes
    them (after the spans changed)."""
    fn = _prodigy_set_hashes()
    if fn is not None:
        return fn(task, task_keys=tuple(task_keys), overwrite=overwrite)
    if not overwrite and "_input_hash" in task and "_task_hash" in task:
        return task
    task["_input_hash"], task["_task_hash"] = fallback_hashes(task, task_keys)
    return task


def text_hash(text: str) -> int:
    """The ``_input_hash`` that :func:`set_hashes` gives a task with only this text."""
    return set_hashes({"text": text})["_input_hash"]


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def record_key(record: dict, migrate: bool = False) -> int:
    """The key of the text of an answered record (module docstring)."""
    key = record.get("_input_hash")
    text = record.get("text")
    if _is_int(key):
        if migrate and isinstance(text, str) and key == input_hash(text) and prodigy_available():
            return text_hash(text)  # saved with the MD5 fallback, now under Prodigy: Prodigy's key
        return key
    return set_hashes({k: record[k] for k in INPUT_KEYS if k in record})["_input_hash"]


__all__ = ["REVIEW_TASK_KEYS", "TASK_KEYS", "fallback_hashes", "hash32", "input_hash", "task_hash", "prodigy_available", "record_key", "set_hashes", "text_hash"]
