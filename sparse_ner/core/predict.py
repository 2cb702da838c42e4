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
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator

from sparse_ner.data.example import Example
from sparse_ner.data.io import read_jsonl, write_jsonl
from sparse_ner.data.prodigy import parse_tokens
from sparse_ner.core.tagger import Tagger


def predict_tasks(tagger: Tagger, tasks: Iterable[dict[str, Any]], batch_size: int = 64,
                  source: str = "<input>") -> Iterator[dict[str, Any]]:  # fmt: skip
    """Yield each task with ``tokens`` and predicted ``spans`` (streams, ``batch_size`` at a time)."""
    numbered = iter(enumerate(tasks, start=1))
    while batch := list(itertools.islice(numbered, batch_size)):
        examples = [Example(t["text"], parse_tokens(t if t.get("tokens") else {**t, "tokens": None}, where=f"{source}:{n}"))
                    for n, t in batch]  # fmt: skip
        nonempty = [ex for ex in examples if ex.tokens]
        preds = iter(tagger.tag(nonempty, batch_size=batch_size))
        for (_, task), ex in zip(batch, examples):
            spans = next(preds) if ex.tokens else []
            out = dict(task)
            if not task.get("tokens"):
                out["tokens"] = [{"text": t.text, "start": t.start, "end": t.end, "id": i, "ws": t.ws}
                                 for i, t in enumerate(ex.tokens)]  # fmt: skip
            out["spans"] = [
                {"start": ex.tokens[s.start].start, "end": ex.tokens[s.end].end, "token_start": s.start,
                 "token_end": s.end, "label": s.label, "score": round(s.score, 6)}  # fmt: skip
                for s in spans
            ]
            yield out


def predict_file(model: str | Path, input: str | Path, output: str | Path = "-", batch_size: int = 64,
                 device: str = "cpu", progress: bool = False) -> int:  # fmt: skip
    """Tag the JSONL tasks of ``input`` with the exported ``model``, streaming them to ``output``
    (``-``: stdin / stdout); return how many were written. ``progress``: a progress bar on stderr."""
    from sparse_ner.core.export import load

    tagger = load(model, device=device)
    tasks: Iterable[dict[str, Any]] = (record for _, record in read_jsonl(input))
    if progress:
        from tqdm import tqdm

        tasks = tqdm(tasks, unit=" tasks", desc="predict", file=sys.stderr)
    return write_jsonl(predict_tasks(tagger, tasks, batch_size, source=str(input)), output, inputs=[input])
