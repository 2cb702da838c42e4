"""A model folder from a training checkpoint (``sparse-ner export CHECKPOINT OUT``), and folders written whole.

A Lightning checkpoint holds the weights (``state_dict``) and the module's hyperparameters, but not
what rebuilding the :class:`~sparse_ner.core.tagger.Tagger` needs besides them: the tag inventory and
the small encoder's vocabulary are made from the training data. :func:`describe` is that part, stored
by ``TaggerModule.on_save_checkpoint`` under :data:`KEY`; :func:`tagger_from_checkpoint` rebuilds the
tagger from it and the weights. Plain data only (str, int, float, bool, lists and dicts), so that
the checkpoint loads with ``torch.load(weights_only=True)``.

:func:`write_folder` writes a folder next to its target and renames it into place, so that a failed
export leaves no half-written model, and an existing non-model folder is never written over.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

from sparse_ner.core.export import FORMAT_VERSION, export
from sparse_ner.core.tagger import Tagger

KEY = "sparse_ner"  # the checkpoint entry written by TaggerModule.on_save_checkpoint
_MAX_FILES_BYTES = 64 << 20  # encoder files stored in a checkpoint (the small encoder's vocabulary: ~1 MB)


def describe(tagger: Tagger) -> dict[str, Any]:
    """What rebuilding ``tagger`` needs besides its weights: ``tagger.json``'s content, and the text
    files the encoder saves (a transformer's files are not stored: it is rebuilt from its ``path``)."""
    encoder = tagger.encoder
    meta = {"format": FORMAT_VERSION, **tagger.config, "encoder": encoder.config()}
    files: dict[str, str] = {}
    if "path" not in meta["encoder"]:  # the small encoder: its vocabulary comes from the training data
        with tempfile.TemporaryDirectory() as tmp:
            encoder.save(Path(tmp))
            paths = [p for p in sorted(Path(tmp).rglob("*")) if p.is_file()]
            if sum(p.stat().st_size for p in paths) <= _MAX_FILES_BYTES:
                files = {p.relative_to(tmp).as_posix(): p.read_text(encoding="utf8") for p in paths}
    return {"tagger": meta, "encoder_files": files}


def tagger_from_description(description: dict[str, Any]) -> Tagger:
    """An (untrained) tagger rebuilt from :func:`describe`'s output; the weights come with ``load_state_dict``."""
    from sparse_ner.core.encoders import load_encoder

    meta = description["tagger"]
    files = description.get("encoder_files") or {}
    if files:
        with tempfile.TemporaryDirectory() as tmp:
            for name, text in files.items():
                path = Path(tmp) / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf8")
            encoder = load_encoder(tmp, meta["encoder"])
    else:
        path = meta["encoder"].get("path")
        if not path or not Path(path).exists():
            raise FileNotFoundError(f"the checkpoint's encoder was loaded from {path}, which is gone: "
                                    "put the encoder folder back at that path, or export from a model folder")  # fmt: skip
        encoder = load_encoder(path, meta["encoder"])
    return Tagger.from_config(encoder, meta)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder: give a .ckpt file (e.g. {path}/checkpoints/last.ckpt)")
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: training writes them to runs/<run_name>/version_N/checkpoints/")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated or foreign file
        raise ValueError(f"{path} is not a readable checkpoint ({type(err).__name__}: {err})") from None


def tagger_from_checkpoint(checkpoint: dict[str, Any] | str | Path) -> Tagger:
    """The tagger of a ``TaggerModule`` checkpoint, with its weights, in eval mode on CPU."""
    ckpt = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    if KEY not in ckpt:
        raise ValueError("the checkpoint holds no sparse_ner model description (it was saved before "
                         "`sparse-ner export` existed): export the model folder that training wrote, or retrain")  # fmt: skip
    tagger = tagger_from_description(ckpt[KEY])
    state = {k.removeprefix("tagger."): v for k, v in ckpt["state_dict"].items() if k.startswith("tagger.")}
    tagger.load_state_dict(state)
    return tagger.eval()


def check_output_folder(out: str | Path, force: bool = False, replace_model: bool = False) -> Path:
    """``out`` if a model may be written there: it does not exist or is empty, or ``force``, or it holds
    a model (``tagger.json``) and ``replace_model``; else :class:`ValueError` saying what to do."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file: give a folder for the model")
    if out.is_dir() and any(out.iterdir()) and not force:
        if not (replace_model and (out / "tagger.json").is_file()):
            raise ValueError(f"{out} exists and is not empty: give a new folder, or --force to replace it")
    return out


def write_folder(out: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary folder beside ``out``, then rename it to ``out`` (an existing
    ``out`` is replaced only once the new folder is complete)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        write(tmp)
        old = None
        if out.exists() or out.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old / out.name)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out


def record_o_bias(checkpoint: str | Path, bias: float) -> None:
    """Store the ``O`` bias tuned after training (:mod:`sparse_ner.training.o_bias`) in the model
    description of ``checkpoint`` (the best one: the bias was tuned for its weights), so that
    ``sparse-ner export`` of it gives the model training exported. The file is rewritten beside itself
    and renamed into place: a process killed meanwhile leaves the old checkpoint whole."""
    path = Path(checkpoint)
    ckpt = load_checkpoint(path)
    ckpt[KEY]["tagger"]["o_bias"] = float(bias)
    ckpt[KEY]["o_bias_tuned"] = True
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(ckpt, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def export_checkpoint(checkpoint: str | Path, out: str | Path, force: bool = False,
                      o_bias: float | None = None) -> Path:  # fmt: skip
    """Write the model folder of ``checkpoint`` (best or last) to ``out``, as training exports it; the
    training config saved beside the checkpoint (``<version>/config.yaml``) goes with it when found.

    The prediction-time ``O`` bias is the one tuned after training where the checkpoint holds it
    (:func:`record_o_bias`: the best checkpoint of a finished run), else ``o_bias`` when given, else the
    one the tagger trained with; an ``auto`` bias that was never tuned for these weights (``last.ckpt``,
    a killed run) is exported as 0, with a note on stderr."""
    out = check_output_folder(out, force)
    ckpt = load_checkpoint(checkpoint)
    tagger = tagger_from_checkpoint(ckpt)
    if o_bias is not None:
        tagger.o_bias = float(o_bias)
    elif ckpt.get("hyper_parameters", {}).get("o_bias") == "auto" and not ckpt[KEY].get("o_bias_tuned"):
        print(f"note: the O bias (--model.o_bias auto) was not tuned for {Path(checkpoint).name} (training tunes "
              "it for the best checkpoint when it ends): exported with 0; give --o-bias B to set one",
              file=sys.stderr)  # fmt: skip
    config = None
    for folder in (Path(checkpoint).parent, Path(checkpoint).parent.parent):
        if (folder / "config.yaml").is_file():
            config = (folder / "config.yaml").read_text(encoding="utf8")
            break
    return write_folder(out, lambda tmp: export(tagger, tmp, config))


def link_latest(run_dir: str | Path, model: str | Path) -> Path:
    """Point ``run_dir/latest`` at ``model`` (a symlink swapped in atomically); where symlinks cannot be
    made, write the model's path to ``run_dir/latest.txt``. Returns the link (or the text file)."""
    run_dir, model = Path(run_dir), Path(model)
    run_dir.mkdir(parents=True, exist_ok=True)
    link = run_dir / "latest"
    try:
        target = os.path.relpath(model.resolve(), run_dir.resolve())
    except ValueError:  # another drive
        target = str(model.resolve())
    tmp = run_dir / f".latest.{os.getpid()}.tmp"
    try:
        if tmp.is_symlink():
            tmp.unlink()
        os.symlink(target, tmp, target_is_directory=True)
        os.replace(tmp, link)
    except OSError:
        if tmp.is_symlink():
            tmp.unlink()
        text = run_dir / "latest.txt"
        tmp_text = run_dir / f".latest.txt.{os.getpid()}.tmp"
        tmp_text.write_text(f"{model.resolve()}\n", encoding="utf8")
        os.replace(tmp_text, text)
        return text
    (run_dir / "latest.txt").unlink(missing_ok=True)
    return link


__all__ = ["KEY", "describe", "export_checkpoint", "link_latest", "record_o_bias", "tagger_from_checkpoint",
           "write_folder"]
