"""Tag texts with an exported model: :func:`predict_tasks` on task dicts, :func:`predict_file` on files.

``python -m sparse_ner.predict MODEL INPUT.jsonl -o OUT.jsonl`` (``-`` is stdin / stdout;
:mod:`sparse_ner.cli.predict`) runs :func:`predict_file`. Each input
line is a task with ``text`` (db-out records or ``{"text": ...}``); given ``tokens`` are kept, else
the default tokenizer (:func:`sparse_ner.data.tokenize.tokenize`) makes them. Each task is written
back with ``tokens`` and the predicted ``spans``: character ``start``/``end``, ``token_start`` /
``token_end`` (inclusive), ``label`` and ``score``, the model's exact probability that the span is an
entity (:meth:`sparse_ner.core.crf.CRF.span_probs`). Lines are read and written in batches (streaming).
"""

from __future__ import annotations

import itertools
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

from sparse_ner.data.example import Example
from sparse_ner.data.hashes import set_hashes
from sparse_ner.data.io import DataError, read_jsonl, write_jsonl
from sparse_ner.data.prodigy import parse_tokens
from sparse_ner.core.tagger import Tagger


ANSWER_KEYS = ("answer", "_view_id", "_session_id", "_annotator_id", "_timestamp", "_task_hash", "flagged")
log = logging.getLogger(__name__)


def predict_tasks(tagger: Tagger, tasks: Iterable[dict[str, Any]], batch_size: int = 64, source: str = "<input>",
                  on_error: Literal["raise", "skip"] = "raise", skipped: Counter | None = None,
                  ) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Yield each task with ``tokens`` and predicted ``spans`` (streams, ``batch_size`` at a time).

    Predictions are not annotations: the answer keys (``answer``, ``_view_id``, session and
    annotator ids) and the old ``_task_hash`` are dropped and the task is hashed anew (its
    ``_input_hash`` is kept). ``tasks`` may be ``(line_number, task)`` pairs (as
    :func:`~sparse_ner.data.io.read_jsonl` yields them) so that errors name the real line. A task
    that cannot be tagged raises :class:`~sparse_ner.data.io.DataError`, or with ``on_error="skip"``
    is logged with its line, counted in ``skipped`` and left out.
    """
    numbered = iter((t if isinstance(t, tuple) else (n, t)) for n, t in enumerate(tasks, start=1))
    while batch := list(itertools.islice(numbered, batch_size)):
        parsed = []
        for n, t in batch:
            try:
                if not isinstance(t, dict):
                    raise DataError(f"{source}:{n}: not a JSON object")
                parsed.append((t, Example(t["text"], parse_tokens(t if t.get("tokens") else {**t, "tokens": None},
                                                                   where=f"{source}:{n}"))))  # fmt: skip
            except DataError as err:
                if on_error == "raise":
                    raise
                log.warning("skipped: %s", err)
                if skipped is not None:
                    skipped["bad_task"] += 1
        nonempty = [ex for _, ex in parsed if ex.tokens]
        preds = iter(tagger.tag(nonempty, batch_size=batch_size))
        for task, ex in parsed:
            spans = next(preds) if ex.tokens else []
            out = {k: v for k, v in task.items() if k not in ANSWER_KEYS}
            if not task.get("tokens"):
                out["tokens"] = [{"text": t.text, "start": t.start, "end": t.end, "id": i, "ws": t.ws}
                                 for i, t in enumerate(ex.tokens)]  # fmt: skip
            out["spans"] = [
                {"start": ex.tokens[s.start].start, "end": ex.tokens[s.end].end, "token_start": s.start,
                 "token_end": s.end, "label": s.label, "score": round(s.score, 6)}  # fmt: skip
                for s in spans
            ]
            in_hash = task.get("_input_hash")
            set_hashes(out, overwrite=True)
            if isinstance(in_hash, int) and not isinstance(in_hash, bool):
                out["_input_hash"] = in_hash
            yield out


def predict_file(model: str | Path, input: str | Path, output: str | Path = "-", batch_size: int = 64,
                 device: str = "cpu", progress: bool = False) -> int:  # fmt: skip
    """Tag the JSONL tasks of ``input`` with the exported ``model``, streaming them to ``output``
    (``-``: stdin / stdout); return how many were written. ``progress``: a progress bar on stderr."""
    from sparse_ner.core.export import load

    tagger = load(model, device=device)
    tasks: Iterable[Any] = read_jsonl(input)  # (line number, task): errors name the real line
    if progress:
        from tqdm import tqdm

        tasks = tqdm(tasks, unit=" tasks", desc="predict", file=sys.stderr)
    skipped: Counter = Counter()
    n = write_jsonl(predict_tasks(tagger, tasks, batch_size, source=str(input), on_error="skip", skipped=skipped),
                    output, inputs=[input])  # fmt: skip
    if skipped:
        print(f"predict: {n} tasks written, {sum(skipped.values())} skipped (see the warnings above)", file=sys.stderr)
    return n
