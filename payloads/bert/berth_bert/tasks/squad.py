"""SQuAD v1.1 / v2.0 fine-tuning and evaluation: exact match and F1, predictions.json."""

from __future__ import annotations

import argparse
import os
import time

from .. import train
from ..errors import UsageError
from ..data import squad
from ..data.cache import cached
from ..model import BertForQuestionAnswering
from ..metrics import squad_scores
from .common import add_model_arguments, build_model, finish_training, predict, start, write_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--train-file", help="SQuAD-format JSON to fine-tune on; omit to only evaluate")
    g.add_argument("--predict-file", help="SQuAD-format JSON to predict (and score, when it has answers)")
    g.add_argument("--version-2", action="store_true", help="SQuAD v2: questions may have no answer")
    g.add_argument("--doc-stride", type=int, default=128, help="window step over long contexts (default: 128)")
    g.add_argument("--max-query-length", type=int, default=64, help="question tokens kept (default: 64)")
    g.add_argument("--max-answer-length", type=int, default=30, help="longest answer in tokens (default: 30)")
    g.add_argument("--n-best-size", type=int, default=20, help="start/end candidates per window (default: 20)")
    g.add_argument("--null-score-diff-threshold", type=float, default=0.0,
                   help="v2: predict no answer when null score - best span score exceeds this (default: 0)")
    g.add_argument("--eval-batch-size", type=int, default=64, help="default: %(default)s")
    add_model_arguments(p, max_seq=384)
    train.add_training_arguments(p, lr=5e-5, batch_size=32, epochs=2.0)


def _features(args: argparse.Namespace, path: str, tok, training: bool):
    params = dict(max_seq=args.max_seq_length, stride=args.doc_stride, query=args.max_query_length,
                  training=training)

    def build():
        examples = squad.read_examples(path)
        return examples, squad.build_features(examples, tok, args.max_seq_length, args.doc_stride,
                                              args.max_query_length, training)

    return cached(args.cache_dir, "squad", path, tok, params, build)


def run(args: argparse.Namespace) -> int:
    if not args.train_file and not args.predict_file:
        raise UsageError("squad: give --train-file, --predict-file or both")
    t_start = time.perf_counter()
    dist, log = start(args)
    tok, model = build_model(args, BertForQuestionAnswering)
    if args.train_file:
        _, feats = _features(args, args.train_file, tok, training=True)
        trainer = train.Trainer(args, "squad", model, feats.tensors, dist, log)
        finish_training(args, trainer, tok, dist, log, t_start)
    if args.predict_file and dist.is_main:
        model.to(dist.device)
        examples, feats = _features(args, args.predict_file, tok, training=False)
        start_logits, end_logits = predict(model, feats.tensors, args, dist, log, args.eval_batch_size)
        preds = squad.decode(examples, feats, start_logits, end_logits, args.n_best_size, args.max_answer_length,
                             args.version_2, args.null_score_diff_threshold)
        write_json(os.path.join(args.output_dir, "predictions.json"), preds)
        if any(ex.answers for ex in examples):
            scores = squad_scores(preds, {ex.qid: ex.answers for ex in examples})
            log.log([], scores)
            write_json(os.path.join(args.output_dir, "results.json"), scores)
    dist.close()
    return 0
