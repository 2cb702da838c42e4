"""Export a trained :class:`~sparse_ner.core.tagger.Tagger` to a folder, and load it back on CPU.

A model folder holds:

- ``tagger.json``: labels, tags, scheme, head options, and the encoder's ``config()``;
- ``weights.safetensors`` (or ``weights.pt`` without safetensors): the tagger's whole state dict;
- ``encoder/``: what the encoder's ``save`` writes (vocabulary, tokenizer, ...);
- ``config.yaml``: the resolved training configuration, for the record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from sparse_ner.core.tagger import Tagger

FORMAT_VERSION = 1


def _is_rank_zero() -> bool:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank() == 0
    return True


def export(tagger: Tagger, folder: str | Path, config: dict[str, Any] | str | None = None) -> Path | None:
    """Write ``tagger`` to ``folder`` (rank 0 only under DDP; other ranks return ``None``)."""
    if not _is_rank_zero():
        return None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    encoder = tagger.encoder
    meta = {"format": FORMAT_VERSION, **tagger.config, "encoder": encoder.config()}
    (folder / "tagger.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf8")
    encoder.save(folder / "encoder")
    state = {k: v.detach().cpu().contiguous() for k, v in tagger.state_dict().items()}
    try:
        from safetensors.torch import save_file

        save_file(state, str(folder / "weights.safetensors"))
    except ImportError:
        torch.save(state, folder / "weights.pt")
    if config is not None:
        import yaml

        text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
        (folder / "config.yaml").write_text(text, encoding="utf8")
    return folder


def _no_model(folder: Path) -> str:
    """What to do when ``folder`` is not a model folder (the one line ``sparse-ner`` prints)."""
    if folder.is_file() and folder.suffix == ".ckpt":
        return f"{folder} is a training checkpoint: make a model folder from it with `sparse-ner export {folder} OUT`"
    if folder.is_dir():
        return (f"{folder} holds no model (no tagger.json): give the folder that holds tagger.json (e.g. "
                f"runs/<run_name>/latest), or make one from a checkpoint with `sparse-ner export CHECKPOINT {folder}`")
    return (f"no model at {folder}: train one with `sparse-ner train CONFIG` "
            "or give the folder that holds tagger.json (e.g. runs/<run_name>/latest)")


def load(path: str | Path, device: str | torch.device = "cpu") -> Tagger:
    """Load an exported tagger (in eval mode) from its folder."""
    folder = Path(path)
    meta_path = folder / "tagger.json"
    if not meta_path.exists():
        raise FileNotFoundError(_no_model(folder))
    meta = json.loads(meta_path.read_text(encoding="utf8"))
    from sparse_ner.core.encoders import load_encoder

    encoder = load_encoder(folder / "encoder", meta["encoder"])
    tagger = Tagger.from_config(encoder, meta)
    if (folder / "weights.safetensors").exists():
        from safetensors.torch import load_file

        state = load_file(str(folder / "weights.safetensors"), device="cpu")
    else:
        state = torch.load(folder / "weights.pt", map_location="cpu", weights_only=True)
    tagger.load_state_dict(state)
    return tagger.to(device).eval()
