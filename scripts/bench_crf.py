"""Time CRF forward+backward on CPU: our partial-label NLL against pytorch-crf and pytorch-partial-crf.

    python scripts/bench_crf.py [--batch 32] [--lengths 64 128] [--repeats 30] [--device cpu]

Rows, each forward + backward of the loss summed over a batch of B sequences of length T, K = 9 tags
(BIO over 4 labels):

- ``pytorch-crf full NLL``: ``torchcrf.CRF`` with every tag known (the reference cost).
- ``pytorch-partial-crf partial NLL``: ``PartialCRF`` with ~85% of tags unknown (no rejects possible).
- ``ours partial NLL, accepts only``: one accepted span per sequence, the rest unknown.
- ``ours partial NLL, accepts + rejects``: one accepted span and three rejected spans per sequence
  (two of them overlapping), exact; the lattice is prebuilt (the data loader builds it in its workers).
- ``ours lattice building``: the per-batch cost of building that lattice (runs in data-loader workers).

The ratio column divides by pytorch-crf's full NLL at the same T. Median of ``--repeats`` timings,
taken in interleaved rounds (each round runs every row once).
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time

import torch

from sparse_ner.core.lattice import Annotation, build_lattice
from sparse_ner.core.crf import CRF
from sparse_ner.tags import tag_names


def timed_rows(fns: dict, repeats: int, device: str) -> dict[str, float]:
    """Median seconds per call of each function, measured in interleaved rounds so that a change in
    machine load affects every row alike."""
    for fn in fns.values():
        for _ in range(3):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if device != "cpu":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if device != "cpu":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def annotations(B: int, T: int, labels: list[str], rejects: int, seed: int = 0) -> list[Annotation]:
    rng = random.Random(seed)
    out = []
    for _ in range(B):
        n = T if rng.random() < 0.5 else rng.randint(T // 2, T)  # ragged
        s = rng.randrange(0, n - 4)
        accepted = [(s, s + rng.randint(0, 2), rng.choice(labels))]
        rejected = []
        while len(rejected) < rejects:
            r0 = rng.randrange(0, n - 3)
            r = (r0, r0 + rng.randint(0, 2), rng.choice(labels))
            if r not in accepted and r not in rejected:
                rejected.append(r)
        if rejects >= 2:  # make two of them overlap on purpose
            a0, a1, al = rejected[0]
            rejected[1] = (a0, min(n - 1, a1 + 1), al)
        out.append(Annotation(n, accepted, sorted(set(rejected))))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lengths", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    from pytorch_partial_crf import PartialCRF
    from torchcrf import CRF as TorchCRF

    torch.manual_seed(0)
    dev = args.device
    labels = ["PER", "LOC", "ORG", "MISC"]
    tags = tag_names(labels, "bio")
    K, B = len(tags), args.batch
    print(f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"threads={torch.get_num_threads()}, device={dev}, B={B}, K={K}")
    print("| T | row | ms (median) | x pytorch-crf |")
    print("|---:|---|---:|---:|")
    for T in args.lengths:
        emissions = torch.randn(B, T, K, device=dev, requires_grad=True)
        ann_acc = annotations(B, T, labels, rejects=0)
        ann_rej = annotations(B, T, labels, rejects=3)
        lengths = torch.tensor([a.length for a in ann_rej])
        mask = (torch.arange(T)[None, :] < lengths[:, None]).to(dev)
        gold = torch.randint(0, K, (B, T), device=dev)

        ref = TorchCRF(K, batch_first=True).to(dev)
        partial = PartialCRF(K).to(dev)
        ours = CRF(tags, "bio").to(dev)
        partial_tags = gold.clone()
        partial_tags[torch.rand(B, T, device=dev) < 0.85] = -1
        lat_acc = build_lattice(ann_acc, tags, "bio", length=T).to(dev)
        lat_rej = build_lattice(ann_rej, tags, "bio", length=T).to(dev)
        lat_rej = type(lat_rej)(mask, *(getattr(lat_rej, f) for f in ("base_of", "start", "allowed", "end")))

        def run_ref():
            (-ref(emissions, gold, mask=mask, reduction="sum")).backward()

        def run_partial():
            partial(emissions, partial_tags, mask=mask.to(torch.uint8)).backward()

        def run_acc():
            ours.nll(emissions, lat_acc).sum().backward()

        def run_rej():
            ours.nll(emissions, lat_rej).sum().backward()

        def run_build():
            build_lattice(ann_rej, tags, "bio", length=T)

        fns = {"pytorch-crf full NLL": run_ref, "pytorch-partial-crf partial NLL": run_partial,
               "ours partial NLL, accepts only": run_acc,
               f"ours partial NLL, accepts + rejects (S={lat_rej.num_states})": run_rej,
               "ours lattice building (data-loader side)": run_build}
        secs = timed_rows(fns, args.repeats, dev)
        base = secs["pytorch-crf full NLL"]
        rows = list(secs.items())
        for name, sec in rows:
            print(f"| {T} | {name} | {sec * 1000:.1f} | {sec / base:.2f} |")


if __name__ == "__main__":
    main()
