"""Loop state that survives anything: saves killed at every stage and at random times, malformed
answers, interpreter exit with the idle-training thread running.

The kill tests run one child interpreter (``CHILD`` below) that imports torch once and forks a
process per save; each fork builds a tiny model, saves, and is killed with SIGKILL (by a stage
hook, ``saving.set_stage_hook``, at a named stage, or by its parent at a random time). This process
then checks what is left on disk.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
import torch

from sparse_ner.data.hashes import input_hash
from sparse_ner.data.prodigy import REASONS
from sparse_ner.data.tokenize import tokenize
from sparse_ner.loop.online import OnlineTagger
from sparse_ner.loop.saving import SAVE_STAGES

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the kill tests fork (POSIX)")

ROOT = Path(__file__).resolve().parents[2]
LABELS = ["LOC", "PER"]
TEXTS = ["Alice flew to Paris today .", "Bob met Alice in Berlin .", "Paris is far from Berlin .",
         "Carol and Bob stayed home ."]
SMALL = {"word_dim": 16, "char_dim": 8, "char_out": 8, "shape_dim": 4, "hidden": 16}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}

# One interpreter, argv: mode ("stages" | "random"), root folder, [kills]. Prints one JSON line.
CHILD = r"""
import json, os, random, signal, sys, time, traceback
from pathlib import Path

import torch

torch.set_num_threads(1)
from sparse_ner.loop import saving
from sparse_ner.data.tokenize import tokenize
from sparse_ner.core.encoders import build_encoder  # noqa: F401  (imported once, before forking)
from sparse_ner.core.export import export  # noqa: F401
from sparse_ner.loop.online import OnlineTagger
from sparse_ner.loop.saving import SAVE_STAGES

WORDS = ["Alice", "Bob", "Paris", "Berlin", "Rome", "Carol"]


def text(i):
    return f"{WORDS[i % 6]} went to {WORDS[(i + 2) % 6]} on day {i} ."


def answers(start, n):  # one new text per answer
    out = []
    for i in range(start, start + n):
        tok = tokenize(text(i))[0]
        out.append({"text": text(i), "answer": "accept", "_view_id": "ner",
                    "spans": [{"start": tok.start, "end": tok.end, "token_start": 0, "token_end": 0, "label": "PER"}]})
    return out


def make():
    torch.manual_seed(0)
    small = {"word_dim": 16, "char_dim": 8, "char_out": 8, "shape_dim": 4, "hidden": 16}
    return OnlineTagger.from_config(["LOC", "PER"], {"encoder_options": small, "dropout": 0.0},
                                    texts=[text(i) for i in range(200)], steps=1)


def kill_at(stage):
    def hook(name):
        if name == stage:
            os.kill(os.getpid(), signal.SIGKILL)
    return hook


def fork(fn, *args):
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            fn(*args)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return pid


def status(pid):
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def save_twice(folder, stage):  # save 1: 4 answers; save 2: 7 answers, killed at `stage`
    online = make()
    online.update(answers(0, 4))
    online.to_disk(folder)
    online.update(answers(4, 3))
    saving.set_stage_hook(kill_at(stage))
    online.to_disk(folder)
    os._exit(3)  # the stage was never reached


def recover(folder):  # the recovery itself killed when it first discards a folder
    saving.set_stage_hook(kill_at("trash_renamed"))
    OnlineTagger.saved_at(folder)
    os._exit(4)  # nothing to discard


def append(log, line):
    with open(log, "a") as f:
        f.write(line + "\n")


def saver(folder, log, w, final):  # load what is there, then update + save 3 times, forever
    left = sorted(p.name for p in folder.parent.iterdir() if p.name != "model") if folder.parent.exists() else []
    append(log, "leftovers " + ",".join(left))
    online = OnlineTagger.from_disk(folder) if OnlineTagger.saved_at(folder) else make()
    append(log, f"start {online.n_answers}")
    os.write(w, b"r")
    os.close(w)
    while not final:
        online.update(answers(online.n_answers, 2))
        append(log, f"attempt {online.n_answers}")
        for _ in range(3):
            online.to_disk(folder)
        append(log, f"saved {online.n_answers}")


