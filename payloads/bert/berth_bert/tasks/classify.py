"""Sequence classification (GLUE-style): accuracy, F1 and MCC (fractions 0–1), predictions.json."""

from __future__ import annotations

import argparse
import os
import time

from .. import train
from ..data import classify
from ..data.cache import cached
from ..errors import UsageError
from ..metrics import classification_scores
from ..model import BertForSequenceClassification
from .common import add_model_arguments, build_labelled_model, finish_training, predict, start, write_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--train-file", help=".tsv / .csv (header row) or .jsonl to fine-tune on")
    g.add_argument("--eval-file", help="same format, with labels; scored and predicted")
    g.add_argument("--text-column", help="first text column (default: found among GLUE's usual names)")
    g.add_argument("--text-pair-column", help="second text column, for sentence-pair tasks")
    g.add_argument("--label-column", help="label column (default: label, gold_label or Quality)")
    g.add_argument("--eval-batch-size", type=int, default=64, help="default: %(default)s")
    add_model_arguments(p, max_seq=128)
    train.add_training_arguments(p, lr=2e-5, batch_size=32, epochs=3.0)


def _read(args: argparse.Namespace, path: str) -> list[classify.Row]:
    return classify.read_rows(path, args.text_column, args.text_pair_column, args.label_column)


def run(args: argparse.Namespace) -> int:
    if not args.train_file and not (args.eval_file and args.init_from):
        raise UsageError("classify: give --train-file (and --eval-file), or --eval-file with --init-from")
    t_start = time.perf_counter()
    dist, log = start(args)
    train_labels = sorted({r[2] for r in _read(args, args.train_file)}) if args.train_file else None
    # Without --train-file the labels come from the fine-tuned model's config.json.
    tok, model, labels = build_labelled_model(args, BertForSequenceClassification, train_labels)

    def features(path: str):
        return cached(args.cache_dir, "classify", path, tok, dict(max_seq=args.max_seq_length, labels=labels),
                      lambda: classify.build_features(_read(args, path), tok, labels, args.max_seq_length, path))

    if args.train_file:
        trainer = train.Trainer(args, "classify", model, features(args.train_file), dist, log)
        finish_training(args, trainer, tok, dist, log, t_start)
    if args.eval_file and dist.is_main:
        model.to(dist.device)
        data = features(args.eval_file)
        preds = predict(model, data, args, dist, log, args.eval_batch_size).argmax(-1).tolist()
        scores = classification_scores(preds, data["labels"].tolist(), len(labels))
        log.log([], scores)
        write_json(os.path.join(args.output_dir, "predictions.json"), [labels[p] for p in preds])
        write_json(os.path.join(args.output_dir, "results.json"), scores)
    dist.close()
    return 0
