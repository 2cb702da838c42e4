"""The peer side of ``scripts/bench_peers.py``: train one method peer and predict dev and test.

Runs inside the peers' virtualenv (``bench_results/peers/venv``: spacy-partial-tagger 0.15.6,
pytorch-partial-tagger 0.1.18, sequence-label 0.1.6, transformers 4.49), never in the project's
venv, and imports nothing from ``sparse_ner``. ``bench_peers.py`` calls it; by hand:

    bench_results/peers/venv/bin/python scripts/bench_peers_run.py {spacy,torch} --data DIR --model MINILM_DIR \\
        --out DIR [--max-steps N] [--max-minutes M] [--threads 1]

``DIR`` holds ``train.jsonl``, ``dev.jsonl``, ``test.jsonl``: one sentence a line,
``{"text": str, "words": [[start, end], ...], "spans": [[start, end, label], ...]}`` (character
offsets, ``end`` exclusive; train spans are the accepted spans, the other tokens unknown; dev and test
spans the complete gold). Writes to ``--out``: ``dev_pred.jsonl`` and ``test_pred.jsonl`` (one
``{"spans": [[start, end, label], ...]}`` a line, character spans as the peer decodes them) and
``meta.json`` (steps, epochs, passes, seconds, the dev F1 the peer selected its model by).

Each peer keeps its documented settings (see ``SPACY_CONFIG`` and ``TORCH_SETTINGS``); only the step
budget is capped (``--max-steps``; the learning-rate schedule is laid over the capped budget, as
``training.max_steps`` does in spaCy) and the wall time (``--max-minutes``: training stops after the
step that passes it, the schedule unchanged). The model kept is the best on dev of the ones the peer
evaluated plus the model at the stop.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

# The documented configuration of spacy-partial-tagger (config.cfg of github.com/doccano/spacy-partial-tagger,
# main, the release line of 0.15.x), with three changes: the encoder is the local MiniLM folder
# (``{model}``), the step budget and evaluation frequency are the capped ones, and ``before_update``
# stops training at the wall-time cap.
SPACY_CONFIG = """
[paths]
train = null
dev = null
init_tok2vec = null
vectors = null

[corpora]

[corpora.train]
@readers = "spacy.Corpus.v1"
path = ${{paths.train}}
gold_preproc = true

[corpora.dev]
@readers = "spacy.Corpus.v1"
path = ${{paths.dev}}
gold_preproc = true

[system]
gpu_allocator = null
seed = 0

[nlp]
lang = "en"
pipeline = ["partial_ner"]
disabled = []
before_creation = null
after_creation = null
after_pipeline_creation = null
batch_size = 15

[nlp.tokenizer]

[components]

[components.partial_ner]
factory = "partial_ner"
padding_index = -1
unknown_index = -100

[components.partial_ner.model]
@architectures = "spacy-partial-tagger.PartialTagger.v1"
transformer_model_name = "{model}"
padding_index = ${{components.partial_ner.padding_index}}

[training]
dev_corpus = "corpora.dev"
train_corpus = "corpora.train"
seed = ${{system.seed}}
gpu_allocator = ${{system.gpu_allocator}}
accumulate_gradient = 1
max_steps = {max_steps}
patience = 10000
eval_frequency = {eval_frequency}
frozen_components = []
before_to_disk = null

[training.before_update]
@callbacks = "bench_peers.wall_time_cap.v1"
max_seconds = {max_seconds}

[training.batcher]
@batchers = "spacy.batch_by_sequence.v1"
size = 15
get_length = null

[training.logger]
@loggers = "spacy.ConsoleLogger.v1"
progress_bar = false

[training.optimizer]
@optimizers = "Adam.v1"
beta1 = 0.9
beta2 = 0.999
L2_is_weight_decay = false
use_averages = false
grad_clip = 5.0

[training.optimizer.learn_rate]
@schedules = "slanted_triangular.v1"
max_rate = 0.00002
num_steps = ${{training.max_steps}}
cut_frac = 0.1
ratio = 16
t = -1

