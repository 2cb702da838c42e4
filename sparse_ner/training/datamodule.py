"""Reading, batching and collating the data for training: :class:`TaggerDataModule`.

Training data is ``prodigy db-out`` JSONL (sparse binary answers, merged per text by
:func:`sparse_ner.data.prodigy.read_examples`) or a column file (complete gold). Dev and test data are
gold (JSONL whose ``spans`` are every entity, or a column file) or binary answers, detected and scored
on what the answers say (:class:`~sparse_ner.core.metrics.EntityF1`). Without a dev file,
``eval_split`` of the training texts (chosen by ``_input_hash`` and ``seed``, so a text stays on its
side whatever the budget) is held out as dev. A path is read as JSONL when it ends in
``.jsonl``/``.json`` (or is ``-``), else as a column file in ``encoding``.

Batches are length-bucketed: the shuffled training set is cut into chunks of ``bucket_chunks``
batches, each chunk is sorted by length and cut into batches, and the batches are shuffled, so
padding stays small while the order still changes every epoch.

Batches are built by the tagger (:meth:`~sparse_ner.core.tagger.Tagger.make_batch`: its encoder's
vocabulary or tokenizer featurizes the words, its ``reject_prior`` decides the lattices): the
:class:`~sparse_ner.training.module.TaggerModule` builds the tagger from :meth:`TaggerDataModule.labels`
and :meth:`TaggerDataModule.train_words` in its ``setup`` and hands its picklable
:attr:`~sparse_ner.core.tagger.Tagger.batch_builder` back with :meth:`TaggerDataModule.attach`.
"""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only
from torch.utils.data import DataLoader, Sampler

from sparse_ner.data.example import Example
from sparse_ner.data.read import read_any as _read_any
from sparse_ner.data.read import read_texts as _read_texts
from sparse_ner.tags import Scheme, tag_names


