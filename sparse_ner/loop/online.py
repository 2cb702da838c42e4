"""A tagger in the annotation loop: learn from each batch of answers, score the stream, save it all.

:class:`OnlineTagger` wraps a :class:`~sparse_ner.core.tagger.Tagger` (from :func:`sparse_ner.load`, or
built cold from labels and a :class:`~sparse_ner.core.tagger.TaggerConfig` with :meth:`OnlineTagger.from_config`) and implements
the two callbacks of a Prodigy recipe over four parts, each with one job:

- ``update(answers) -> loss``: the answers are checked and stored in the answer memory
  (:mod:`sparse_ner.loop.memory`: merged per text, malformed ones skipped and counted), then the
  learner (:mod:`sparse_ner.loop.learner`) takes ``update_steps`` optimizer steps on the texts just
  answered plus a replay sample of earlier ones. Returns the mean loss.
- ``__call__(stream)``: ``(score, task)`` pairs from the suggester (:mod:`sparse_ner.loop.suggest`),
  one span per task, calibrated by the answers to its own suggestions.
- ``start_idle_training()``: the idle trainer (:mod:`sparse_ner.loop.idle`) keeps learning from the
  memory in a background thread while the annotator reads.
- ``to_disk`` / ``from_disk``: the exported model (the format ``sparse_ner.load`` reads) plus
  ``online/`` (answers, patterns, options and counts, optimizer state, and the raw weights where the
  model holds averaged ones: :mod:`sparse_ner.loop.learner`), written crash-safely
  (:mod:`sparse_ner.loop.saving`).

One lock (``lock``) guards the parameters: ``update`` holds it while training, scoring while one
batch is scored, so Prodigy may call ``update`` from its web thread while the stream runs.

A cold small encoder's word vocabulary is built from the texts given to :meth:`from_config`
(give the whole stream, or a word list, up front). Words not seen there map to ``<unk>``; their
characters and shape still reach the model through the char CNN and shape features.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from dataclasses import replace
from typing import Any, Iterable, Iterator, Mapping, Sequence

import torch

from sparse_ner.core.tagger import TaggerConfig
from sparse_ner.core.tagger import Tagger
from sparse_ner.data.io import DataError
from sparse_ner.data.prodigy import parse_tokens
from sparse_ner.data.tokenize import tokenize
from sparse_ner.loop import saving
from sparse_ner.loop.calibration import PlattCalibrator
from sparse_ner.loop.defaults import (COLD_TAGGER, DEFAULTS, ENTITY_RATIO, SHAPE_DIM, SMALL_DROPOUT,
                                       SMALL_WARM_STEPS, TRANSFORMER_DROPOUT, WARM_STEPS, WARM_TEXTS)
from sparse_ner.loop.idle import IDLE_JOIN_TIMEOUT, IdleTrainer
from sparse_ner.loop.learner import Learner
from sparse_ner.loop.memory import AnswerMemory
from sparse_ner.loop.patterns import Pattern, PatternMatcher, match_examples
from sparse_ner.loop.suggest import Suggester

LEARNER = ("lr", "encoder_lr", "train_layers", "bf16", "steps", "replay", "steps_texts", "grad_clip", "average",
           "seed")
SUGGESTER = ("threshold", "max_len", "max_suggestions", "pattern_warmup", "pattern_patience", "min_pattern_precision", "calibrate",
             "calibration_window", "batch_size")  # fmt: skip
STATE_DIR = saving.STATE_DIR
log = logging.getLogger(__name__)


def words_of(item: Any) -> list[str]:
    """The words of a vocabulary text: a task dict (its tokens, or its text tokenized where it has no
    tokens or they do not fit the text; the scorer skips such a task with a warning), a string or a word list."""
    if isinstance(item, dict):
        if item.get("tokens"):
            try:
                return [t.text for t in parse_tokens(item, where="vocabulary text")]
            except DataError:
                pass
        text = item.get("text")
        return [t.text for t in tokenize(text)] if isinstance(text, str) else []
    if isinstance(item, str):
        return [t.text for t in tokenize(item)]
    return list(item)


def cold_tagger(labels: Sequence[str], tagger: TaggerConfig | Mapping[str, Any] | str = "small",
                texts: Iterable[Any] | None = None, entity_prior: float = ENTITY_RATIO,
                patterns: Iterable[Pattern | dict] = ()) -> Tagger:  # fmt: skip
    """A new :class:`Tagger` built from ``tagger`` (a :class:`TaggerConfig`, a mapping of its options,
    or just an encoder name: ``"small"``, ``"minilm"`` or a Hugging Face folder).

    Options a mapping or a name leaves out take the loop's values (:data:`~sparse_ner.loop.defaults.COLD_TAGGER`:
    the entity-ratio penalty on; head dropout ``SMALL_DROPOUT`` or ``TRANSFORMER_DROPOUT``), the ones the
    loop simulations measured; a :class:`TaggerConfig` is taken as it is.
    The output layer starts biased so that a share ``entity_prior`` of tokens is in an entity
    (instead of a uniform guess, which would suggest a span at nearly every token).
    ``texts`` (strings, word lists or task dicts) build the small encoder's vocabulary (with
    ``min_count`` 1 unless its ``encoder_options`` say otherwise); the words of phrase ``patterns``
    are added. Words outside it map to ``<unk>`` later. A transformer also gets each word's
    capitalization shape (``shape_dim`` :data:`SHAPE_DIM` unless its ``encoder_options`` say
    otherwise): MiniLM-L6 is uncased, and with the shape the loop learns faster (BENCHMARKS.md).
    """
    if not isinstance(tagger, TaggerConfig):
        given = {"encoder": tagger} if isinstance(tagger, str) else dict(tagger or {})
        small = given.get("encoder", TaggerConfig.encoder) == "small"  # TaggerConfig's default encoder
        loop = {**COLD_TAGGER, "dropout": SMALL_DROPOUT if small else TRANSFORMER_DROPOUT}
        tagger = {**loop, **given}
    config = TaggerConfig.parse(tagger)
    vocab_words = None
    if config.encoder == "small":
        if texts is None:
            raise ValueError("a cold 'small' encoder needs texts (the stream or a word list) for its vocabulary")
        vocab_words = [words_of(t) for t in texts]
        phrases = [p["pattern"] if isinstance(p, dict) else p.pattern for p in patterns]
        vocab_words += [words_of(p) for p in phrases if isinstance(p, str)]
        config = replace(config, encoder_options={"min_count": 1, **(config.encoder_options or {})})
    else:
        config = replace(config, encoder_options={"shape_dim": SHAPE_DIM, **(config.encoder_options or {})})
    model = config.build(labels, vocab_words)
    with torch.no_grad():  # start from "most tokens are O" rather than a uniform guess
        o = model.tags.index("O")
        k = len(model.tags) - 1
        model.emit.bias[o] += float(torch.tensor((1 - entity_prior) * k / entity_prior).log())
    return model


# the options that are numbers: those with a float default, and encoder_lr (whose None stands for 1e-4)
FLOAT_OPTIONS = frozenset(k for k, v in DEFAULTS.items() if isinstance(v, float)) | {"encoder_lr"}


def _number(key: str, value: Any) -> Any:
    """A float option given as text (YAML reads ``1e-4``, without a dot, as a string) as a float;
    anything else that is not a number is refused by name."""
    if key not in FLOAT_OPTIONS or value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise TypeError(f"option {key} must be a number, got {value!r}")


class OnlineTagger:
    """A :class:`Tagger` with an answer memory, a learner, an idle trainer and a suggester (module docstring)."""

    def __init__(self, tagger: Tagger, patterns: Iterable[Pattern | dict] | None = None, **options: Any):
        unknown = set(options) - set(DEFAULTS)
        if unknown:
            raise TypeError(f"unknown options {sorted(unknown)}; expected some of {sorted(DEFAULTS)}")
        self.options = o = {**DEFAULTS, **{k: _number(k, v) for k, v in options.items()}}
        self.tagger = tagger.eval()
        self.labels = list(tagger.labels)
        self.lock = threading.RLock()
        self.n_updates = 0
        self.answers = AnswerMemory(self.labels, tagger.encoder.featurize)
        self._warned_starved: set[str] = set()  # labels already logged as starved
        self.learner = Learner(tagger, self.answers, self.lock, **{k: o[k] for k in LEARNER})
        matcher = PatternMatcher(patterns, self.labels) if patterns else None
        self.suggester = Suggester(tagger, self.answers, self.lock, self.learner.autocast, matcher,
                                   weights=self.learner.averaged_weights, **{k: o[k] for k in SUGGESTER})  # fmt: skip
        self.idle = IdleTrainer(lambda: self.consolidate(1), lambda: bool(self.answers.examples), o["idle_steps"])

    @classmethod
    def from_config(cls, labels: Sequence[str], tagger: TaggerConfig | Mapping[str, Any] | str = "small",
                    texts: Iterable[Any] | None = None, patterns: Iterable[Pattern | dict] | None = None,
                    entity_prior: float = ENTITY_RATIO, device: str | torch.device | None = None,
                    **options: Any) -> "OnlineTagger":  # fmt: skip
        """A cold model: :func:`cold_tagger` from ``tagger`` (a :class:`TaggerConfig`, a mapping of its
        options or an encoder name; the words of phrase patterns join the vocabulary), moved to
        ``device`` (None: CPU) before the loop is built on it (bf16 autocast is decided for that
        device), with the loop's ``options`` (:data:`DEFAULTS`)."""
        pats = list(patterns or [])
        model = cold_tagger(labels, tagger, texts, entity_prior, pats)
        if device is not None:
            model = model.to(device)
        return cls(model, patterns=pats or None, **options)

    # -- the parts' state, read by recipes, scripts and tests ------------------------------------

    memory = property(lambda self: self.answers.records, doc="input hash -> answered records, in answer order")
    examples = property(lambda self: self.answers.examples, doc="input hash -> the merged example")
    asked = property(lambda self: self.answers.asked, doc="(input hash, start, end, label) answered")
    pattern_counts = property(lambda self: self.answers.pattern_counts, doc="pattern id -> answer counts")
    n_answers = property(lambda self: self.answers.n_answers, doc="valid answers stored")
    skipped = property(lambda self: self.answers.skipped, doc="reason -> malformed answers skipped")
    last_skipped = property(lambda self: self.answers.last_skipped, doc="(index, reason) skipped in the last call")
    optimizer = property(lambda self: self.learner.optimizer)
    bf16 = property(lambda self: self.learner.bf16, doc="whether the encoder runs under bfloat16 autocast")
    calibrator = property(lambda self: self.suggester.calibrator)

    @property
    def matcher(self) -> PatternMatcher | None:
        return self.suggester.matcher

    @matcher.setter
    def matcher(self, matcher: PatternMatcher | None) -> None:
        self.suggester.matcher = matcher

    # -- Prodigy's callbacks ---------------------------------------------------------------------

    def update(self, answers: Sequence[dict]) -> float:
        """Learn from answered tasks (Prodigy's ``update`` callback); returns the mean loss.

        Malformed answers are skipped and counted (:mod:`sparse_ner.loop.memory`); the rest are learned."""
        with self.lock:
            answers = self.answers.screen(enumerate(answers), "update(): answer")
            keys = self.answers.add(answers)
            self.suggester.observe(answers)
            self._warn_starved()
            if not keys:
                return 0.0
            loss = self.learner.update(keys, self.update_steps)
            self.n_updates += 1
            self.idle.notify()
            return loss

    def _warn_starved(self) -> None:
        """Log once per label when the answers hardly reach it (:meth:`AnswerMemory.starved_labels`)."""
        for label in self.answers.starved_labels():
            if label not in self._warned_starved:
                self._warned_starved.add(label)
                counts = self.answers.label_counts.get(label, {})
                log.warning("%s: %d accept(s), %d reject(s) in %d answers: the questions hardly reach %s; add "
                            "patterns for it (--patterns) or annotate some texts completely (sparse_ner.correct)",
                            label, counts.get("accept", 0), counts.get("reject", 0), self.answers.n_answers, label)

    @property
    def update_steps(self) -> int:
        """Optimizer steps per ``update()``: ``steps``, or when it is None, 1 while an idle-training
        thread runs and 2 otherwise."""
        return self.learner.steps_per_update(self.idle.running)

    def __call__(self, stream: Iterable[dict]) -> Iterator[tuple[float, dict]]:
        """``(score, task)`` for each suggested span of each text of ``stream`` (:mod:`sparse_ner.loop.suggest`)."""
        return self.suggester(stream)

    def pattern_ok(self, pid: str) -> bool:
        """Whether pattern ``pid`` is still offered (5+ answers with a low precision stop it)."""
        return self.suggester.pattern_ok(pid)

    def predict(self, tasks: Iterable[dict]) -> Iterator[dict]:
        """Each task with the model's best spans filled in (``ner_manual`` pre-annotation)."""
        return self.suggester.predict(tasks)

    def warm_start(self, texts: Iterable[Any], steps: int | None = None, progress: bool | str = False) -> int:
        """A new model's first lesson, before any question: ``steps`` learner steps (None: the ``warm_steps``
        option, whose None is :data:`~sparse_ner.loop.defaults.WARM_STEPS` for a transformer and
        ``SMALL_WARM_STEPS`` for the small encoder) on the pattern matches in the first
        :data:`~sparse_ner.loop.defaults.WARM_TEXTS` of ``texts`` (task dicts, strings or word lists: the
        stream's first texts), each text's matches taken as binary accepts (:func:`match_examples`).
        Nothing enters the answer memory (the matches are still asked); the optimizer's moments and the
        weight average start afresh afterwards; ``progress``: a bar over the steps on stderr (the recipes
        show it where stderr is a terminal). Returns the number of matched texts learned from: 0 when
        there are no patterns, no matches, no steps, or answers are already in (a model that has learned
        from answers is not warm-started)."""
        from itertools import islice

        if steps is None:
            steps = self.options["warm_steps"]
        if steps is None:
            steps = WARM_STEPS if self.learner.transformer else SMALL_WARM_STEPS
        if self.matcher is None or steps < 1 or self.answers.n_answers or self.answers.examples:
            return 0
        examples = match_examples(self.matcher, (words_of(t) for t in islice(texts, WARM_TEXTS)))
        if examples:
            log.info("warm start: %d step(s) on the pattern matches of %d text(s) before the first question", steps, len(examples))
            loss = self.learner.pretrain(examples, int(steps), progress)
            log.info("warm start done (mean loss %.3f)", loss)
        return len(examples)

    # -- idle-time training ----------------------------------------------------------------------

    def consolidate(self, steps: int = 1) -> float:
        """``steps`` optimizer steps on random samples of the answer memory; returns the mean loss."""
        return self.learner.consolidate(steps)

    def start_idle_training(self, pause: float = 0.05) -> threading.Event:
        """Run :meth:`consolidate` in a daemon thread, up to ``idle_steps`` steps ``pause`` seconds
        apart after each ``update()``, until the returned event is set or :meth:`stop_idle_training`."""
        return self.idle.start(pause)

    def stop_idle_training(self, timeout: float | None = IDLE_JOIN_TIMEOUT) -> bool:
        """Stop the idle-training threads and wait up to ``timeout`` s; True when none is left running."""
        return self.idle.stop(timeout)

    # -- saving ----------------------------------------------------------------------------------

    def to_disk(self, folder: str | Path) -> Path:
        """Write the model (``sparse_ner.load`` format) and ``online/`` state; replaces ``folder``,
        safely against a kill at any point (:mod:`sparse_ner.loop.saving`)."""
        return saving.save(folder, self._write)

    def _write(self, folder: Path) -> None:
        from sparse_ner.core.export import export

        with self.lock:
            with self.learner.averaged_weights() as raw:  # the model folder holds the weights that predict
                export(self.tagger, folder)
            saving.stage("model_written")
            state = folder / STATE_DIR
            state.mkdir()
            self.answers.write(state / "answers.jsonl")
            saving.stage("answers_written")
            info = {"options": self.options, "n_updates": self.n_updates, **self.answers.state(),
                    "calibrator": self.calibrator.state()}  # fmt: skip
            (state / "state.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf8")
            if self.matcher is not None:
                (state / "patterns.jsonl").write_text(self.matcher.to_jsonl(), encoding="utf8")
            torch.save(self.optimizer.state_dict(), state / "optimizer.pt")
            if raw:  # the weights the steps continue from
                torch.save(raw, state / "raw_weights.pt")
            saving.stage("state_written")

    saved_at = staticmethod(saving.saved_at)

    @classmethod
    def from_disk(cls, folder: str | Path, device: str | torch.device | None = None, **options: Any) -> "OnlineTagger":
        """Restore what :meth:`to_disk` wrote; a plain exported model starts with an empty memory.

        ``device``: where the model runs (None: CPU), whatever device it was saved from. ``options``
        override the saved ones (e.g. ``lr``)."""
        from sparse_ner.core.export import load
        from sparse_ner.loop.patterns import read_patterns

        state = saving.recover(folder) / STATE_DIR
        info = json.loads((state / "state.json").read_text("utf8")) if (state / "state.json").exists() else {}
        patterns = read_patterns(state / "patterns.jsonl") if (state / "patterns.jsonl").exists() else None
        model = cls(load(folder, device or "cpu"), patterns=patterns, **{**info.get("options", {}), **options})
        model.answers.load(state / "answers.jsonl", info)
        model.n_updates = info.get("n_updates", 0)
        if "calibrator" in info:
            model.suggester.calibrator = PlattCalibrator.from_state(info["calibrator"])
        if (state / "optimizer.pt").exists():
            # CPU first (a loop saved on a GPU loads anywhere); load_state_dict moves the state to the weights
            model.optimizer.load_state_dict(torch.load(state / "optimizer.pt", map_location="cpu", weights_only=True))
        if (state / "raw_weights.pt").exists():
            model.learner.restore(torch.load(state / "raw_weights.pt", map_location="cpu", weights_only=True))
        return model


__all__ = ["DEFAULTS", "OnlineTagger", "cold_tagger", "words_of"]