[training.score_weights]
ents_per_type = null
ents_f = 1.0
ents_p = 0.0
ents_r = 0.0

[pretraining]

[initialize]

[initialize.components]

[initialize.tokenizer]
"""
SPACY_MAX_STEPS, SPACY_EVAL_FREQUENCY = 20000, 1000  # the documented budget and evaluation frequency

# The documented defaults of pytorch-partial-tagger's ``create_trainer()`` and ``Trainer.__call__``.
TORCH_SETTINGS = dict(batch_size=15, num_epochs=20, learning_rate=2e-5, gradient_clip_value=5.0, dropout=0.2,
                      target_entity_ratio=0.15, entity_ratio_margin=0.05, balancing_coefficient=10, padding_index=-1)
MIN_STEPS = 10  # both schedules divide by zero below 10 steps (int(0.1 * steps) == 0)


class WallTimeUp(Exception):
    """Raised by the spaCy ``before_update`` callback once the wall-time cap has passed."""


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def char_f1(preds: list[list[tuple]], golds: list[list[tuple]]) -> float:
    """Micro F1 of exact (start, end, label) character spans: the measure both peers select by."""
    tp = fp = fn = 0
    for p, g in zip(preds, golds):
        p, g = {tuple(s) for s in p}, {tuple(s) for s in g}
        tp, fp, fn = tp + len(p & g), fp + len(p - g), fn + len(g - p)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


# --- spacy-partial-tagger -------------------------------------------------------------------------


def _docs(nlp, rows: list[dict], with_ents: bool) -> list:
    """spaCy docs tokenized as the data's words (``gold_preproc``), with the spans as ``doc.ents``."""
    from spacy.tokens import Doc

    docs = []
    for row in rows:
        text, words = row["text"], row["words"]
        spaces = [i + 1 < len(words) and words[i + 1][0] > e for i, (_, e) in enumerate(words)]
        doc = Doc(nlp.vocab, words=[text[s:e] for s, e in words], spaces=spaces)
        assert doc.text == text, (doc.text, text)
        if with_ents:
            doc.ents = [doc.char_span(s, e, label=label) for s, e, label in row["spans"]]
        docs.append(doc)
    return docs


def _spacy_predict(nlp, rows: list[dict], batch_size: int = 32) -> list[list[tuple]]:
    """Character spans decoded by the peer (``label_set.decode`` as in its ``set_annotations``, but
    without spaCy's strict ``char_span`` that drops a span not on token boundaries)."""
    pipe = nlp.get_pipe("partial_ner")
    out = []
    for i in range(0, len(rows), batch_size):
        docs = _docs(nlp, rows[i: i + batch_size], with_ents=False)
        tag_indices = pipe.predict(docs)
        labels = pipe.label_set.decode(tag_indices=tag_indices.tolist(),
                                       alignments=tuple(doc.user_data["alignment"] for doc in docs))
        out += [[(t.start, t.start + t.length, t.label) for t in label.tags] for label in labels]
    return out


