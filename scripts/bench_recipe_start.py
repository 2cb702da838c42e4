"""How long ``sparse_ner.teach`` / ``sparse_ner.correct`` take to serve their first batch from a big
source, and the peak memory of the process (the source is streamed, never held).

    OMP_NUM_THREADS=1 python scripts/bench_recipe_start.py --texts 1000000 --recipe teach

Writes a source of ``--texts`` synthetic news-like sentences (random words and names, 8-30 tokens),
then starts the recipe on a new model folder, as Prodigy would (components, then the first batch
of 10), in this process, and prints the seconds to the first batch and the peak RSS (``ru_maxrss``)
before and after.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

WORDS = ("the a of in to and for on with at by from said would after year new people government market "
         "company city team game season first last two three million percent week police officials").split()
NAMES = ("Alice Bob Carol Paris Berlin London Reuters Apple Google Madrid Smith Jones Tokyo Moscow Nairobi "
         "Chelsea Toyota Siemens Lima Oslo").split()


def write_source(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf8") as f:
        for _ in range(n):
            words = [rng.choice(NAMES) if rng.random() < 0.15 else rng.choice(WORDS)
                     for _ in range(rng.randint(8, 30))]  # fmt: skip
            f.write(json.dumps({"text": " ".join(words) + " ."}) + "\n")


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=1_000_000)
    parser.add_argument("--recipe", choices=["teach", "correct"], default="teach")
    parser.add_argument("--dir", default=None, help="work folder (default: a temporary one)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from sparse_ner.loop import recipes

    work = Path(args.dir or tempfile.mkdtemp())
    source = work / "source.jsonl"
    if not source.exists() or sum(1 for _ in open(source, encoding="utf8")) != args.texts:
        t = time.perf_counter()
        write_source(source, args.texts)
        print(f"wrote {args.texts:,} texts ({source.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f} s")
    patterns = work / "patterns.jsonl"
    patterns.write_text("".join(json.dumps({"label": "PER", "pattern": n}) + "\n" for n in NAMES[:3]))
    before = peak_mib()
    model = work / f"model_{args.recipe}_{time.time_ns()}"
    t = time.perf_counter()
    if args.recipe == "teach":
        comps = recipes.teach("ds", str(model), str(source), label="PER,LOC,ORG", patterns=str(patterns), no_idle=True)
    else:
        comps = recipes.correct("ds", str(model), str(source), label="PER,LOC,ORG", no_idle=True)
    t_components = time.perf_counter() - t
    batch = list(islice(comps["stream"], 10))
    t_first = time.perf_counter() - t
    print(f"{args.recipe}: components in {t_components:.2f} s, first batch of {len(batch)} in {t_first:.2f} s; "
          f"peak RSS {before:.0f} MiB before the recipe, {peak_mib():.0f} MiB after "
          f"(source {source.stat().st_size / 2**20:.0f} MiB, {args.texts:,} texts)")
    return 0 if len(batch) == 10 else 1


if __name__ == "__main__":
    sys.exit(main())
