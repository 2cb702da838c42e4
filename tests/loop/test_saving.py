"""Crash-safe saving of a folder (sparse_ner.loop.saving): the swap, the stages it passes, refusal
to replace a foreign folder, and recovery from what a killed save leaves (without a model: the
files a model folder needs are written by hand)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparse_ner.loop import saving
from sparse_ner.loop.saving import COMPLETE, SAVE_STAGES, STATE_DIR, recover, save, saved_at


def writer(version: int, fail: bool = False):
    """Writes a minimal model folder holding ``version``; raises half way with ``fail``."""

    def write(folder: Path) -> None:
        folder.mkdir()
        (folder / "tagger.json").write_text(json.dumps({"version": version}))
        saving.stage("model_written")
        if fail:
            raise RuntimeError("disk full")
        (folder / "weights.pt").write_bytes(b"w" * version)
        (folder / STATE_DIR).mkdir()
        saving.stage("answers_written")
        saving.stage("state_written")

    return write


def version(folder: Path) -> int:
    return json.loads((folder / "tagger.json").read_text())["version"]


def names(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


@pytest.fixture
def stages():
    seen: list[str] = []
    saving.set_stage_hook(seen.append)
    yield seen
    saving.set_stage_hook(None)


def test_save_replaces_the_folder_and_passes_every_stage(tmp_path, stages):
    folder = tmp_path / "model"
    assert save(folder, writer(1)) == folder and version(folder) == 1
    assert (folder / STATE_DIR / COMPLETE).is_file() and names(tmp_path) == ["model"]
    manifest = json.loads((folder / STATE_DIR / COMPLETE).read_text())["files"]
    assert manifest == {"tagger.json": (folder / "tagger.json").stat().st_size, "weights.pt": 1}
    assert "old_renamed" not in stages  # nothing to replace the first time
    stages.clear()
    save(folder, writer(2))
    assert version(folder) == 2 and names(tmp_path) == ["model"] and saved_at(folder)
    assert stages == ["recovered", "model_written", "answers_written", "state_written", "synced", "tmp_written",
                      "old_renamed", "tmp_renamed", "trash_renamed", "old_removed"]  # fmt: skip
    assert set(stages) == set(SAVE_STAGES)


def test_a_failed_write_leaves_the_last_save(tmp_path):
    folder = tmp_path / "model"
    save(folder, writer(1))
    with pytest.raises(RuntimeError, match="disk full"):
        save(folder, writer(2, fail=True))
    assert saved_at(folder) and version(folder) == 1 and names(tmp_path) == ["model"]  # the .tmp is gone


def test_save_refuses_a_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    (tmp_path / "file").write_text("keep me too")
    for target in ("notes", "file"):
        with pytest.raises(FileExistsError, match="not a saved model"):
            save(tmp_path / target, writer(1))
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"
    (tmp_path / "empty").mkdir()
    save(tmp_path / "empty", writer(1))  # an empty folder may be filled
    assert version(tmp_path / "empty") == 1


def test_recover_promotes_a_complete_tmp_and_drops_a_partial_one(tmp_path):
    folder = tmp_path / "model"
    save(tmp_path / "model.tmp", writer(2))  # a sealed .tmp: the kill came after the manifest
    (tmp_path / "model.tmp.old").mkdir()  # unrelated names are not touched
    assert recover(folder) == folder and version(folder) == 2
    assert names(tmp_path) == ["model", "model.tmp.old"]
    (tmp_path / "model.tmp").mkdir()
    (tmp_path / "model.tmp" / "tagger.json").write_text("{}")  # no manifest: half written
    assert saved_at(folder) and version(folder) == 2 and not (tmp_path / "model.tmp").exists()


def test_recover_restores_old_when_the_folder_is_gone_and_removes_leftovers(tmp_path):
    folder = tmp_path / "model"
    save(folder, writer(1))
    folder.rename(tmp_path / "model.old")  # killed between the two renames
    (tmp_path / "model.trash-0123").mkdir()  # killed while deleting
    assert saved_at(folder) and version(folder) == 1 and names(tmp_path) == ["model"]
    save(tmp_path / "model.old", writer(0))  # a stale .old beside a good model is removed
    assert saved_at(folder) and version(folder) == 1 and names(tmp_path) == ["model"]
    assert not saved_at(tmp_path / "nothing") and not (tmp_path / "nothing").exists()