def run_spacy(args, train: list[dict], dev: list[dict], test: list[dict]) -> dict:
    import spacy
    from spacy.cli.train import train as spacy_train
    from spacy.tokens import DocBin
    from spacy.util import registry

    progress = {"step": 0, "epoch": 0, "t0": None}

    @registry.callbacks("bench_peers.wall_time_cap.v1")
    def wall_time_cap(max_seconds: float):
        def before_update(nlp, info: dict) -> None:
            progress["t0"] = progress["t0"] or time.perf_counter()
            if time.perf_counter() - progress["t0"] > max_seconds:
                raise WallTimeUp(f"wall-time cap {max_seconds:.0f} s reached after {progress['step']} steps")
            progress["step"], progress["epoch"] = info["step"] + 1, info["epoch"]  # steps done after this one

        return before_update

    out = Path(args.out)
    blank = spacy.blank("en")
    for name, rows in (("train", train), ("dev", dev)):
        db = DocBin(docs=_docs(blank, rows, with_ents=True))
        db.to_disk(out / f"{name}.spacy")
    max_steps = min(args.max_steps or SPACY_MAX_STEPS, SPACY_MAX_STEPS)
    config = SPACY_CONFIG.format(model=args.model, max_steps=max_steps,
                                 eval_frequency=min(SPACY_EVAL_FREQUENCY, max_steps),
                                 max_seconds=args.max_minutes * 60 if args.max_minutes else 1e12)
    (out / "config.cfg").write_text(config)
    stopped = "max_steps"
    t0 = time.perf_counter()
    try:
        spacy_train(out / "config.cfg", out / "model", use_gpu=-1,
                    overrides={"paths.train": str(out / "train.spacy"), "paths.dev": str(out / "dev.spacy")})
    except WallTimeUp as err:
        print(err, flush=True)
        stopped = "wall_time"
    seconds = time.perf_counter() - t0
    # the spaCy loop stops at max_steps, or at `patience` steps without improvement
    candidates = [p for p in (out / "model/model-best", out / "model/model-last") if p.exists()]
    best = None
    for path in candidates:
        nlp = spacy.load(path)
        preds = _spacy_predict(nlp, dev)
        f1 = char_f1(preds, [r["spans"] for r in dev])
        print(f"dev char-span F1 of {path.name}: {f1:.4f}", flush=True)
        if best is None or f1 > best[0]:
            best = (f1, path, nlp, preds)
    f1, path, nlp, dev_preds = best
    test_preds = _spacy_predict(nlp, test)
    steps_per_epoch = math.ceil(len(train) / 15)
    return {"steps": progress["step"], "epochs_started": progress["epoch"] + 1,
            "passes": progress["step"] / steps_per_epoch, "train_seconds": seconds, "stopped": stopped,
            "dev_f1_peer": f1, "model": path.name, "max_steps": max_steps, "dev_pred": dev_preds,
            "test_pred": test_preds}


# --- pytorch-partial-tagger -----------------------------------------------------------------------


