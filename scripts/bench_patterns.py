"""Pattern matching time per text with many term patterns (``loop.patterns.PatternMatcher``).

    python scripts/bench_patterns.py [--terms 2000] [--rounds 3]

The ``--terms`` most frequent entity strings of CoNLL-2003 train (``../shared/data``) become token
patterns the way Prodigy's ``terms.to-patterns`` writes them (``[{"lower": word}, ...]``), and are
matched over every CoNLL-2003 test sentence; prints CPU microseconds per text for each round and the
number of matches (which must not change between versions of the matcher).
"""

from __future__ import annotations

import argparse
import collections
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "conll2003"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--terms", type=int, default=2000, help="term patterns (default 2000)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)

    from sparse_ner.loop.patterns import PatternMatcher
    from sparse_ner.loop.simulate import read_gold

    train = read_gold(DATA / "train.txt")
    counts = collections.Counter(ex.text[s.start : s.end] for ex in train for s in ex.accepted)
    terms = [t for t, _ in counts.most_common(args.terms)]
    texts = [ex.words for ex in read_gold(DATA / "test.txt") if ex.tokens]
    patterns = [{"label": "ENT", "pattern": [{"lower": w.lower()} for w in t.split()]} for t in terms]
    matcher = PatternMatcher(patterns)
    matches = sum(len(matcher(words)) for words in texts)
    for _ in range(args.rounds):
        start = time.process_time()
        for words in texts:
            matcher(words)
        took = time.process_time() - start
        print(f"{len(patterns)} token patterns, {len(texts)} texts: {1e6 * took / len(texts):.0f} us per text (CPU), "
              f"{matches} matches")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
