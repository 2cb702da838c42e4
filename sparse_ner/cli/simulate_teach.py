"""``sparse-ner simulate-teach GOLD -o OUT.jsonl [--encoding iob1] [--seed 0]`` (``OUT.jsonl`` may also be given second).

Parses and calls :func:`sparse_ner.data.simulate_teach.simulate_teach_file`: simulated ``ner.teach``
answers (Prodigy db-out) for a gold corpus.
"""

from __future__ import annotations

import argparse
import sys

from sparse_ner.cli.convert import one_output


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sparse-ner simulate-teach",
                                description="Simulate ner.teach answers from a gold corpus, in Prodigy db-out format.")  # fmt: skip
    p.add_argument("gold", help="gold column file, or db-out .jsonl of complete annotations")
    p.add_argument("output_positional", nargs="?", help=argparse.SUPPRESS)
    p.add_argument("-o", "--output", help="output .jsonl, or - for stdout")
    p.add_argument("--encoding", default="iob1", help="tag encoding of a column file (default iob1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--accept-rate", type=float, default=0.5)
    p.add_argument("--more-rate", type=float, default=0.3)
    p.add_argument("--ignore-rate", type=float, default=0.02)
    p.add_argument("--source", help="meta.source (default: the gold file's name)")
    args = p.parse_args(argv)
    args.output = one_output(p, args)

    from sparse_ner.data.simulate_teach import simulate_teach_file

    simulate_teach_file(args.gold, args.output, encoding=args.encoding, seed=args.seed, accept_rate=args.accept_rate,
                        more_rate=args.more_rate, ignore_rate=args.ignore_rate, source=args.source)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
