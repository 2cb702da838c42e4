"""The peer: spaCy's NER trained the way Prodigy trains it from binary answers, and two variants.

    python scripts/spacy_peer.py --train TEACH.jsonl --dev DEV --test TEST --mode binary --out RESULT.json

Modes:

- ``binary``: Prodigy's binary training. Accepted spans are entities, every other token is *missing*
  (``Doc.set_ents(..., default="missing")``), and rejected spans go into the span group named by the
  NER component's ``incorrect_spans_key``.
- ``as_o``: the naive way: accepted spans are entities and every other token is ``O``.
- ``gold``: complete gold annotations (the TRAIN file holds them); the ceiling.

spaCy runs with its documented defaults (``spacy init config --pipeline ner``): a blank pipeline of the
language, the default ``ner`` model (HashEmbedCNN tok2vec + transition-based parser), Adam at
0.001, dropout 0.1, batches by words compounding from 100 to 1000, the best epoch on dev F1 kept,
stopping after ``--patience`` epochs without improvement. When spaCy's oracle refuses a batch
(error E024, "could not find an optimal move", which some binary examples trigger), the batch is
retried one example at a time and the refused examples are skipped and counted (``e024_skipped``). Scored with ``sparse_ner.metrics.EntityF1``
on the gold tokens, exactly like our rows.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path

INCORRECT_KEY = "incorrect_spans"


def to_docs(nlp, examples, mode: str):
    from spacy.tokens import Doc, Span
    from spacy.training import Example

    out = []
    for ex in examples:
        words = ex.words
        spaces = [t.ws for t in ex.tokens]
        ref = Doc(nlp.vocab, words=words, spaces=spaces)
        ents = [Span(ref, s.token_start, s.token_end + 1, label=s.label) for s in ex.accepted]
        complete = mode in ("as_o", "gold") or ex.complete
        ref.set_ents(ents, default="outside" if complete else "missing")
        if mode == "binary":
            ref.spans[INCORRECT_KEY] = [Span(ref, s.token_start, s.token_end + 1, label=s.label) for s in ex.rejected]
        out.append(Example(Doc(nlp.vocab, words=words, spaces=spaces), ref))
    return out


def score(nlp, examples, labels) -> dict[str, float]:
    from spacy.tokens import Doc

    from sparse_ner.core.metrics import EntityF1

    metric = EntityF1(labels)
    docs = [Doc(nlp.vocab, words=ex.words, spaces=[t.ws for t in ex.tokens]) for ex in examples]
    preds = []
    for doc in nlp.pipe(docs, batch_size=256):
        preds.append([(e.start, e.end - 1, e.label_) for e in doc.ents if e.label_ in labels])
    metric.update(preds, [[s.key for s in ex.accepted] for ex in examples])
    return {k: float(v) for k, v in metric.compute().items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", required=True)
    ap.add_argument("--dev", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--encoding", default="iob1", help="encoding of dev/test column files")
    ap.add_argument("--mode", choices=["binary", "as_o", "gold"], required=True)
    ap.add_argument("--max-tasks", type=int, default=None)
    ap.add_argument("--labels", nargs="+", required=True)
    ap.add_argument("--lang", default="en")
    ap.add_argument("--max-epochs", type=int, default=30)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    import spacy
    from spacy.training.batchers import minibatch_by_words
    from spacy.util import fix_random_seed
    from thinc.api import compounding

    from sparse_ner.data.read import read_any

    t0 = time.perf_counter()
    fix_random_seed(args.seed)
    random.seed(args.seed)
    train = read_any(args.train, gold=args.mode == "gold", max_records=args.max_tasks, labels=args.labels,
                     column_encoding=args.encoding, name="train")
    dev = read_any(args.dev, gold=True, column_encoding=args.encoding, labels=args.labels, name="dev")
    test = read_any(args.test, gold=True, column_encoding=args.encoding, labels=args.labels, name="test")

    nlp = spacy.blank(args.lang)
    ner = nlp.add_pipe("ner", config={"incorrect_spans_key": INCORRECT_KEY} if args.mode == "binary" else {})
    for label in args.labels:
        ner.add_label(label)
    train_examples = to_docs(nlp, train, args.mode)
    optimizer = nlp.initialize(lambda: train_examples)
    best, best_f1, bad = None, -1.0, 0
    unsupervisable = 0  # example-updates spaCy refused with E024 (summed over epochs)
    for epoch in range(args.max_epochs):
        random.shuffle(train_examples)
        losses: dict[str, float] = {}
        for batch in minibatch_by_words(train_examples, size=compounding(100.0, 1000.0, 1.001)):
            try:
                nlp.update(batch, sgd=optimizer, drop=0.1, losses=losses)
            except ValueError as err:  # E024: spaCy's oracle finds no move for some binary example
                if "E024" not in str(err):
                    raise
                for one in batch:  # update one by one; count (and skip) the examples spaCy cannot take
                    try:
                        nlp.update([one], sgd=optimizer, drop=0.1, losses=losses)
                    except ValueError as err1:
                        if "E024" not in str(err1):
                            raise
                        unsupervisable += 1
        dev_f1 = score(nlp, dev, args.labels)["f1"]
        print(f"epoch {epoch}: loss {losses.get('ner', 0):.1f} dev F1 {dev_f1:.4f}", file=sys.stderr, flush=True)
        if dev_f1 > best_f1:
            best_f1, best, bad = dev_f1, nlp.to_bytes(), 0
        else:
            bad += 1
            if bad >= args.patience:
                break
    nlp.from_bytes(best)
    train_time = time.perf_counter() - t0
    result = score(nlp, test, args.labels)
    result.update(dev_f1=best_f1, train_seconds=train_time, epochs=epoch + 1, e024_skipped=unsupervisable,
                  peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
