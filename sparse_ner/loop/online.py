"""A tagger in the annotation loop: learn from each batch of answers, score the stream, save it all.

:class:`OnlineTagger` wraps a :class:`~sparse_ner.core.tagger.Tagger` (from :func:`sparse_ner.load`, or
built cold from labels and an encoder name with :meth:`OnlineTagger.from_config`) and implements
the two callbacks of a Prodigy recipe:

``update(answers) -> loss``
    Answered task dicts (``accept`` / ``reject`` / ``ignore``; binary ``ner`` or complete
    ``ner_manual``) are added to an answer memory keyed by ``_input_hash`` and merged per text with
    every earlier answer by :func:`sparse_ner.data.prodigy.merge_records` (the rules of
    ``read_examples``). Then ``steps`` optimizer steps each train on the texts just answered plus a
    fresh random ``replay`` sample of earlier texts, so the model neither forgets nor overfits one
    batch. A reject teaches through the exact partial-label loss: the rejected span is removed
    from the consistent set, nothing else is assumed. Returns the mean loss.

``__call__(stream)``
    Yields ``(score, task)``: one task per suggested span (``spans`` holds that one span).
    ``meta.score`` is the model's exact probability that the span is an entity (CRF marginals);
    ``score``, what sorters sort by, is that probability calibrated to the chance of an accept
    (``calibrate``, default on: a Platt scaling fitted in each ``update()`` to the answers to this
    object's own suggestions, :mod:`sparse_ner.loop.calibration`; also in ``meta.calibrated``).
    Suggestions are the spans with a start marginal of at least ``threshold``
    (:func:`sparse_ner.loop.selection.candidate_spans`). Pattern matches (:mod:`sparse_ner.loop.patterns`)
    are offered as tasks with ``meta.pattern``; while the model is cold their ``score`` is pulled to
    0.5 (uncertain, so sorters show them), moving to the model's probability over the first
    ``pattern_warmup`` answers; a pattern whose answers are mostly rejects (precision below
    ``min_pattern_precision`` after 5 answers) is no longer offered. Spans already answered are not
    asked again. Texts are scored ``batch_size`` at a time, sorted by length.

Threads
    One lock guards the parameters: ``update`` holds it while training, scoring holds it while one
    batch is scored, so Prodigy may call ``update`` from its web thread while the stream runs.

Saving
    ``to_disk(folder)`` writes the exported model (the format ``sparse_ner.load`` and ``python -m
    sparse_ner.predict`` read) plus ``online/``: the answer memory (``answers.jsonl``), patterns,
    options and counts (``state.json``) and the optimizer state; ``from_disk`` restores all of it.
    A save survives a kill at any point: everything is written and fsynced into ``FOLDER.tmp``, a
    manifest ``online/complete`` (every file and its size) is written last, then ``FOLDER`` is
    moved to ``FOLDER.old``, ``FOLDER.tmp`` to ``FOLDER``, and ``FOLDER.old`` is removed (always by
    renaming it to ``FOLDER.trash-*`` first). Before each save and load a recovery step finishes or
    undoes what a killed save left: a complete ``.tmp`` is promoted, else a complete ``.old`` when
    ``FOLDER`` is gone, and leftovers are removed. :meth:`OnlineTagger.saved_at` says whether a
    loadable model is there. A ``.tmp`` counts as complete only with its manifest; ``FOLDER`` and
    ``.old``, only ever made by renaming a complete ``.tmp`` (or by an export, or an older version),
    when they have ``tagger.json`` and weights. One process saves a folder at a time.

Malformed answers
    ``update()`` checks each answer before storing it, with the reader's checks
    (:mod:`sparse_ner.data.prodigy`): an answer the reader could never use (not a JSON-able dict,
    a missing or mistyped field, a span outside the text, an unknown label, ...; ignored answers
    and rejected manual ones are valid and kept) is skipped, logged on one line and counted by
    the reader's reason name in ``skipped`` (``last_skipped``: ``(index, reason)`` of the last
    call); the rest of the batch is learned. ``from_disk`` skips bad lines of ``answers.jsonl`` the
    same way (``last_skipped`` holds their line numbers).

Shutdown
    ``stop_idle_training()`` stops and joins the idle-training threads; an ``atexit`` handler
    does it for every model, so the interpreter never exits while a thread is inside torch (which
    aborted the process: "terminate called without an active exception").

Vocabulary (small encoder)
    A cold small encoder's word vocabulary is built from the texts given to :meth:`from_config`
    (give the whole stream, or a word list, up front). Words not seen there map to ``<unk>``; their
    characters and shape still reach the model through the char CNN and shape features.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import json
import logging
import os
import random
import shutil
import threading
import time
import uuid
import weakref
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import torch

from sparse_ner.loop.calibration import PlattCalibrator
from sparse_ner.data.example import Example, Token
from sparse_ner.data.hashes import record_key, set_hashes
from sparse_ner.data.prodigy import merge_records, span_dict, token_dicts
from sparse_ner.data.tokenize import tokenize
from sparse_ner.data.prodigy import MANUAL_VIEWS, REASONS, ReadStats, _is_int, _parse  # the reader's checks
from sparse_ner.core.tagger import Tagger, make_batch
from sparse_ner.loop.patterns import Pattern, PatternMatcher
from sparse_ner.loop.selection import candidate_spans

STATE_DIR = "online"
DEFAULTS: dict[str, Any] = {
    "lr": 2e-3,  # head (and small encoder) learning rate
    "encoder_lr": None,  # None: lr for the small encoder, 5e-5 for a transformer
    "train_layers": 2,  # transformers: fine-tune only the top N layers in update() (None: all)
    "bf16": None,  # run the encoder under bfloat16 autocast (None: transformers, where the CPU/GPU has bf16)
    "steps": None,  # optimizer steps per update() call; None: 1 while the idle-training thread runs, else 2
    "replay": 10,  # earlier texts mixed into each step
    "steps_texts": 20,  # texts per consolidate() step (idle-time training on the answer memory)
    "idle_steps": 9,  # consolidate() steps the idle-training thread takes after each update()
    "batch_size": 64,  # texts scored at once
    "threshold": 0.1,  # start-tag marginal for a span to be suggested
    "max_len": 8,  # longest suggested span, in tokens
    "max_suggestions": 5,  # model suggestions per text (most probable start first), besides patterns
    "pattern_warmup": 200,  # answers over which pattern scores move from 0.5 to the model's
    "min_pattern_precision": 0.2,
    "grad_clip": 5.0,
    "calibrate": True,  # stream scores through a Platt calibration fitted to the answers (sparse_ner.calibration)
    "calibration_window": 500,  # answered model suggestions it is fitted to (the most recent)
    "seed": 0,
}
OFFERED_MAX = 100_000  # model probabilities of offered tasks kept for calibration, by task hash
KEPT_REASONS = ("ignored_answer", "rejected_manual_answer")  # valid answers the reader does not use
IDLE_JOIN_TIMEOUT = 10.0  # seconds the atexit handler waits for each idle-training thread
logger = logging.getLogger(__name__)

# -- crash-safe saving (module docstring, "Saving") ------------------------------------------------

COMPLETE = "complete"  # the manifest in online/, written last
SAVE_STAGES = ("recovered", "model_written", "answers_written", "state_written", "synced", "tmp_written",
               "old_renamed", "tmp_renamed", "old_removed", "trash_renamed")  # fmt: skip
_save_hook: Any = None  # tests: called with each stage of SAVE_STAGES as a save reaches it
_SAVE_LOCK = threading.RLock()  # one save or recovery at a time in this process


def _stage(name: str) -> None:
    if _save_hook is not None:
        _save_hook(name)


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
    _stage("synced")
    marker = folder / STATE_DIR / COMPLETE
    marker.write_text(json.dumps({"files": files}, indent=1) + "\n", encoding="utf8")
    _fsync(marker)
    _fsync(marker.parent)


def _complete(folder: Path, need_manifest: bool = False) -> bool:
    """Whether ``folder`` holds a whole saved model.

    A ``.tmp`` folder may be half written (``need_manifest``): it needs its manifest, with every
    file listed there at its size. ``FOLDER`` and ``.old`` are only ever made by renaming a complete
    ``.tmp`` (or by an export): ``tagger.json`` and weights suffice (so a hand-edited or older
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
    _stage("trash_renamed")
    shutil.rmtree(trash, ignore_errors=True)


def _recover(folder: Path) -> None:
    """Finish or undo what a killed save of ``folder`` left (module docstring, "Saving")."""
    tmp, old = folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")
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


def _json_or_none(line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError:  # UnicodeDecodeError included
        return None  # counted as malformed_json by OnlineTagger._check


_IDLE_OWNERS: "weakref.WeakSet[OnlineTagger]" = weakref.WeakSet()  # models that started idle training


@atexit.register
def _stop_idle_threads() -> None:
    """At interpreter exit, stop and join every idle-training thread: a daemon thread still inside
    torch when the interpreter finalizes aborts the process."""
    for online in list(_IDLE_OWNERS):
        online.stop_idle_training(IDLE_JOIN_TIMEOUT)


def _cpu_flags() -> set[str] | None:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``), or None where they cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf8") as f:
            return next((set(line.split(":", 1)[1].split()) for line in f if line.startswith("flags")), None)
    except OSError:
        return None


def bf16_supported(device: torch.device) -> bool:
    """Whether bfloat16 matrix products are fast here: bf16 on the GPU; on CPU, oneDNN bf16 with
    native instructions (AVX512-BF16 or AMX). oneDNN also reports bf16 on AVX512 CPUs without them,
    where it emulates bf16: MiniLM-L6 update() measured 3.4x slower than float32 (BENCHMARKS.md)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        onednn = device.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
    flags = _cpu_flags()
    return onednn and (flags is None or bool(flags & {"avx512_bf16", "amx_bf16"}))


def _words_of(item: Any) -> list[str]:
    if isinstance(item, dict):
        if item.get("tokens"):
            return [t["text"] for t in item["tokens"]]
        return [t.text for t in tokenize(item.get("text", ""))]
    if isinstance(item, str):
        return [t.text for t in tokenize(item)]
    return list(item)


def _tokens_of(task: dict) -> list[Token]:
    text = task["text"]
    if task.get("tokens"):
        return [Token(t.get("text", text[t["start"]:t["end"]]), t["start"], t["end"], bool(t.get("ws", True)))
                for t in task["tokens"]]  # fmt: skip
    return tokenize(text)


class OnlineTagger:
    """A :class:`Tagger` with an answer memory, an optimizer and a stream scorer (module docstring)."""

    def __init__(self, tagger: Tagger, patterns: Iterable[Pattern | dict] | None = None, **options: Any):
        unknown = set(options) - set(DEFAULTS)
        if unknown:
            raise TypeError(f"unknown options {sorted(unknown)}; expected some of {sorted(DEFAULTS)}")
        self.options = {**DEFAULTS, **options}
        from sparse_ner.core.encoders import TransformerEncoder

        self.tagger = tagger.eval()
        transformer = isinstance(tagger.encoder, TransformerEncoder)
        if transformer:  # cheap updates of its top layers
            tagger.encoder.set_trainable(self.options["train_layers"])
        self.labels = list(tagger.labels)
        self.matcher = PatternMatcher(patterns, self.labels) if patterns else None
        self.memory: dict[int, list[dict]] = {}  # input hash -> answered records, in answer order
        self.examples: dict[int, Example] = {}  # input hash -> the merged example
        self._features: dict[int, dict] = {}  # input hash -> encoder.featurize(words), for replay
        self.asked: set[tuple[int, int, int, str]] = set()  # (input hash, start, end, label) answered
        self.pattern_counts: dict[str, Counter] = {}  # pattern id -> {"accept": n, "reject": n}
        self.n_answers = 0
        self.n_updates = 0
        self._rng = random.Random(self.options["seed"])
        self._lock = threading.RLock()
        self._idle_budget = 0  # consolidate() steps the idle-training thread may still take
        self._answered = threading.Event()  # set by update(): wakes the idle-training thread
        self._idle_threads = 0  # idle-training threads running
        self._idle_runs: list[tuple[threading.Thread, threading.Event]] = []  # (thread, its stop event)
        self.skipped: Counter = Counter()  # reason (REASONS of data.prodigy) -> malformed answers skipped
        self.last_skipped: list[tuple[int, str]] = []  # (index in the batch / line, reason) of the last call
        self.calibrator = PlattCalibrator(self.options["calibration_window"])
        self._offered: OrderedDict[int, float] = OrderedDict()  # task hash -> model probability when offered
        self.optimizer = self._make_optimizer()
        self.bf16 = self.options["bf16"]
        if self.bf16 is None:
            self.bf16 = transformer and bf16_supported(tagger.emit.weight.device)

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def from_config(cls, labels: Sequence[str], encoder: str = "small", texts: Iterable[Any] | None = None,
                    encoder_options: dict | None = None, scheme: str = "bio", tagger_options: dict | None = None,
                    patterns: Iterable[Pattern | dict] | None = None, entity_prior: float = 0.15,
                    **options: Any) -> "OnlineTagger":  # fmt: skip
        """A cold model: ``encoder`` is ``"small"``, ``"minilm"`` or a Hugging Face folder.

        The output layer starts biased so that a share ``entity_prior`` of tokens is in an entity
        (instead of a uniform guess, which would suggest a span at nearly every token).
        ``texts`` (strings, word lists or task dicts) build the small encoder's vocabulary; the
        words of phrase patterns are added. Words outside it map to ``<unk>`` later.
        """
        from sparse_ner.core.encoders import build_encoder

        pats = list(patterns or [])
        vocab_words = None
        if encoder == "small":
            if texts is None:
                raise ValueError("a cold 'small' encoder needs texts (the stream or a word list) for its vocabulary")
            vocab_words = [_words_of(t) for t in texts]
            vocab_words += [_words_of(p["pattern"] if isinstance(p, dict) else p.pattern) for p in pats
                            if isinstance(p["pattern"] if isinstance(p, dict) else p.pattern, str)]  # fmt: skip
        enc_options = {"min_count": 1, **(encoder_options or {})} if encoder == "small" else dict(encoder_options or {})
        enc = build_encoder(encoder, vocab_words, **enc_options)
        tagger = Tagger(enc, labels, scheme, **(tagger_options or {}))  # type: ignore[arg-type]
        with torch.no_grad():  # start from "most tokens are O" rather than a uniform guess
            o = tagger.tags.index("O")
            k = len(tagger.tags) - 1
            tagger.emit.bias[o] += float(torch.tensor((1 - entity_prior) * k / entity_prior).log())
        return cls(tagger, patterns=pats or None, **options)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        from sparse_ner.core.encoders import SmallEncoder

        lr = self.options["lr"]
        enc_lr = self.options["encoder_lr"]
        if enc_lr is None:
            enc_lr = lr if isinstance(self.tagger.encoder, SmallEncoder) else 5e-5
        enc_params = [p for p in self.tagger.encoder.parameters() if p.requires_grad]
        enc_ids = {id(p) for p in enc_params}
        head = [p for p in self.tagger.parameters() if p.requires_grad and id(p) not in enc_ids]
        return torch.optim.AdamW([{"params": enc_params, "lr": enc_lr}, {"params": head, "lr": lr}],
                                 weight_decay=0.0, fused=True)  # fmt: skip  (fused: ~3x faster steps on CPU)

    def _autocast(self) -> Any:
        """bfloat16 autocast of the encoder when ``self.bf16`` (the CRF stays in float32)."""
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.tagger.emit.weight.device.type, dtype=torch.bfloat16)

    # -- update --------------------------------------------------------------------------------

    def _remember(self, answers: Sequence[dict]) -> list[int]:
        touched: list[int] = []
        for task in answers:
            key = record_key(task, migrate=True)  # Prodigy's hash (re-keys answers saved with the MD5 fallback)
            if task.get("_input_hash") != key:  # one key per text, in memory and in the saved answers
                task = {**task, "_input_hash": key}
            if key not in self.memory:
                self.memory[key] = []
            self.memory[key].append(task)
            if key not in touched:
                touched.append(key)
            answer = task.get("answer")
            if answer in ("accept", "reject", "ignore") and task.get("_view_id", "ner") == "ner":
                for sp in task.get("spans", []):  # answered, ignored included: never asked again
                    if "token_start" in sp and "token_end" in sp:
                        self.asked.add((key, sp["token_start"], sp["token_end"], sp.get("label", "")))
            if answer in ("accept", "reject") and task.get("_view_id", "ner") == "ner":
                pid = (task.get("meta") or {}).get("pattern")
                if pid is not None:
                    self.pattern_counts.setdefault(str(pid), Counter())[answer] += 1
                p = self._offered.pop(task.get("_task_hash"), None)
                if p is not None:  # a model suggestion (not a pattern match) this object offered
                    self.calibrator.add(p, answer == "accept")
        for key in touched:
            merged = merge_records(self.memory[key], labels=self.labels)
            if merged:
                self.examples[key] = merged[0]
                if key not in self._features:
                    self._features[key] = self.tagger.encoder.featurize(merged[0].words)
            else:
                self.examples.pop(key, None)
                self._features.pop(key, None)
        return [k for k in touched if k in self.examples]

    def _check(self, task: Any) -> str | None:
        """Why ``task`` must not be stored (a reason of ``REASONS``), or None when it may."""
        if not isinstance(task, dict):
            return "malformed_json"
        try:  # to_disk() must be able to write it back
            json.dumps(task, ensure_ascii=False).encode("utf8")
        except (TypeError, ValueError):
            return "malformed_json"
        meta, thash = task.get("meta"), task.get("_task_hash")
        if (meta is not None and not isinstance(meta, dict)) or not (thash is None or _is_int(thash)):
            return "missing_field"
        probe = task
        if task.get("answer") == "ignore" or (task.get("answer") == "reject" and task.get("_view_id") in MANUAL_VIEWS):
            probe = {**task, "answer": "accept"}  # valid but unused answers: check their fields all the same
        reason = _parse(probe, set(self.labels), tokenize, ReadStats())
        return reason if isinstance(reason, str) and reason not in KEPT_REASONS else None

    def _screen(self, records: Iterable[tuple[int, Any]], where: str) -> list[dict]:
        """The records of ``(index, record)`` that may be stored; the others are logged, counted in
        ``skipped`` and listed in ``last_skipped``."""
        kept: list[dict] = []
        self.last_skipped = []
        for i, record in records:
            reason = self._check(record)
            if reason is None:
                kept.append(record)
                continue
            self.skipped[reason] += 1
            self.last_skipped.append((i, reason))
            logger.warning("%s %d skipped: %s (%s)", where, i, reason, REASONS[reason])
        return kept

    def update(self, answers: Sequence[dict]) -> float:
        """Learn from answered tasks (Prodigy's ``update`` callback); returns the mean loss.

        Malformed answers are skipped and counted (module docstring); the rest are learned."""
        with self._lock:
            answers = self._screen(enumerate(answers), "update(): answer")
            new_keys = self._remember(answers)
            self.n_answers += len(answers)
            if self.options["calibrate"]:
                self.calibrator.fit()
            if not new_keys:
                return 0.0
            fresh = set(new_keys)
            earlier = [k for k in self.examples if k not in fresh]
            losses = []
            for _ in range(self.update_steps):
                replay = self._rng.sample(earlier, min(self.options["replay"], len(earlier)))
                losses.append(self._step(new_keys + replay))
            self.n_updates += 1
            self._idle_budget = self.options["idle_steps"]
            self._answered.set()
            return sum(losses) / len(losses)

    @property
    def update_steps(self) -> int:
        """Optimizer steps per ``update()``: ``steps``, or when it is None, 1 while an idle-training
        thread runs (its ``idle_steps`` after each update do the rest of the learning) and 2
        otherwise (measured in the simulation: BENCHMARKS.md)."""
        if self.options["steps"] is not None:
            return int(self.options["steps"])
        return 1 if self._idle_threads > 0 else 2

    def consolidate(self, steps: int = 1) -> float:
        """``steps`` optimizer steps on random samples of the answer memory; returns the mean loss.

        For the annotator's idle time: an ``update()`` must return at once, but the annotator then
        spends seconds on each question, and the model can keep learning from the answers it has
        meanwhile (``start_idle_training`` runs this in a background thread, ``idle_steps`` steps
        after each update). Each step trains on
        ``steps_texts`` texts drawn at random from every answered text. Takes the lock one step
        at a time, so scoring and ``update()`` wait for one step at most.
        """
        losses = []
        for _ in range(steps):
            with self._lock:
                keys = list(self.examples)
                if not keys:
                    break
                losses.append(self._step(self._rng.sample(keys, min(self.options["steps_texts"], len(keys)))))
        return sum(losses) / len(losses) if losses else 0.0

    def start_idle_training(self, pause: float = 0.05) -> threading.Event:
        """Run :meth:`consolidate` in a daemon thread until the returned event is set or
        :meth:`stop_idle_training` is called (which also waits for it; so does interpreter exit).

        After each ``update()`` the thread takes up to ``idle_steps`` steps, one at a time and
        ``pause`` seconds apart (so ``update()`` and scoring wait for one step at most), then sleeps
        until the next ``update()``: the same schedule as ``python -m sparse_ner.simulate`` with
        ``idle_steps``, where it was measured.
        """
        stop = threading.Event()

        def loop() -> None:
            try:
                while not stop.is_set():
                    if self._idle_budget <= 0 or not self.examples:
                        self._answered.wait(0.5)
                        self._answered.clear()
                        continue
                    self._idle_budget -= 1
                    self.consolidate(1)
                    stop.wait(pause)
            finally:
                with self._lock:
                    self._idle_threads -= 1
                    self._idle_runs = [r for r in self._idle_runs if r[0] is not threading.current_thread()]

        thread = threading.Thread(target=loop, name="sparse_ner-idle-training", daemon=True)
        with self._lock:
            self._idle_threads += 1
            self._idle_runs.append((thread, stop))
        _IDLE_OWNERS.add(self)
        thread.start()
        return stop

    def stop_idle_training(self, timeout: float | None = IDLE_JOIN_TIMEOUT) -> bool:
        """Stop this model's idle-training threads and wait for them (their step in progress) up to
        ``timeout`` seconds in all (None: as long as it takes); True when none is left running."""
        with self._lock:
            runs = list(self._idle_runs)
        for _, stop in runs:
            stop.set()
        self._answered.set()  # wake the threads that wait for an update
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread, _ in runs:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread, _ in runs)

    def _step(self, keys: list[int]) -> float:
        """One optimizer step on the answered texts ``keys``; returns its loss."""
        tagger = self.tagger
        tagger.train()
        try:
            batch = make_batch(tagger.encoder, [self.examples[k] for k in keys], tagger.tags, tagger.scheme,
                               strict_rejects=tagger.reject_prior > 0,
                               features=[self._features[k] for k in keys])  # fmt: skip
            device = tagger.emit.weight.device
            batch["inputs"] = {k: v.to(device) for k, v in batch["inputs"].items()}
            for key in ("lattice", "strict_lattice"):
                if key in batch:
                    batch[key] = batch[key].to(device)
            with self._autocast():
                loss = tagger.loss(batch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(tagger.parameters(), self.options["grad_clip"])
            self.optimizer.step()
        finally:
            tagger.eval()
        return float(loss.detach())

    # -- scoring -------------------------------------------------------------------------------

    def pattern_ok(self, pid: str) -> bool:
        """A pattern is offered until 5+ answers show a precision below ``min_pattern_precision``."""
        c = self.pattern_counts.get(pid)
        if not c or c["accept"] + c["reject"] < 5:
            return True
        return c["accept"] / (c["accept"] + c["reject"]) >= self.options["min_pattern_precision"]

    def _score_batch(self, examples: list[Example], extra: list[list[tuple[int, int, str]]]
                     ) -> list[list[tuple[int, int, str, float]]]:  # fmt: skip
        """Candidate spans (plus ``extra`` spans) with their exact probability, per example."""
        tagger = self.tagger
        with self._lock:
            batch = make_batch(tagger.encoder, examples)
            device = tagger.emit.weight.device
            inputs = {k: v.to(device) for k, v in batch["inputs"].items()}
            mask = inputs["word_mask"]  # (B, T)
            with torch.no_grad(), self._autocast():
                emissions = tagger.emissions(inputs)  # (B, T, K) float32
            marginals = tagger.crf.marginals(emissions, mask)  # (B, T, K)
            lengths = mask.sum(1).tolist()
            cands = candidate_spans(marginals, lengths, tagger.tags, tagger.scheme, self.options["threshold"],
                                    self.options["max_len"], self.options["max_suggestions"])  # fmt: skip
            for c, more in zip(cands, extra):
                c.extend(span for span in more if span not in c)
            probs = tagger.crf.span_probs(emissions, mask, cands)
        return [[(s, e, lab, p) for (s, e, lab), p in zip(c, ps)] for c, ps in zip(cands, probs)]

    def __call__(self, stream: Iterable[dict]) -> Iterator[tuple[float, dict]]:
        """``(score, task)`` for each suggested span of each text of ``stream`` (module docstring)."""
        size = self.options["batch_size"]
        buffer: list[dict] = []
        for task in stream:
            buffer.append(task)
            if len(buffer) >= size:
                yield from self._suggest(buffer)
                buffer = []
        if buffer:
            yield from self._suggest(buffer)

    def _suggest(self, tasks: list[dict]) -> Iterator[tuple[float, dict]]:
        examples = [Example(t["text"], _tokens_of(t)) for t in tasks]
        matches = [{m[:3]: m.pattern for m in self.matcher(ex.words) if self.pattern_ok(m.pattern)}
                   if self.matcher is not None and ex.tokens else {} for ex in examples]  # fmt: skip
        order = sorted((i for i, ex in enumerate(examples) if ex.tokens), key=lambda i: len(examples[i]))
        scored: dict[int, list[tuple[int, int, str, float]]] = {}
        chunk = 32
        for j in range(0, len(order), chunk):
            idx = order[j : j + chunk]
            for i, spans in zip(idx, self._score_batch([examples[i] for i in idx], [list(matches[i]) for i in idx])):
                scored[i] = spans
        warm = min(1.0, self.n_answers / max(1, self.options["pattern_warmup"]))
        for i, task in enumerate(tasks):
            if i not in scored:
                continue
            ex = examples[i]
            key = record_key(task)
            for s, e, label, p in scored[i]:
                if (key, s, e, label) in self.asked:
                    continue
                meta = dict(task.get("meta") or {})
                pid = matches[i].get((s, e, label))
                if pid is None and p < self.options["threshold"]:
                    continue
                meta["score"] = round(p, 6)  # the exact CRF probability
                score = p
                if self.options["calibrate"]:
                    score = self.calibrator(p)
                    meta["calibrated"] = round(score, 6)
                if pid is not None:
                    score = (1.0 - warm) * 0.5 + warm * score
                    meta["pattern"] = pid
                out = self._task(task, ex, key, s, e, label, meta)
                if pid is None:
                    self._remember_offer(out["_task_hash"], p)
                yield score, out

    def _remember_offer(self, key: int, p: float) -> None:
        with self._lock:
            self._offered[key] = p
            self._offered.move_to_end(key)
            if len(self._offered) > OFFERED_MAX:
                self._offered.popitem(last=False)

    @staticmethod
    def _task(task: dict, ex: Example, key: int, s: int, e: int, label: str, meta: dict) -> dict:
        from sparse_ner.data.example import Span

        spans = [span_dict(Span(ex.tokens[s].start, ex.tokens[e].end, s, e, label))]
        out = {k: v for k, v in task.items() if k not in ("spans", "answer", "_task_hash")}
        out.update(text=ex.text, tokens=task.get("tokens") or token_dicts(ex.tokens), spans=spans, meta=meta)
        set_hashes(out, overwrite=True)  # the task hash of this question (Prodigy's where installed)
        out["_input_hash"] = key
        return out

    def predict(self, tasks: Iterable[dict]) -> Iterator[dict]:
        """Each task with the model's best spans filled in (``ner_manual`` pre-annotation)."""
        from sparse_ner.core.predict import predict_tasks

        size = self.options["batch_size"]
        buffer: list[dict] = []

        def flush(items: list[dict]) -> list[dict]:
            with self._lock:
                return list(predict_tasks(self.tagger, items, batch_size=size))

        for task in tasks:
            buffer.append(task)
            if len(buffer) >= size:
                yield from flush(buffer)
                buffer = []
        if buffer:
            yield from flush(buffer)

    # -- saving --------------------------------------------------------------------------------

    def to_disk(self, folder: str | Path) -> Path:
        """Write the model (``sparse_ner.load`` format) and ``online/`` state; replaces ``folder``.

        Safe against a kill at any point (module docstring, "Saving"): ``from_disk`` then loads this
        save or the previous one, and the next save succeeds."""
        from sparse_ner.core.export import export

        folder = Path(folder)
        tmp, old = folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")
        with _SAVE_LOCK:
            _recover(folder)
            foreign = folder.is_dir() and not (folder / "tagger.json").exists() and any(folder.iterdir())
            if folder.is_file() or foreign:
                raise FileExistsError(f"{folder} exists and is not a saved model: not replacing it")
            _stage("recovered")
            with self._lock:
                export(self.tagger, tmp)
                _stage("model_written")
                state = tmp / STATE_DIR
                state.mkdir()
                with open(state / "answers.jsonl", "w", encoding="utf8") as f:
                    for records in self.memory.values():
                        for r in records:
                            f.write(json.dumps(r, ensure_ascii=False) + "\n")
                _stage("answers_written")
                info = {"options": self.options, "n_answers": self.n_answers, "n_updates": self.n_updates,
                        "pattern_counts": {k: dict(v) for k, v in self.pattern_counts.items()},
                        "calibrator": self.calibrator.state(), "skipped": dict(self.skipped)}  # fmt: skip
                (state / "state.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf8")
                if self.matcher is not None:
                    (state / "patterns.jsonl").write_text(self.matcher.to_jsonl(), encoding="utf8")
                torch.save(self.optimizer.state_dict(), state / "optimizer.pt")
                _stage("state_written")
            _seal(tmp)  # fsync, then the manifest: from here on tmp is a complete save
            _stage("tmp_written")
            if folder.exists():
                folder.rename(old)
                _fsync(folder.parent)
                _stage("old_renamed")
            tmp.rename(folder)
            _fsync(folder.parent)
            _stage("tmp_renamed")
            if old.exists():
                _discard(old, folder)
                _stage("old_removed")
        return folder

    @staticmethod
    def saved_at(folder: str | Path) -> bool:
        """Whether ``folder`` holds a model :meth:`from_disk` can load (a save or an exported model),
        after recovering from a save killed half way (module docstring, "Saving")."""
        folder = Path(folder)
        with _SAVE_LOCK:
            _recover(folder)
            return folder.is_dir() and _complete(folder)

    @classmethod
    def from_disk(cls, folder: str | Path, **options: Any) -> "OnlineTagger":
        """Restore what :meth:`to_disk` wrote; a plain exported model starts with an empty memory.

        ``options`` override the saved ones (e.g. ``lr``)."""
        from sparse_ner.core.export import load
        from sparse_ner.loop.patterns import read_patterns

        folder = Path(folder)
        with _SAVE_LOCK:
            _recover(folder)
        tagger = load(folder)
        state = folder / STATE_DIR
        info = json.loads((state / "state.json").read_text("utf8")) if (state / "state.json").exists() else {}
        patterns = read_patterns(state / "patterns.jsonl") if (state / "patterns.jsonl").exists() else None
        model = cls(tagger, patterns=patterns, **{**info.get("options", {}), **options})
        model.skipped.update(info.get("skipped", {}))
        if (state / "answers.jsonl").exists():
            with open(state / "answers.jsonl", "rb") as f:  # bytes: a line that is not UTF-8 is one bad line
                lines = [(i, _json_or_none(line)) for i, line in enumerate(f, 1) if line.strip()]
            model._remember(model._screen(lines, f"{state / 'answers.jsonl'}: line"))
        model.pattern_counts = {k: Counter(v) for k, v in info.get("pattern_counts", {}).items()}
        model.n_answers = info.get("n_answers", sum(len(v) for v in model.memory.values()))
        model.n_updates = info.get("n_updates", 0)
        if "calibrator" in info:
            model.calibrator = PlattCalibrator.from_state(info["calibrator"])
        if (state / "optimizer.pt").exists():
            model.optimizer.load_state_dict(torch.load(state / "optimizer.pt", weights_only=True))
        return model


__all__ = ["DEFAULTS", "OnlineTagger"]
