"""Crash-safe saving of a model folder, and recovery from a save that was killed half way.

:func:`save` writes everything into ``FOLDER.tmp`` (through the caller's ``write``), fsyncs it and
writes a manifest ``online/complete`` (every file and its size) last; then ``FOLDER`` is moved to
``FOLDER.old``, ``FOLDER.tmp`` to ``FOLDER``, and ``FOLDER.old`` is removed (always by renaming it
to ``FOLDER.trash-*`` first, so nothing is ever seen half deleted).

:func:`recover` runs before each save and load and finishes or undoes what a killed save left: a
complete ``.tmp`` is promoted, else a complete ``.old`` when ``FOLDER`` is gone, and leftovers are
removed. A ``.tmp`` counts as complete only with its manifest; ``FOLDER`` and ``.old`` (only ever
made by renaming a complete ``.tmp``, by an export, or by an older version) when they have
``tagger.json`` and weights. One process saves a folder at a time; within a process, one save or
recovery runs at a time.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import Callable

STATE_DIR = "online"  # the loop's state inside a saved model folder
COMPLETE = "complete"  # the manifest in STATE_DIR, written last
SAVE_STAGES = ("recovered", "model_written", "answers_written", "state_written", "synced", "tmp_written",
               "old_renamed", "tmp_renamed", "old_removed", "trash_renamed")  # fmt: skip
SAVE_LOCK = threading.RLock()  # one save or recovery at a time in this process
_hook: Callable[[str], None] | None = None


def set_stage_hook(hook: Callable[[str], None] | None) -> None:
    """Call ``hook(stage)`` each time a save reaches a stage of :data:`SAVE_STAGES` (tests kill the
    process there); None removes it."""
    global _hook
    _hook = hook


def stage(name: str) -> None:
    """Mark that a save reached ``name`` (one of :data:`SAVE_STAGES`)."""
    if _hook is not None:
        _hook(name)


def _fsync(path: Path) -> None:
    """Flush a file, or a directory's entries, to disk (directories: POSIX only)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # a directory on Windows
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _seal(folder: Path) -> None:
    """fsync every file of ``folder``, then write the manifest of their sizes last (and fsync it)."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        _fsync(path)
        files[path.relative_to(folder).as_posix()] = path.stat().st_size
    for path in [p for p in folder.rglob("*") if p.is_dir()] + [folder]:
        _fsync(path)
    stage("synced")
    marker = folder / STATE_DIR / COMPLETE
    marker.parent.mkdir(exist_ok=True)
    marker.write_text(json.dumps({"files": files}, indent=1) + "\n", encoding="utf8")
    _fsync(marker)
    _fsync(marker.parent)


def _complete(folder: Path, need_manifest: bool = False) -> bool:
    """Whether ``folder`` holds a whole saved model: with ``need_manifest`` (a ``.tmp``), every file
    its manifest lists at its size; else ``tagger.json`` and weights (so a hand-edited or older
    ``online/`` still loads)."""
    if need_manifest:
        try:
            files = json.loads((folder / STATE_DIR / COMPLETE).read_text("utf8"))["files"]
            return all((folder / name).is_file() and (folder / name).stat().st_size == size
                       for name, size in files.items())  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return False
    weights = (folder / "weights.safetensors").is_file() or (folder / "weights.pt").is_file()
    return (folder / "tagger.json").is_file() and weights


def _discard(path: Path, folder: Path) -> None:
    """Remove ``path`` by renaming it to ``FOLDER.trash-*`` first, so it is never seen half deleted."""
    trash = folder.with_name(f"{folder.name}.trash-{uuid.uuid4().hex[:12]}")
    path.rename(trash)
    _fsync(folder.parent)
    stage("trash_renamed")
    shutil.rmtree(trash, ignore_errors=True)


def recover(folder: str | Path) -> Path:
    """Finish or undo what a killed save of ``folder`` left (module docstring); returns ``folder``."""
    folder = Path(folder)
    tmp, old = folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")
    with SAVE_LOCK:
        if folder.parent.is_dir():
            for trash in folder.parent.glob(f"{glob.escape(folder.name)}.trash-*"):
                shutil.rmtree(trash, ignore_errors=True)
        if tmp.exists():
            if _complete(tmp, need_manifest=True):  # killed after writing all of it: finish the swap
                if folder.exists():
                    if old.exists():
                        _discard(old, folder)
                    folder.rename(old)
                tmp.rename(folder)
                _fsync(folder.parent)
            else:
                _discard(tmp, folder)
        if old.exists():
            if not _complete(folder) and _complete(old):  # killed between the two renames
                if folder.exists():
                    _discard(folder, folder)
                old.rename(folder)
                _fsync(folder.parent)
            else:
                _discard(old, folder)
    return folder


def saved_at(folder: str | Path) -> bool:
    """Whether ``folder`` holds a loadable model (a save or an exported model), after :func:`recover`."""
    folder = Path(folder)
    with SAVE_LOCK:
        recover(folder)
        return folder.is_dir() and _complete(folder)


def save(folder: str | Path, write: Callable[[Path], None]) -> Path:
    """Replace ``folder`` by what ``write(tmp)`` writes into the new folder ``tmp``, safely against a
    kill at any point (module docstring). Refuses to replace a folder that is not a saved model."""
    folder = Path(folder)
    tmp, old = folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")
    with SAVE_LOCK:
        recover(folder)
        foreign = folder.is_dir() and not (folder / "tagger.json").exists() and any(folder.iterdir())
        if folder.is_file() or foreign:
            raise FileExistsError(f"{folder} exists and is not a saved model: not replacing it")
        stage("recovered")
        write(tmp)
        _seal(tmp)  # fsync, then the manifest: from here on tmp is a complete save
        stage("tmp_written")
        if folder.exists():
            folder.rename(old)
            _fsync(folder.parent)
            stage("old_renamed")
        tmp.rename(folder)
        _fsync(folder.parent)
        stage("tmp_renamed")
        if old.exists():
            _discard(old, folder)
            stage("old_removed")
    return folder


__all__ = ["COMPLETE", "SAVE_STAGES", "STATE_DIR", "recover", "save", "saved_at", "set_stage_hook", "stage"]