mode, root = sys.argv[1], Path(sys.argv[2])
make().update(answers(0, 2))  # torch's one-time set-up (1 s), here rather than in every fork
if mode == "stages":
    saves = {stage: fork(save_twice, root / stage / "model", stage) for stage in SAVE_STAGES}
    saved = {stage: status(pid) for stage, pid in saves.items()}
    recovered = {stage: status(fork(recover, root / stage / "model")) for stage in SAVE_STAGES}
    print(json.dumps({stage: [saved[stage], recovered[stage]] for stage in SAVE_STAGES}))
else:
    kills, rng = int(sys.argv[3]), random.Random(0)
    folder, log = root / "state" / "model", root / "log"
    statuses = []
    for k in range(kills + 1):
        r, w = os.pipe()
        pid = fork(saver, folder, log, w, k == kills)
        os.close(w)
        ready = os.read(r, 1)
        os.close(r)
        if ready and k < kills:
            time.sleep(rng.uniform(0.0, 0.12))
            os.kill(pid, signal.SIGKILL)
        statuses.append(status(pid))
    print(json.dumps(statuses))
"""


def run_child(*args: str, timeout: float = 60) -> str:
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=ENV,
                          cwd=ROOT, timeout=timeout)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def make_online(**options) -> OnlineTagger:
    torch.manual_seed(0)
    return OnlineTagger.from_config(LABELS, {"encoder_options": SMALL, "dropout": 0.0}, texts=TEXTS,
                                    **options)  # fmt: skip


def task(text: str, start: int, end: int, label: str, answer: str, view: str = "ner", **extra) -> dict:
    toks = tokenize(text)
    span = {"start": toks[start].start, "end": toks[end].end, "token_start": start, "token_end": end, "label": label}
    return {"text": text, "spans": [span], "answer": answer, "_view_id": view, "_input_hash": input_hash(text), **extra}


def assert_loads_cleanly(folder: Path, allowed: set[int]) -> OnlineTagger:
    """``folder`` loads with one of the ``allowed`` answer counts, leaves nothing else behind, and
    the next save succeeds."""
    assert OnlineTagger.saved_at(folder)
    online = OnlineTagger.from_disk(folder)
    assert online.n_answers in allowed
    assert sum(len(v) for v in online.memory.values()) == online.n_answers == len(online.examples)
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]
    n = online.n_answers
    online.update([task(TEXTS[0], 3, 3, "LOC", "accept")])
    online.to_disk(folder)
    assert OnlineTagger.from_disk(folder).n_answers == n + 1
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]
    return online


# -- crash-safe saving ---------------------------------------------------------------------------


def test_save_killed_at_every_stage_loads_the_previous_or_this_save(tmp_path):
    statuses = json.loads(run_child("stages", str(tmp_path)))
    assert list(statuses) == list(SAVE_STAGES)
    finished = SAVE_STAGES.index("tmp_written")  # from here on the new save is complete on disk
    for i, stage in enumerate(SAVE_STAGES):
        saved, recovered = statuses[stage]
        assert saved == -9, f"{stage}: the save was not killed there (status {saved})"
        assert recovered in (-9, 4), f"{stage}: recovery failed (status {recovered})"
        assert_loads_cleanly(tmp_path / stage / "model", {7} if i >= finished else {4})


def test_saves_killed_at_random_times(tmp_path):
    kills = 20
    statuses = json.loads(run_child("random", str(tmp_path), str(kills)))
    assert statuses == [-9] * kills + [0]
    saved, attempt, interrupted, starts = 0, None, 0, 0
    for line in (tmp_path / "log").read_text().splitlines():
        word, _, value = line.partition(" ")
        if word == "leftovers":
            interrupted += bool(value)
        elif word == "start":  # what the last save or the one killed in flight wrote, nothing else
            assert int(value) in {saved, attempt}, f"loaded {value} answers; saved {saved}, attempt {attempt}"
            saved, attempt, starts = int(value), None, starts + 1
        elif word == "attempt":
            attempt = int(value)
        elif word == "saved":
            saved = int(value)
    assert starts == kills + 1 and saved > 0 and interrupted > 0
    print(f"{interrupted} of {kills} kills left a save half done")
    assert_loads_cleanly(tmp_path / "state" / "model", {saved, attempt} - {None})


def test_leftovers_of_the_old_save_are_recovered(tmp_path):
    """The two failures measured before: killed after ``model -> model.old`` (no model folder), and
    after ``.tmp -> model`` (``model.old`` left, which made every later save fail)."""
    online = make_online(steps=1)
    online.update([task(TEXTS[0], 3, 3, "LOC", "accept")])
    folder = online.to_disk(tmp_path / "model")
    folder.rename(tmp_path / "model.old")  # killed between the two renames
    assert OnlineTagger.saved_at(folder) and OnlineTagger.from_disk(folder).n_answers == 1
    online.to_disk(tmp_path / "model.tmp")
    (tmp_path / "model.tmp").rename(tmp_path / "model.old")  # a stale .old beside a good model
    online.update([task(TEXTS[1], 0, 0, "PER", "accept")])
    online.to_disk(folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert OnlineTagger.from_disk(folder).n_answers == 2
    (tmp_path / "model.tmp").mkdir()  # a half-written .tmp (no manifest) is dropped, not promoted
    (tmp_path / "model.tmp" / "tagger.json").write_text("{}")
    assert OnlineTagger.saved_at(folder) and not (tmp_path / "model.tmp").exists()
    assert not OnlineTagger.saved_at(tmp_path / "nothing")


def test_exported_model_loads_and_a_foreign_folder_is_not_replaced(tmp_path):
    from sparse_ner.core.export import export

    online = make_online()
    export(online.tagger, tmp_path / "exported")
    assert OnlineTagger.saved_at(tmp_path / "exported")
    restored = OnlineTagger.from_disk(tmp_path / "exported")
    assert restored.n_answers == 0 and restored.memory == {}
    restored.to_disk(tmp_path / "exported")
    assert (tmp_path / "exported" / "online" / "complete").exists()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a saved model"):
        online.to_disk(tmp_path / "notes")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"


# -- malformed answers ---------------------------------------------------------------------------


def test_malformed_answers_are_skipped_counted_and_the_rest_learned(tmp_path, caplog):
    online = make_online(steps=1)
    good = [task(TEXTS[0], 3, 3, "LOC", "accept"), task(TEXTS[1], 0, 0, "PER", "accept"),
            task(TEXTS[2], 0, 0, "LOC", "reject")]  # fmt: skip
    base = task(TEXTS[3], 0, 0, "PER", "accept")
    no_answer = {k: v for k, v in base.items() if k != "answer"}
    outside = {**base, "spans": [{"start": 0, "end": 999, "label": "PER"}]}
    bad = [
        ({**base, "spans": None}, "missing_field"),
        ({**base, "spans": 5}, "missing_field"),
        ("not a task", "malformed_json"),
        (["a", "list"], "malformed_json"),
        ({**base, "meta": "a string"}, "missing_field"),
        (task(TEXTS[3], 0, 0, "ORG", "accept"), "unknown_label"),
        (outside, "span_outside_text"),
        (no_answer, "missing_field"),
        ({**base, "meta": {"ids": {1, 2}}}, "malformed_json"),  # to_disk could not write it
        ({**base, "answer": "ignore", "spans": None}, "missing_field"),
    ]
    ignored = task(TEXTS[3], 0, 0, "PER", "ignore")  # valid: stored, not learned
    batch = [bad[0][0], good[0], *[b for b, _ in bad[1:5]], good[1], *[b for b, _ in bad[5:]], good[2], ignored]
    with caplog.at_level(logging.WARNING, logger="sparse_ner.loop.memory"):
        loss = online.update(batch)
    assert isinstance(loss, float) and math.isfinite(loss) and loss > 0
    expected = Counter(reason for _, reason in bad)
    assert online.skipped == expected
    assert [i for i, _ in online.last_skipped] == [i for i, b in enumerate(batch) if b not in good and b is not ignored]
    assert [r for _, r in online.last_skipped] == [r for b, r in sorted(bad, key=lambda x: batch.index(x[0]))]
    assert len(caplog.records) == len(bad) and all(REASONS[r] in m for m, (_, r) in
                                                   zip(caplog.messages, sorted(bad, key=lambda x: batch.index(x[0]))))
    assert online.n_answers == 4 and len(online.examples) == 3 and len(online.memory) == 4
    folder = online.to_disk(tmp_path / "model")
    restored = OnlineTagger.from_disk(folder)
    assert restored.memory == online.memory and restored.skipped == expected and restored.last_skipped == []
    assert math.isfinite(restored.update([good[0]]))
    assert restored.update(["junk"]) == 0.0 and restored.last_skipped == [(0, "malformed_json")]


def test_bad_lines_of_a_saved_answer_file_are_skipped(tmp_path, caplog):
    online = make_online(steps=1)
    online.update([task(TEXTS[0], 3, 3, "LOC", "accept"), task(TEXTS[1], 0, 0, "PER", "accept")])
    folder = online.to_disk(tmp_path / "model")
    answers = folder / "online" / "answers.jsonl"
    (folder / "online" / "complete").unlink()  # as an older version wrote it
    bad = {**task(TEXTS[2], 0, 0, "LOC", "accept"), "spans": None}
    with open(answers, "ab") as f:
        f.write(b"{not json\n" + b"null\n" + json.dumps(bad).encode() + b"\n" + b"\xff\xfe\n")
    with caplog.at_level(logging.WARNING, logger="sparse_ner.loop.memory"):
        restored = OnlineTagger.from_disk(folder)
    assert restored.memory == online.memory and len(restored.examples) == 2
    assert restored.skipped == Counter(malformed_json=3, missing_field=1)
    assert restored.last_skipped == [(3, "malformed_json"), (4, "malformed_json"), (5, "missing_field"),
                                     (6, "malformed_json")]  # fmt: skip
    assert len(caplog.records) == 4 and "answers.jsonl: line 5 skipped: missing_field" in caplog.messages[2]
    restored.to_disk(folder)  # the bad lines are gone, the counts stay
    again = OnlineTagger.from_disk(folder)
    assert again.last_skipped == [] and again.skipped == restored.skipped


# -- shutdown ------------------------------------------------------------------------------------

EXIT = r"""
import time
from sparse_ner.data.tokenize import tokenize
from sparse_ner.loop.online import OnlineTagger