@rank_zero_only
def _print(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _dist_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the running process group, ``(0, 1)`` without one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def odd_labels(counts: Counter) -> list[str]:
    """Labels that look like typos: rare (under 1% of the commonest label's spans and under 5 spans),
    or another label in different case (``per`` beside ``PER``)."""
    if not counts:
        return []
    top = max(counts.values())
    folded = Counter(label.casefold() for label in counts)
    return sorted(label for label, n in counts.items()
                  if (n < 5 and n < 0.01 * top) or (folded[label.casefold()] > 1 and label != label.upper()))  # fmt: skip


def label_report(counts: Counter) -> str:
    """The inferred label set with each label's span count, and the labels that look like typos."""
    lines = ["labels inferred from the data (spans): " + ", ".join(f"{lab} {n}" for lab, n in sorted(counts.items()))]
    odd = odd_labels(counts)
    if odd:
        lines.append(f"  check these labels, they look like typos: {', '.join(odd)} "
                     f"(give the label set with --data.labels to drop them)")  # fmt: skip
    return "\n".join(lines)


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length, sharded across the ranks of a ``torch.distributed`` run.

    With ``shuffle`` (training), the order changes every epoch (seeded by ``seed`` and the epoch set by
    :meth:`set_epoch`, so every rank draws the same order): the shuffled examples are cut into chunks of
    ``bucket_chunks`` *global* batches of ``batch_size * world`` examples, each chunk is sorted by
    length, and every rank takes ``global_batch[rank::world]``. Under DDP (gradients averaged over
    ranks) a step therefore sees the same examples as one process with batch ``batch_size * world``,
    and every rank runs the same number of steps; only a last global batch with fewer examples than
    ranks is left out of the epoch.

    Without ``shuffle`` (evaluation), the length-sorted examples are cut into contiguous batches of
    at most ``batch_size`` and dealt to the ranks round robin: every example is evaluated exactly
    once (nothing padded by duplication, nothing dropped), so metrics summed over ranks are exact;
    the batch count is rounded up to a multiple of ``world`` when there are enough examples, so every
    rank gets the same number of batches.

    ``num_replicas`` and ``rank`` default to those of the running process group (1 and 0 without).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        bucket_chunks: int = 50,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.bucket_chunks = bucket_chunks
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose order to draw next (Lightning's fit loop calls it before each epoch, so a
        run resumed from a checkpoint draws the same batches as an uninterrupted one)."""
        self.epoch = epoch

    @property
    def sampler(self) -> "BucketBatchSampler":
        """Itself: Lightning calls ``set_epoch`` on ``dataloader.batch_sampler.sampler``."""
        return self

    def _world(self) -> tuple[int, int]:
        rank, world = _dist_world()
        world = self.num_replicas if self.num_replicas is not None else world
        rank = self.rank if self.rank is not None else rank
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside [0, {world})")
        if len(self.lengths) < world:
            raise ValueError(f"{len(self.lengths)} examples cannot be sharded over {world} processes")
        return rank, world

    def _train_batches(self, world: int) -> list[list[int]]:
        """The epoch's global batches of ``batch_size * world`` examples (shuffled, bucketed)."""
        n, bs = len(self.lengths), self.batch_size * world
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(n, generator=g).tolist()
        chunk = bs * self.bucket_chunks
        batches = []
        for c in range(0, n, chunk):
            part = sorted(order[c : c + chunk], key=lambda i: self.lengths[i])
            batches += [part[i : i + bs] for i in range(0, len(part), bs)]
        batches = [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
        return [b for b in batches if len(b) >= world]  # every rank gets >= 1 example of each

    def _eval_batches(self, world: int) -> list[list[int]]:
        """Contiguous length-sorted batches of at most ``batch_size``, a multiple of ``world`` when possible."""
        n, count = len(self.lengths), self._eval_count(world)
        order = sorted(range(n), key=lambda i: self.lengths[i])
        return [order[n * k // count : n * (k + 1) // count] for k in range(count)]

    def _eval_count(self, world: int) -> int:
        n = len(self.lengths)
        count = -(-n // self.batch_size)
        return min(-(-count // world) * world, n)  # sizes stay <= batch_size, as count >= n / batch_size

    def __iter__(self) -> Iterator[list[int]]:
        rank, world = self._world()
        if self.shuffle:
            batches = [b[rank::world] for b in self._train_batches(world)]
            self.epoch += 1  # iterated again without set_epoch: the next order
        else:
            batches = self._eval_batches(world)[rank::world]
        return iter(batches)

    def __len__(self) -> int:
        rank, world = self._world()
        n = len(self.lengths)
        if self.shuffle:  # chunks hold whole global batches, so only the very last one can be short
            bs = self.batch_size * world
            return -(-n // bs) - int(0 < n % bs < world)
        return len(range(rank, self._eval_count(world), world))


class TaggerDataModule(pl.LightningDataModule):
    """Train / dev / test data for a tagger.

    Args:
        train: db-out JSONL of ``ner.teach`` answers, or a column file with complete gold tags.
        dev: gold JSONL or column file, or db-out answers, used for early stopping and checkpoint
            selection; without it, ``eval_split`` of the training texts is held out instead.
        eval_split: share of the training texts held out as dev when ``dev`` is not given (default
            0.2 then), chosen by ``_input_hash`` and ``seed``; their answers score the model.
        test: optional gold JSONL or column file (or db-out answers), evaluated after training.
        labels: entity labels (a list, or comma-separated as in Prodigy: ``PER,ORG``); inferred (sorted)
            from the training and dev data when not given.
        scheme: the tagger's tag scheme, ``bio`` or ``bioes``.
        complete: override the completeness of training examples (``None``: the reader decides).
        max_tasks: use only the first N db-out records of ``train`` (the annotation budget).
        use_rejects: keep rejected spans as negative constraints; ``False`` drops them (an ablation).
        encoding: tag encoding of column files (``iob1``, ``bio``, ``bioes``, ``bmes``).
        batch_size: training batch size (examples) per process: under DDP one step sees
            ``batch_size * world_size`` examples.
        eval_batch_size: dev/test batch size.
        num_workers: DataLoader workers (featurizing and collating run in them).
        pin_memory: page-locked batches for fast host-to-GPU copies; ``None``: on when training on CUDA.
        bucket_chunks: batches per length-sorted chunk when shuffling.
        seed: seed of the batch order.
        teacher: an exported model trained on the same answers (same labels and scheme): its posteriors
            (with its O bias) weight the taggings consistent with each training text's answers, a
            second round of training (:mod:`sparse_ner.training.teacher`; BENCHMARKS.md for what it gains).
        unlabeled: JSONL of texts nobody answered (a Prodigy source, or the stream the answers came from;
            texts of the training, dev and test data are left out), trained on beside the answers, with the
            teacher's posteriors as their only signal, so it needs ``teacher``. Training time grows with their number.
        max_unlabeled: use only the first N texts of ``unlabeled``.
    """

    def __init__(
        self,
        train: str,
        dev: str | None = None,
        test: str | None = None,
        eval_split: float | None = None,
        labels: list[str] | str | None = None,
        scheme: Scheme = "bio",
        complete: bool | None = None,
        max_tasks: int | None = None,
        use_rejects: bool = True,
        encoding: str = "iob1",
        batch_size: int = 32,
        eval_batch_size: int = 128,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        bucket_chunks: int = 50,
        seed: int = 0,
        teacher: str | None = None,
        unlabeled: str | None = None,
        max_unlabeled: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if unlabeled is not None and teacher is None:
            raise ValueError("data.unlabeled needs data.teacher: unanswered texts train only through a teacher's "
                             "posteriors (train once without them, then again with --data.teacher MODEL)")  # fmt: skip
        if max_unlabeled is not None and max_unlabeled < 1:
            raise ValueError(f"data.max_unlabeled must be at least 1, got {max_unlabeled}")
        if dev is not None and eval_split is not None:
            raise ValueError("give data.dev (a dev file) or data.eval_split (hold out training texts), not both")
        if eval_split is not None and not 0.0 < eval_split < 1.0:
            raise ValueError(f"data.eval_split must be between 0 and 1 (a share of the texts), got {eval_split}")
        self.train_path, self.dev_path, self.test_path = train, dev, test
        self.scheme = scheme
        if isinstance(labels, str):  # Prodigy's spelling: --data.labels PER,ORG
            labels = [x.strip() for x in labels.split(",") if x.strip()]
        self._labels = list(labels) if labels else None
        self.train_examples: list[Example] | None = None
        self.dev_examples: list[Example] | None = None
        self.test_examples: list[Example] | None = None
        self.collate: Callable[[list[Example]], dict] | None = None
        self._taught = False  # the teacher's priors are on the training examples
        self.n_unlabeled: int | None = None  # unanswered texts (data.unlabeled) at the end of train_examples

    # --- reading -------------------------------------------------------------------------------
    def _read(self, path: str, gold: bool | str, name: str, max_records: int | None = None) -> list[Example]:
        hp = self.hparams
        return read_any(path, gold=gold, complete=hp.complete, labels=self._labels, max_records=max_records,
                        column_encoding=hp.encoding, name=name)  # fmt: skip

    def check_paths(self) -> None:
        """Every input file exists before anything is read or trained (a mistyped ``--data.test``
        found after training cost the whole run); raises ``FileNotFoundError`` in one line."""
        paths = (("train", self.train_path), ("dev", self.dev_path), ("test", self.test_path),
                 ("unlabeled", self.hparams.get("unlabeled")))  # fmt: skip
        for name, path in paths:
            if path is None or str(path) == "-":
                continue
            if not Path(path).exists():
                raise FileNotFoundError(f"data.{name}: no such file: {path}")
            if Path(path).is_dir():
                raise IsADirectoryError(f"data.{name}: {path} is a folder, not a data file")
        teacher = self.hparams.get("teacher")
        if teacher is not None and not (Path(teacher) / "tagger.json").is_file():
            raise FileNotFoundError(f"data.teacher: no exported model at {teacher} (a folder with tagger.json)")

    def setup(self, stage: str | None = None) -> None:
        if self.train_examples is None:  # the vocabulary and labels always come from the training data
            self.check_paths()
            self.train_examples = self._read(self.train_path, gold=False, name="train", max_records=self.hparams.max_tasks)
            if not self.train_examples:
                raise ValueError(f"data.train: {self.train_path} holds no usable example (see the reader's report above)")
            if not self.hparams.use_rejects:
                dropped = sum(len(ex.rejected) for ex in self.train_examples)
                for ex in self.train_examples:
                    ex.rejected = []
                _print(f"[train] use_rejects=False: {dropped} rejected spans not used")
            if self.dev_path is None:
                self._hold_out()
        if self.dev_examples is None:
            self.dev_examples = self._read(self.dev_path, gold="auto", name="dev")
        if self.hparams.get("unlabeled") is not None and self.n_unlabeled is None:
            self._add_unlabeled()
        if self.hparams.get("teacher") is not None and not self._taught:  # after dev: labels may come from both
            from sparse_ner.training.teacher import attach_priors

            n = attach_priors(self.hparams.teacher, self.train_examples, self.tags, progress=sys.stderr.isatty())
            self._taught = True
            bare = self.n_unlabeled or 0
            also = f" and {bare} unanswered texts (data.unlabeled)" if bare else ""
            _print(f"[train] teacher {self.hparams.teacher}: its posteriors weight the answers of {n - bare} texts{also}")
        if stage in (None, "test") and self.test_path and self.test_examples is None:
            self.test_examples = self._read(self.test_path, gold="auto", name="test")

    def _add_unlabeled(self) -> None:
        """Append the texts of ``data.unlabeled`` to the training examples, leaving out those of the
        training, dev and test data (an evaluation text trained on, even unanswered, would inflate its score)."""
        assert self.train_examples is not None and self.dev_examples is not None
        if self.test_path and self.test_examples is None:
            self.test_examples = self._read(self.test_path, gold="auto", name="test")
        skip = [*self.train_examples, *self.dev_examples, *(self.test_examples or [])]
        unlabeled = read_texts(self.hparams.unlabeled, skip=skip, max_texts=self.hparams.get("max_unlabeled"),
                               name="unlabeled")  # fmt: skip
        self.train_examples += unlabeled
        self.n_unlabeled = len(unlabeled)

    def _hold_out(self) -> None:
        """Move ``eval_split`` of the training texts (by input hash and seed) to the dev set."""
        share = self.hparams.eval_split if self.hparams.eval_split is not None else 0.2
        seed = self.hparams.seed
        held = [held_out(ex, share, seed) for ex in self.train_examples]
        dev = [ex for ex, h in zip(self.train_examples, held) if h]
        train = [ex for ex, h in zip(self.train_examples, held) if not h]
        if not dev or not train:
            raise ValueError(f"data.eval_split {share}: {len(dev)} of {len(self.train_examples)} texts held out, "
                             f"{len(train)} left to train on; give more data, another eval_split or a data.dev file")  # fmt: skip
        self.train_examples, self.dev_examples = train, dev
        binary = sum(not ex.complete for ex in dev)
        answers = sum(len(ex.accepted) + len(ex.rejected) for ex in dev)
        _print(f"[dev] no dev file: {len(dev)} of {len(dev) + len(train)} training texts held out "
               f"(eval_split {share}, by _input_hash, seed {seed}); {binary} of them are scored on their "
               f"{answers} binary answers, {len(dev) - binary} as complete annotations")  # fmt: skip

    @property
    def labels(self) -> list[str]:
        """The entity labels: as given, else every label in the training (and dev) annotations."""
        if self._labels is None:
            if self.train_examples is None:
                raise RuntimeError("labels are inferred from the data: call setup() first")
            counts = Counter(s.label for ex in self.train_examples for s in (*ex.accepted, *ex.rejected))
            counts.update(s.label for ex in self.dev_examples or [] for s in ex.accepted)
            self._labels = sorted(counts)
            _print(label_report(counts))
        return self._labels

    @property
    def tags(self) -> list[str]:
        return tag_names(self.labels, self.scheme)

    def train_words(self) -> list[list[str]]:
        """Word lists of the training examples (the small encoder builds its vocabulary from them)."""
        if self.train_examples is None:
            self.setup("fit")
        return [ex.words for ex in self.train_examples]

    def attach(self, collate: Callable[[list[Example]], dict]) -> None:
        """Give the loaders the tagger's batch building (``tagger.batch_builder``, called by the
        module's ``setup``); it must be picklable when ``num_workers > 0``."""
        self.collate = collate

    # --- loaders -------------------------------------------------------------------------------
    def _loader(self, examples: list[Example] | None, train: bool) -> DataLoader:
        if examples is None:
            raise RuntimeError("no data: call setup() first (and give a test path for testing)")
        if self.collate is None:
            raise RuntimeError("no batch building attached: TaggerModule.setup() attaches the tagger's "
                               "(or call attach(tagger.batch_builder))")
        hp = self.hparams
        sampler = BucketBatchSampler(
            [len(ex) for ex in examples], hp.batch_size if train else hp.eval_batch_size,
            shuffle=train, seed=hp.seed, bucket_chunks=hp.bucket_chunks,
        )  # fmt: skip
        return DataLoader(
            examples,
            batch_sampler=sampler,
            collate_fn=self.collate,
            num_workers=hp.num_workers,
            persistent_workers=hp.num_workers > 0,
            pin_memory=self._pin_memory(),
        )

    def _pin_memory(self) -> bool:
        if self.hparams.pin_memory is not None:
            return self.hparams.pin_memory
        return self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_examples, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.dev_examples, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_examples, train=False)


def held_out(example: Example, share: float, seed: int = 0) -> bool:
    """Whether ``example`` falls in the held-out ``share`` of texts: decided by its ``_input_hash``
    (else its text) and ``seed`` alone, so the split does not depend on the order or the budget."""
    key = example.input_hash if example.input_hash is not None else example.text
    digest = hashlib.md5(f"{seed}:{key}".encode("utf8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def read_any(path: str | Path, **kwargs: Any) -> list[Example]:
    """:func:`sparse_ner.data.read.read_any` with its report printed by rank 0 only."""
    return _read_any(path, report=_print, **kwargs)


def read_texts(path: str | Path, **kwargs: Any) -> list[Example]:
    """:func:`sparse_ner.data.read.read_texts` with its report printed by rank 0 only."""
    return _read_texts(path, report=_print, **kwargs)