def run_torch(args, train: list[dict], dev: list[dict], test: list[dict]) -> dict:
    """``partial_tagger.training.Trainer.__call__`` step for step (its loss, tag bitmap, optimizer, schedule,
    unshuffled loader, validation each epoch keeping the best state), with the step and wall-time caps
    and one more validation at a stop inside an epoch."""
    from partial_tagger.data.collators import TrainingCollator, TransformerCollator
    from partial_tagger.encoders.transformer import TransformerModelEncoderFactory
    from partial_tagger.metric import Metric
    from partial_tagger.recognizer import Recognizer
    from partial_tagger.tagger import SequenceTagger
    from partial_tagger.training import SlantedTriangular, compute_partially_supervised_loss, create_tag_bitmap
    from sequence_label import LabelSet, SequenceLabel
    from torch.nn.utils.clip_grad import clip_grad_value_
    from torch.utils.data import DataLoader
    from transformers import AutoTokenizer

    s = TORCH_SETTINGS
    device = torch.device("cpu")

    def dataset(rows):
        return [(r["text"], SequenceLabel.from_dict(tags=[{"start": a, "end": b, "label": lab}
                                                          for a, b, lab in r["spans"]], size=len(r["text"])))
                for r in rows]

    train_set, dev_set = dataset(train), dataset(dev)
    label_set = LabelSet(labels={tag.label for _, label in train_set for tag in label.tags},
                         padding_index=s["padding_index"])
    tagger = SequenceTagger(encoder=TransformerModelEncoderFactory(args.model, s["dropout"]).create(label_set),
                            padding_index=label_set.padding_index, start_states=label_set.start_states,
                            end_states=label_set.end_states, transitions=label_set.transitions).to(device)
    base_collator = TransformerCollator(AutoTokenizer.from_pretrained(args.model), None)
    collator = TrainingCollator(base_collator)
    train_loader = DataLoader(train_set, collate_fn=collator, batch_size=s["batch_size"])
    dev_loader = DataLoader(dev_set, collate_fn=collator, batch_size=s["batch_size"], shuffle=False)
    budget = len(train_loader) * s["num_epochs"]
    max_steps = min(args.max_steps or budget, budget)
    optimizer = torch.optim.Adam(tagger.parameters(), lr=s["learning_rate"], weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, SlantedTriangular(max_steps))

    def validate() -> float:
        tagger.eval()
        metric = Metric()  # no torch.no_grad(): as in the peer (its decoder may take autograd of the max semiring)
        for batch, alignments, labels in dev_loader:
            tag_indices = tagger.predict(batch.tagger_inputs, batch.mask)
            metric(label_set.decode(tag_indices=tag_indices.tolist(), alignments=alignments), labels)
        tagger.train()
        return metric.get_scores()["micro_f1_score"]

    best_f1, best_state = float("-inf"), io.BytesIO()
    step, epoch, stopped = 0, 0, "max_steps"
    t0 = time.perf_counter()
    cap = args.max_minutes * 60 if args.max_minutes else float("inf")
    while step < max_steps and stopped == "max_steps":
        epoch += 1
        tagger.train()
        for batch, alignments, labels in train_loader:
            optimizer.zero_grad()
            dist = tagger(batch.tagger_inputs, batch.mask)
            loss = compute_partially_supervised_loss(
                crf_distribution=dist,
                tag_bitmap=create_tag_bitmap(label_set=label_set, labels=labels, alignments=alignments, device=device),
                outside_index=label_set.outside_index, target_entity_ratio=s["target_entity_ratio"],
                entity_ratio_margin=s["entity_ratio_margin"], balancing_coefficient=s["balancing_coefficient"])
            loss.backward()
            clip_grad_value_(tagger.parameters(), clip_value=s["gradient_clip_value"])
            optimizer.step()
            scheduler.step()
            step += 1
            if step % 50 == 0:
                print(f"step {step} epoch {epoch} loss {loss.item():.4f} {time.perf_counter() - t0:.0f}s", flush=True)
            if step >= max_steps:
                break
            if time.perf_counter() - t0 > cap:
                stopped = "wall_time"
                break
        f1 = validate()
        print(f"epoch {epoch} step {step}: dev micro F1 {f1:.4f} ({time.perf_counter() - t0:.0f}s)", flush=True)
        if f1 > best_f1:
            best_f1 = f1
            best_state.seek(0)
            best_state.truncate(0)
            torch.save(tagger.state_dict(), best_state)
    seconds = time.perf_counter() - t0
    best_state.seek(0)
    tagger.load_state_dict(torch.load(best_state))
    recognizer = Recognizer(tagger=tagger, collator=base_collator, label_set=label_set)

    def predict(rows):
        labels = recognizer(tuple(r["text"] for r in rows), 32, device)
        return [[(t.start, t.start + t.length, t.label) for t in label.tags] for label in labels]

    return {"steps": step, "epochs_started": epoch, "passes": step / len(train_loader), "train_seconds": seconds,
            "stopped": stopped, "dev_f1_peer": best_f1, "max_steps": max_steps, "dev_pred": predict(dev),
            "test_pred": predict(test)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("peer", choices=["spacy", "torch"])
    ap.add_argument("--data", required=True, help="folder with train.jsonl, dev.jsonl, test.jsonl")
    ap.add_argument("--model", required=True, help="local Hugging Face encoder folder")
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-steps", type=int, default=None, help="cap on the documented step budget")
    ap.add_argument("--max-minutes", type=float, default=None, help="wall-time cap on training")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if args.max_steps is not None and args.max_steps < MIN_STEPS:
        ap.error(f"--max-steps must be at least {MIN_STEPS}: both peers' schedules divide by zero below it")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, dev, test = (read_jsonl(data / f"{name}.jsonl") for name in ("train", "dev", "test"))
    print(f"[{args.peer}] train {len(train)} texts, dev {len(dev)}, test {len(test)}", flush=True)
    result = (run_spacy if args.peer == "spacy" else run_torch)(args, train, dev, test)
    write_jsonl(out / "dev_pred.jsonl", [{"spans": p} for p in result.pop("dev_pred")])
    write_jsonl(out / "test_pred.jsonl", [{"spans": p} for p in result.pop("test_pred")])
    (out / "meta.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
