"""Simulate ``ner.teach`` answers from a gold corpus, in Prodigy db-out format.

For each gold (complete) text the simulator asks 1 + k binary questions, where each extra question
is added with probability ``more_rate`` (up to ``max_tasks``). Each question suggests one span and
is answered from the gold annotation, so every answer is correct:

- **accept** (probability ``accept_rate`` when the text has an entity not asked about yet): a gold
  span with its gold label.
- **reject**, one of (chosen uniformly among those possible):
  a gold span with a wrong label; a gold span with one boundary moved by one token; a span of 1-3
  tokens that is no gold entity of that label, starting preferably (``capital_bias``) at a
  capitalized token.
  A rejected span is never equal to a gold (start, end, label).
- **ignore**: with probability ``ignore_rate`` the answer of any question becomes ``ignore``.

No span is asked twice on one text. Task order is shuffled over the whole corpus, so "the first N
tasks" is a random budget. Records look like the files in ``shared/data/teach``: ``text``,
``tokens``, one span, ``meta`` (``source``, ``sentence`` index, a random ``score``), ``_input_hash``,
``_task_hash``, ``_view_id="ner"``, ``answer``, ``_session_id``, ``_annotator_id``.
:func:`simulate_teach_file` does it file to file; its command line is
``sparse-ner simulate-teach GOLD OUT.jsonl --encoding iob1 --seed 0`` (:mod:`sparse_ner.cli.simulate_teach`).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from sparse_ner.data.example import Example, Span
from sparse_ner.data.io import write_jsonl
from sparse_ner.data.prodigy import make_task, read_examples

TokenKey = tuple[int, int, str]


def _reject_candidates(ex: Example, labels: Sequence[str], gold: set[TokenKey], rng: random.Random) -> list[TokenKey]:
    """One candidate of each reject kind that is possible for this text (may be empty)."""
    n = len(ex.tokens)
    kinds: list[TokenKey] = []
    if ex.accepted:
        s = rng.choice(ex.accepted)
        wrong = [lab for lab in labels if lab != s.label]
        if wrong:
            kinds.append((s.token_start, s.token_end, rng.choice(wrong)))
        s = rng.choice(ex.accepted)
        moves = [(s.token_start + d, s.token_end) for d in (-1, 1)] + [(s.token_start, s.token_end + d) for d in (-1, 1)]
        moves = [(a, b) for a, b in moves if 0 <= a <= b < n and (a, b, s.label) not in gold]
        if moves:
            a, b = rng.choice(moves)
            kinds.append((a, b, s.label))
    return kinds


def _non_entity(ex: Example, labels: Sequence[str], gold: set[TokenKey], rng: random.Random, capital_bias: float) -> TokenKey | None:
    n = len(ex.tokens)
    caps = [i for i, t in enumerate(ex.tokens) if t.text[:1].isupper()]
    for _ in range(10):
        start = rng.choice(caps) if caps and rng.random() < capital_bias else rng.randrange(n)
        end = min(n - 1, start + rng.choice((0, 0, 1, 2)))
        key = (start, end, rng.choice(labels))
        if key not in gold:
            return key
    return None


def _task(ex: Example, key: TokenKey, answer: str, meta: dict, session: str) -> dict:
    s, e, label = key
    span = Span(ex.tokens[s].start, ex.tokens[e].end, s, e, label)
    return {**make_task(ex, [span], "ner", answer, meta), "_session_id": session, "_annotator_id": session}


def simulate_teach(
    examples: Iterable[Example],
    seed: int = 0,
    accept_rate: float = 0.5,
    more_rate: float = 0.3,
    max_tasks: int = 4,
    ignore_rate: float = 0.02,
    capital_bias: float = 0.7,
    labels: Sequence[str] | None = None,
    source: str = "gold",
    session: str | None = None,
) -> Iterator[dict]:
    """Yield shuffled simulated ``ner.teach`` db-out tasks for complete gold examples."""
    rng = random.Random(seed)
    examples = list(examples)
    for i, ex in enumerate(examples):
        if not ex.complete:
            raise ValueError(f"example {i} is not complete: simulate_teach needs gold annotations")
    if labels is None:
        labels = sorted({s.label for ex in examples for s in ex.accepted})
    if not labels:
        raise ValueError("no labels: give labels= or gold examples with entities")
    session = session or f"{source}-sim{seed}"
    tasks = []
    for i, ex in enumerate(examples):
        if not ex.tokens:
            continue
        gold = {s.key for s in ex.accepted}
        asked: set[TokenKey] = set()
        n_tasks = 1
        while n_tasks < max_tasks and rng.random() < more_rate:
            n_tasks += 1
        for _ in range(n_tasks):
            unasked = [s.key for s in ex.accepted if s.key not in asked]
            if unasked and rng.random() < accept_rate:
                key, answer = rng.choice(unasked), "accept"
            else:
                candidates = [k for k in _reject_candidates(ex, labels, gold, rng) if k not in asked]
                other = _non_entity(ex, labels, gold, rng, capital_bias)
                if other is not None and other not in asked:
                    candidates.append(other)
                if not candidates:
                    continue
                key, answer = rng.choice(candidates), "reject"
            asked.add(key)
            if rng.random() < ignore_rate:
                answer = "ignore"
            meta = {"source": source, "sentence": i, "score": round(rng.random(), 3)}
            tasks.append(_task(ex, key, answer, meta, session))
    rng.shuffle(tasks)
    yield from tasks


def simulate_teach_file(
    gold: str | Path,
    output: str | Path,
    encoding: str = "iob1",
    seed: int = 0,
    accept_rate: float = 0.5,
    more_rate: float = 0.3,
    ignore_rate: float = 0.02,
    source: str | None = None,
) -> int:
    """Simulated answers for a gold column file (in ``encoding``) or db-out ``.jsonl`` of complete
    annotations, written to ``output`` (``-``: stdout); return how many. ``source`` (``meta.source``)
    defaults to the gold file's name."""
    if Path(gold).suffix == ".jsonl":
        examples: Iterable[Example] = read_examples(gold)
    else:
        from sparse_ner.data.columns import read_columns

        examples = list(read_columns(gold, encoding))
    tasks = simulate_teach(examples, seed=seed, accept_rate=accept_rate, more_rate=more_rate,
                           ignore_rate=ignore_rate, source=source or Path(gold).stem)  # fmt: skip
    return write_jsonl(tasks, output, inputs=[gold])
