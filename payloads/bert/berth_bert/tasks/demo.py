"""The offline demo in one container: pretrain a tiny BERT on the demo corpus, fine-tune it on the
demo SQuAD set, print exact match and F1 on the held-out dev set. Outputs under
<output>/pretrain and <output>/squad (each resumable like the tasks themselves)."""

from __future__ import annotations

import argparse
import os

from . import pretrain, squad

DEMO_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                         "demo", "data")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=DEMO_DATA,
                   help="folder with corpus.txt, train.json, dev.json (default: the bundled demo data)")
    p.add_argument("--output-dir", default="/results", help="default: %(default)s")
    p.add_argument("--pretrain-steps", type=int, default=200, help="default: %(default)s")
    p.add_argument("--squad-epochs", type=float, default=2.0, help="default: %(default)s")
    p.add_argument("--vocab-size", type=int, default=3000, help="vocab built from the corpus (default: %(default)s)")
    p.add_argument("--seed", type=int, default=42, help="default: %(default)s")


def _parse(add, argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add(p)
    return p.parse_args(argv)


def pretrain_argv(args: argparse.Namespace) -> list[str]:
    return ["--train-file", os.path.join(args.data_dir, "corpus.txt"), "--model-config", "tiny",
            "--output-dir", os.path.join(args.output_dir, "pretrain"), "--max-seq-length", "128",
            "--batch-size", "32", "--lr", "1e-3", "--max-steps", str(args.pretrain_steps), "--warmup", "0.1",
            "--save-every", "100", "--log-every", "20", "--seed", str(args.seed), "--vocab-size", str(args.vocab_size)]


def squad_argv(args: argparse.Namespace) -> list[str]:
    return ["--train-file", os.path.join(args.data_dir, "train.json"),
            "--predict-file", os.path.join(args.data_dir, "dev.json"),
            "--init-from", os.path.join(args.output_dir, "pretrain", "model"),
            "--output-dir", os.path.join(args.output_dir, "squad"), "--max-seq-length", "128",
            "--doc-stride", "64", "--max-answer-length", "8", "--batch-size", "32", "--lr", "2e-3",
            "--epochs", str(args.squad_epochs),
            "--warmup", "0.1", "--save-every", "100", "--log-every", "20", "--seed", str(args.seed)]


def run(args: argparse.Namespace) -> int:
    code = pretrain.run(_parse(pretrain.add_arguments, pretrain_argv(args)))
    if code:
        return code
    return squad.run(_parse(squad.add_arguments, squad_argv(args)))
