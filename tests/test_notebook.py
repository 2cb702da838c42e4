"""Execute notebooks/walkthrough.ipynb on the bundled WikiGold data with tiny settings, so it never rots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "walkthrough.ipynb"


def test_walkthrough_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ipykernel  # noqa: F401  (the test extra installs all three)
    import nbclient
    import nbformat

    monkeypatch.setenv("SPARSE_NER_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("SPARSE_NER_NOTEBOOK_DIR", str(tmp_path))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit the notebook without outputs"
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    html = [o["data"]["text/html"] for c in nb.cells for o in c.get("outputs", []) if "text/html" in o.get("data", {})]
    assert any("annotated \\ predicted" in h and "Hardest" in h for h in html)  # the report is shown inline
    # the printed spans are pieces of the hardest task's own text (not sliced from another task's)
    hardest = json.loads((tmp_path / "review.jsonl").read_text().splitlines()[0])
    printed = [o["text"] for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stdout"]
    (before,) = [line for out in printed for line in out.splitlines() if line.startswith("hardest, before:")]
    expected = [(s["label"], hardest["text"][s["start"] : s["end"]]) for s in hardest["spans"]]
    assert before == f"hardest, before: {expected}"
    merged = [json.loads(line) for line in (tmp_path / "merged.jsonl").read_text().splitlines()]
    assert len(merged) >= 290  # every original answer is kept or replaced, none lost
