"""Wall time of ``sparse-ner SUB --help`` for every subcommand (issue 12's target: under 1 s).

    python scripts/bench_cli_help.py [--rounds 5]

Each round starts a fresh ``python -m sparse_ner SUB --help`` process per subcommand (interpreter start
included, as a person typing it sees it) and times it with ``time.perf_counter``; the median and the
slowest round are printed per subcommand as a Markdown table. What keeps it fast is that the help path
imports no torch, Lightning, transformers or spaCy: ``tests/test_cli_help.py`` checks that part (a
timed assertion belongs here, not in the tests).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="fresh processes per subcommand (default 5)")
    args = ap.parse_args(argv)

    from sparse_ner.cli import SUBCOMMANDS

    times: dict[str, list[float]] = {name: [] for name in SUBCOMMANDS}
    for _ in range(args.rounds):
        for name in SUBCOMMANDS:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "sparse_ner", name, "--help"], capture_output=True, check=True,
                           cwd=ROOT)  # fmt: skip
            times[name].append(time.perf_counter() - start)
    print("| subcommand | median s | slowest s |\n|---|---:|---:|")
    for name, ts in times.items():
        print(f"| `{name} --help` | {statistics.median(ts):.2f} | {max(ts):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
