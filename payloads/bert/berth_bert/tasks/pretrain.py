"""Masked-LM pretraining (optionally with next-sentence prediction) on raw text. Without --vocab
and --init-from, a vocab is first built from the corpus (for our offline tiny models)."""

from __future__ import annotations

import argparse
import os
import sys
import time

from .. import train
from ..checkpoint import atomic_file
from ..errors import DataError
from ..data import mlm
from ..data.cache import cached
from ..model import BertForPreTraining
from ..tokenizer import build_vocab, load_vocab
from .common import add_model_arguments, build_model, finish_training, start


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--train-file", required=True,
                   help="raw text, UTF-8: a sentence or paragraph a line, a blank line between documents")
    g.add_argument("--nsp", action="store_true", help="add the next-sentence-prediction head and loss")
    g.add_argument("--mask-probability", type=float, default=0.15, help="default: %(default)s")
    g.add_argument("--vocab-size", type=int, default=4000,
                   help="size of the vocab built from --train-file when no --vocab is given (default: 4000)")
    add_model_arguments(p, max_seq=128)
    train.add_training_arguments(p, lr=1e-3, batch_size=64, epochs=10.0)


def _vocab_from_corpus(args: argparse.Namespace) -> list[str]:
    """Builds (or reuses, when resuming) <output>/vocab.txt from the corpus; its tokens in id order."""
    path = os.path.join(args.output_dir, "vocab.txt")
    if os.path.isfile(path):
        return list(load_vocab(path))
    with open(args.train_file, encoding="utf-8") as f:
        tokens = build_vocab(f, args.vocab_size, lower_case=args.lower_case is not False)
    _write_vocab(path, tokens)
    print(f"pretrain: built a {len(tokens)}-token vocab at {path}", file=sys.stderr)
    return tokens


def _vocab_text(tokens: list[str]) -> str:
    return "".join(t + "\n" for t in tokens)


def _write_vocab(path: str, tokens: list[str]) -> None:
    # Atomic: where nodes share one output directory, another node's process may be reading it.
    with atomic_file(path, "w") as f:
        f.write(_vocab_text(tokens))


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def run(args: argparse.Namespace) -> int:
    t_start = time.perf_counter()
    dist, log = start(args)
    if not args.vocab and not args.init_from:
        if not os.path.isfile(args.train_file):
            raise DataError(args.train_file, "no such file")
        os.makedirs(args.output_dir, exist_ok=True)
        args.vocab = os.path.join(args.output_dir, "vocab.txt")
        # Rank 0's vocab is the one: on a resume it is the vocab the checkpoint was trained with, and
        # with several nodes the other nodes' output directories do not have it. Each node's first
        # process writes it into its own output directory for the rest of its node to read.
        tokens = dist.broadcast(_vocab_from_corpus(args) if dist.is_main else None)
        if not dist.is_main and dist.local_rank == 0 and _read_text(args.vocab) != _vocab_text(tokens):
            _write_vocab(args.vocab, tokens)
        dist.barrier()
    tok, model = build_model(args, lambda cfg: BertForPreTraining(cfg, nsp=args.nsp))

    def build():
        return mlm.build_features(mlm.read_documents(args.train_file, tok), tok, args.max_seq_length, args.nsp,
                                  args.seed)

    data = cached(args.cache_dir, "mlm", args.train_file, tok,
                  dict(max_seq=args.max_seq_length, nsp=args.nsp, seed=args.seed), build)
    trainer = train.Trainer(args, "pretrain", model, data, dist, log,
                            transform=mlm.masker(tok, args.mask_probability))
    finish_training(args, trainer, tok, dist, log, t_start)
    dist.close()
    return 0
