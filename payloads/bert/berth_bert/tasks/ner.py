"""Token classification (NER) on CoNLL-style files: entity-level precision / recall / F1."""

from __future__ import annotations

import argparse
import os
import time

from .. import train
from ..data import ner
from ..data.cache import cached
from ..errors import UsageError
from ..metrics import entity_f1
from ..model import BertForTokenClassification
from .common import add_model_arguments, build_labelled_model, finish_training, predict, start, write_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--train-file", help="CoNLL-style file: 'token ... tag' a line, blank line between sentences")
    g.add_argument("--eval-file", help="same format; scored and predicted")
    g.add_argument("--eval-batch-size", type=int, default=64, help="default: %(default)s")
    add_model_arguments(p, max_seq=128)
    train.add_training_arguments(p, lr=5e-5, batch_size=32, epochs=3.0)


def run(args: argparse.Namespace) -> int:
    if not args.train_file and not (args.eval_file and args.init_from):
        raise UsageError("ner: give --train-file (and --eval-file), or --eval-file with --init-from")
    t_start = time.perf_counter()
    dist, log = start(args)
    tags = sorted({t for _, ts in ner.read_sentences(args.train_file) for t in ts}) if args.train_file else None
    tok, model, labels = build_labelled_model(args, BertForTokenClassification, tags)

    def features(path: str):
        return cached(args.cache_dir, "ner", path, tok, dict(max_seq=args.max_seq_length, labels=labels),
                      lambda: ner.build_features(ner.read_sentences(path), tok, labels, args.max_seq_length, path))

    if args.train_file:
        tensors, _ = features(args.train_file)
        trainer = train.Trainer(args, "ner", model, tensors, dist, log)
        finish_training(args, trainer, tok, dist, log, t_start)
    if args.eval_file and dist.is_main:
        model.to(dist.device)
        sentences = ner.read_sentences(args.eval_file)
        tensors, firsts = features(args.eval_file)
        best = predict(model, tensors, args, dist, log, args.eval_batch_size).argmax(-1)
        pred_tags = [[labels[int(best[i, p])] for p in pos] + ["O"] * (len(words) - len(pos))
                     for i, ((words, _), pos) in enumerate(zip(sentences, firsts))]
        scores = entity_f1(pred_tags, [t for _, t in sentences])
        log.log([], scores)
        write_json(os.path.join(args.output_dir, "predictions.json"), pred_tags)
        write_json(os.path.join(args.output_dir, "results.json"), scores)
    dist.close()
    return 0
