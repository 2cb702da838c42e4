"""Distributed training without a GPU: DDP over 2 CPU processes (gloo) against one process.

Per-rank batch ``b`` on 2 ranks must equal one process with batch ``2b``: the sampler splits each
global batch of ``2b`` examples between the ranks and DDP averages their gradients, so both runs take
the same optimizer steps over the same examples. Dropout is off, so the trained weights agree up to
float summation order. Dev F1 is computed over the whole dev set (counts summed over ranks), and only
rank 0 exports.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sparse_ner.training.datamodule import BucketBatchSampler, TaggerDataModule

ROOT = Path(__file__).resolve().parents[2]
FIRST = ["John", "Mary", "Anna", "Peter", "Laura", "Tom", "Ines", "Omar"]
CITIES = ["Paris", "London", "Berlin", "Madrid", "Rome"]
VERBS = ["lives in", "flew to", "works in", "left"]
N_TRAIN, N_DEV, BATCH = 32, 25, 4  # 32 distinct texts: 4 global batches of 8 per epoch


def _record(words: list[str], spans: list[tuple[int, int, str]], answer: str, view: str = "ner") -> dict:
    tokens, pos = [], 0
    for i, w in enumerate(words):
        tokens.append({"text": w, "start": pos, "end": pos + len(w), "id": i, "ws": i + 1 < len(words)})
        pos += len(w) + 1
    sp = [{"start": tokens[s]["start"], "end": tokens[e]["end"], "token_start": s, "token_end": e, "label": lab}
          for s, e, lab in spans]  # fmt: skip
    return {"text": " ".join(words), "tokens": tokens, "spans": sp, "_view_id": view, "answer": answer}


def _sentences():
    """Distinct sentences ``person verb city .`` with their gold spans, in a fixed order."""
    for i, (verb, city, person) in enumerate((v, c, p) for v in VERBS for c in CITIES for p in FIRST):
        words = [person, *verb.split(), city, "."]
        yield i, words, [(0, 0, "PER"), (len(words) - 2, len(words) - 2, "LOC")]


def make_data(folder: Path) -> dict[str, Path]:
    train, dev = [], []
    for i, words, gold in _sentences():
        if i < N_TRAIN:  # one binary answer per text: accept a gold span, or reject a wrong label
            s, e, lab = gold[i % 2]
            span, answer = ((s, e, lab), "accept") if i % 3 else ((s, e, "LOC" if lab == "PER" else "PER"), "reject")
            train.append(_record(words, [span], answer))
        elif i < N_TRAIN + N_DEV:
            dev.append(_record(words, gold, "accept", "ner_manual"))
    paths = {"train": folder / "train.jsonl", "dev": folder / "dev.jsonl"}
    for name, records in (("train", train), ("dev", dev)):
        paths[name].write_text("".join(json.dumps(r) + "\n" for r in records))
    return paths


def _train(paths: dict[str, Path], out: Path, devices: int, batch_size: int) -> subprocess.CompletedProcess:
    """Train with ``python -m sparse_ner.train``: in this process for one device (saves a start-up),
    as a subprocess for DDP (Lightning starts the other rank as a second subprocess)."""
    args = [
        f"--data.train={paths['train']}", f"--data.dev={paths['dev']}",
        f"--data.batch_size={batch_size}", "--data.eval_batch_size=4",
        "--model.encoder=small", "--model.dropout=0", "--model.lr=0.01",
        '--model.encoder_options={"min_count": 1, "hidden": 16, "word_dim": 8, "char_out": 4, "char_dim": 4, '
        '"shape_dim": 4, "dropout": 0.0, "word_dropout": 0.0}',
        "--trainer.max_epochs=2", "--trainer.accelerator=cpu", f"--trainer.devices={devices}",
        f"--trainer.strategy={'ddp' if devices > 1 else 'auto'}", "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false", "--trainer.num_sanity_val_steps=0", "--trainer.logger=false",
        "--checkpoint.save_top_k=-1", f"--checkpoint.dirpath={out / 'ckpt'}",
        f"--trainer.default_root_dir={out}", f"--export_dir={out / 'model'}",
    ]  # fmt: skip
    if devices == 1:
        import contextlib
        import io

        from sparse_ner.cli.train import main

        stdout, threads = io.StringIO(), torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with contextlib.redirect_stdout(stdout):
                assert main(args) == 0
        finally:
            torch.set_num_threads(threads)
        return subprocess.CompletedProcess(args, 0, stdout.getvalue(), "")
    import os

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}  # 1 thread per rank on 2 cores
    cmd = [sys.executable, "-m", "sparse_ner.train", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("ddp")
    paths = make_data(folder)
    single = _train(paths, folder / "single", devices=1, batch_size=2 * BATCH)
    ddp = _train(paths, folder / "ddp", devices=2, batch_size=BATCH)
    return {"paths": paths, "single": (folder / "single", single), "ddp": (folder / "ddp", ddp)}


def _last(folder: Path) -> dict:
    """The checkpoint of the last epoch (every epoch is kept)."""
    (path,) = (folder / "ckpt").glob("best-epoch=1-*.ckpt")
    return torch.load(path, map_location="cpu", weights_only=False)


def test_ddp_takes_the_same_steps_and_reaches_the_same_weights(runs: dict) -> None:
    single, ddp = _last(runs["single"][0]), _last(runs["ddp"][0])
    assert single["global_step"] == ddp["global_step"] == 2 * N_TRAIN // (2 * BATCH)
    a, b = single["state_dict"], ddp["state_dict"]
    assert set(a) == set(b)
    moved = max(float((a[k] - b[k]).abs().max()) for k in a if a[k].is_floating_point())
    assert moved < 1e-4, f"DDP weights differ from single-process weights by {moved}"


def _reported(stdout: str, name: str) -> tuple[float, int]:
    """Micro F1 and support of the ``name`` report printed by ``sparse_ner.train``."""
    block = stdout.split(f"\n{name}: ", 1)[1]
    f1, support = re.search(r"micro avg\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s+(\d+)", block).groups()
    return float(f1), int(support)


def test_ddp_dev_f1_covers_the_whole_dev_set_and_matches_the_exported_model(runs: dict) -> None:
    from sparse_ner.core.evaluate import evaluate

    folder, result = runs["ddp"]
    f1, support = _reported(result.stdout, "dev")
    assert support == 2 * N_DEV  # every dev example once: nothing dropped, nothing duplicated
    independent = evaluate(folder / "model", runs["paths"]["dev"])
    assert independent["support"] == support
    assert f1 == pytest.approx(independent["f1"], abs=1e-4)
    best = re.search(r"best checkpoint: .* \(val_f1 ([\d.]+)\)", result.stdout)
    assert best and float(best.group(1)) == pytest.approx(independent["f1"], abs=1e-4)
    single_f1, _ = _reported(runs["single"][1].stdout, "dev")
    assert f1 == pytest.approx(single_f1, abs=0.02)


def test_only_rank_zero_exports(runs: dict) -> None:
    folder, result = runs["ddp"]
    out = result.stdout + result.stderr
    assert out.count("exported model:") == 1
    assert sorted(p.name for p in (folder / "model").iterdir()) == sorted(
        p.name for p in (runs["single"][0] / "model").iterdir()
    )
    assert "ddp" in out.lower() or "distributed" in out.lower()  # it did run distributed


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("n", [1, 7, 25, 100])
def test_sampler_gives_every_rank_the_same_number_of_batches(world: int, n: int) -> None:
    lengths = [(i * 7) % 13 + 1 for i in range(max(n, world))]
    for shuffle in (True, False):
        for bs in (1, 3, 8):
            shards = [BucketBatchSampler(lengths, bs, shuffle=shuffle, num_replicas=world, rank=r) for r in range(world)]
            batches = [list(s) for s in shards]
            assert all(len(b) == len(s) for b, s in zip(batches, shards))
            assert all(batch and len(batch) <= bs for rank in batches for batch in rank)
            flat = [i for rank in batches for batch in rank for i in batch]
            assert len(flat) == len(set(flat))  # no example twice
            if shuffle:
                assert len({len(b) for b in batches}) == 1  # same number of optimizer steps
                assert len(lengths) - len(flat) < world  # at most a short last global batch is left out
            else:
                assert sorted(flat) == list(range(len(lengths)))  # the whole eval set, once
                if len(lengths) >= world * len(batches[0]):
                    assert len({len(b) for b in batches}) == 1


def test_sampler_steps_match_one_process_with_the_global_batch() -> None:
    lengths = [(i * 5) % 11 + 1 for i in range(64)]
    one = list(BucketBatchSampler(lengths, 8, seed=3, bucket_chunks=2))
    two = [list(BucketBatchSampler(lengths, 4, seed=3, bucket_chunks=2, num_replicas=2, rank=r)) for r in range(2)]
    assert [sorted(a + b) for a, b in zip(*two)] == [sorted(b) for b in one]


def test_sampler_refuses_fewer_examples_than_ranks() -> None:
    with pytest.raises(ValueError, match="cannot be sharded"):
        list(BucketBatchSampler([3], 4, shuffle=False, num_replicas=2, rank=1))


def test_batches_move_to_the_device_with_their_lattice() -> None:
    from sparse_ner.core.lattice import Lattice
    from sparse_ner.data.columns import make_example
    from sparse_ner.training.module import TaggerModule

    module = TaggerModule(encoder="small", encoder_options={"min_count": 1, "hidden": 8, "word_dim": 4})
    examples = [make_example(["Anna", "lives", "in", "Rome"], ["B-PER", "O", "O", "B-LOC"])]
    module.build(["LOC", "PER"], [ex.words for ex in examples])
    dm = TaggerDataModule("unused", "unused", pin_memory=True)
    dm.train_examples = dm.dev_examples = examples
    dm._labels = ["LOC", "PER"]
    dm.attach(module.tagger.batch_builder)
    loader = dm.train_dataloader()
    assert loader.pin_memory  # pinned host memory for CUDA copies (Lattice has pin_memory())
    assert TaggerDataModule("unused", "unused")._pin_memory() is False  # default: only when training on CUDA
    batch = next(iter(loader))
    moved = module.transfer_batch_to_device(batch, torch.device("meta"), 0)
    assert isinstance(moved["lattice"], Lattice)
    assert all(getattr(moved["lattice"], f).is_meta for f in ("mask", "base_of", "start", "allowed", "end"))
    assert all(t.is_meta for t in moved["inputs"].values())
    assert moved["gold"] == batch["gold"]


def test_slurm_script_starts_one_task_per_gpu_with_srun(tmp_path: Path) -> None:
    """The batch script under a fake ``srun``: the trainer gets SLURM's node and task counts."""
    import os

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text(f'#!/bin/bash\nprintf "%s\\n" "$@" > {tmp_path / "args.txt"}\n')
    (fake / "srun").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "SLURM_JOB_NUM_NODES": "2",
           "SLURM_NTASKS_PER_NODE": "4(x2)", "SLURM_CPUS_PER_TASK": "8", "SLURM_SUBMIT_DIR": str(ROOT)}  # fmt: skip
    out = subprocess.run(["bash", str(ROOT / "scripts" / "slurm_train.sbatch"), "configs/cluster_ddp.yaml",
                          "--trainer.max_epochs", "1"], env=env, capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    args = (tmp_path / "args.txt").read_text().split("\n")
    assert args[:4] == ["--kill-on-bad-exit=1", "python", "-m", "sparse_ner.train"]
    line = " ".join(args)
    assert "--config configs/cluster_ddp.yaml" in line
    assert "--trainer.num_nodes 2 --trainer.devices 4 --data.num_workers 7" in line
    assert line.strip().endswith("--trainer.max_epochs 1")