texts = [f"Alice {i} flew to Paris today and then met Bob in Berlin on the way to Rome ." for i in range(40)]
online = OnlineTagger.from_config(["LOC", "PER"], "small", texts=texts, steps=1)
stop = online.start_idle_training(pause=0.0)
spans = [{"start": tok.start, "end": tok.end, "label": "LOC"} for tok in (tokenize(t)[4] for t in texts)]
online.update([{"text": t, "answer": "accept", "spans": [sp]} for t, sp in zip(texts[:20], spans)])
time.sleep(0.1)  # the idle thread is inside a consolidate() step now
stop.set()  # and exit at once
"""


def test_exit_right_after_stopping_idle_training_never_aborts():
    procs = [subprocess.Popen([sys.executable, "-c", EXIT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=ENV, cwd=ROOT) for _ in range(5)]  # fmt: skip
    results = [(p.wait(timeout=120), p.communicate()[1]) for p in procs]
    for rc, err in results:
        assert rc == 0 and "terminate called" not in err, err[-2000:]


def test_stop_idle_training_stops_and_joins():
    online = make_online()
    stop = online.start_idle_training(pause=0.0)
    assert isinstance(stop, threading.Event) and online.update_steps == 1
    online.update([task(TEXTS[0], 3, 3, "LOC", "accept")])
    threads = online.idle.threads
    assert online.stop_idle_training(timeout=10) is True
    assert stop.is_set() and not any(t.is_alive() for t in threads)
    assert online.update_steps == 2 and online.idle.threads == [] and not online.idle.running
    assert online.stop_idle_training() is True  # nothing running: returns at once


# -- bf16 detection (found while re-measuring update(): BENCHMARKS.md, session 4) ----------------


def test_cpu_bf16_only_with_native_instructions():
    from sparse_ner.loop.learner import bf16_supported

    onednn = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    cpu = torch.device("cpu")
    assert bf16_supported(cpu, lambda: {"avx2", "avx512f", "avx512bw"}) is False  # oneDNN would emulate it
    assert bf16_supported(cpu, lambda: {"avx512f", "avx512bw", "avx512_bf16"}) is onednn
    assert bf16_supported(cpu, lambda: None) is onednn  # flags unknown: oneDNN's answer
