"""What the fine-tuning tasks share: flags, tokenizer + model set-up (fresh or from pretrained
weights), batched inference with throughput metrics, and atomic JSON outputs."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Callable

import torch

from .. import train
from ..checkpoint import atomic_file
from ..config import BertConfig, pad_vocab_size, resolve_config
from ..distributed import Dist, setup
from ..dllog import DLLogger
from ..errors import UsageError
from ..model import BertHead
from ..tokenizer import WordPieceTokenizer
from ..weights import load_into, read_pretrained, save_pretrained


def add_model_arguments(p: argparse.ArgumentParser, max_seq: int) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--init-from", help="pretrained weights: a Hugging Face-layout folder (config.json, "
                                       "vocab.txt, model.safetensors or pytorch_model.bin), e.g. a pretrain "
                                       "run's <output>/model, or a checkpoint file (NVIDIA DLE {'model': ...})")
    g.add_argument("--model-config", default="base",
                   help="tiny | mini | base | large | path to config.json; ignored when --init-from has a "
                        "config.json (default: %(default)s)")
    g.add_argument("--vocab", help="vocab.txt; default: the one in --init-from")
    case = g.add_mutually_exclusive_group()
    case.add_argument("--lower-case", dest="lower_case", action="store_true", default=None,
                      help="uncased vocab: lower-case and strip accents (the default unless "
                           "--init-from's tokenizer_config.json says otherwise)")
    case.add_argument("--cased", dest="lower_case", action="store_false", help="cased vocab")
    g.add_argument("--max-seq-length", type=int, default=max_seq, help="tokens per sequence (default: %(default)s)")
    g.add_argument("--cache-dir", help="feature cache folder (default: <output-dir>/cache)")


def start(args: argparse.Namespace) -> tuple[Dist, DLLogger]:
    train.check_training_arguments(args)
    dist = setup(args.device)
    log = DLLogger(enabled=dist.is_main)
    log.announce_units()
    params = {**vars(args), "world_size": dist.world_size, "nnodes": dist.nnodes, "node_rank": dist.node_rank}
    if dist.is_main:
        log.parameters(params)
    elif dist.local_rank == 0:
        # Metrics come from rank 0 alone, but each node's log should still say which node it was and
        # with what flags; the first process of every other node writes this one record, nothing more.
        DLLogger().parameters(params)
    train.seed_everything(args.seed)
    if args.cache_dir is None:
        args.cache_dir = os.path.join(args.output_dir, "cache")
    return dist, log


def _lower_case(args: argparse.Namespace, folder: str | None) -> bool:
    if args.lower_case is not None:
        return args.lower_case
    cfg = os.path.join(folder, "tokenizer_config.json") if folder else None
    if cfg and os.path.isfile(cfg):
        with open(cfg) as f:
            return bool(json.load(f).get("do_lower_case", True))
    return True


def build_model(args: argparse.Namespace, head: Callable[[BertConfig], BertHead],
                id2label: dict[str, str] | None = None) -> tuple[WordPieceTokenizer, BertHead]:
    """Tokenizer and model; weights from --init-from when given (the task head may stay fresh)."""
    cfg: BertConfig | None = None
    state = None
    vocab_path = args.vocab
    folder = None
    if args.init_from:
        cfg, state, found_vocab = read_pretrained(args.init_from)
        folder = args.init_from if os.path.isdir(args.init_from) else os.path.dirname(args.init_from)
        vocab_path = vocab_path or found_vocab
    if not vocab_path:
        raise UsageError("--vocab is required (no vocab.txt found in --init-from)")
    tok = WordPieceTokenizer.from_file(vocab_path, _lower_case(args, folder))
    if cfg is None:
        cfg = resolve_config(args.model_config, len(tok))
    else:
        cfg.vocab_size = pad_vocab_size(max(cfg.vocab_size, len(tok)))
    if args.max_seq_length > cfg.max_position_embeddings:
        raise UsageError(f"--max-seq-length {args.max_seq_length} exceeds the model's "
                         f"max_position_embeddings {cfg.max_position_embeddings}")
    if id2label is not None:
        cfg.id2label = id2label
    torch.manual_seed(args.seed)
    model = head(cfg)
    if state is not None:
        fresh = load_into(model, state, args.init_from)
        if fresh:
            print(f"model: new parameters for this task: {fresh}", file=sys.stderr)
    return tok, model


@torch.no_grad()

def build_labelled_model(args: argparse.Namespace, head: Callable[[BertConfig], BertHead],
                         train_labels: list[str] | None) -> tuple[WordPieceTokenizer, BertHead, list[str]]:
    """A classification model whose labels come from the training data, or from a fine-tuned model's config.json."""
    id2label = {str(i): l for i, l in enumerate(train_labels)} if train_labels is not None else None
    tok, model = build_model(args, head, id2label)
    if model.config.id2label is None:
        raise UsageError(f"{args.init_from}: config.json has no id2label; fine-tune with --train-file first")
    labels = [model.config.id2label[str(i)] for i in range(model.config.num_labels)]
    return tok, model, labels

def predict(model: BertHead, tensors: dict[str, torch.Tensor], args: argparse.Namespace, dist: Dist,
            log: DLLogger, batch_size: int = 64) -> Any:
    """Runs the model over all rows (inputs only) and returns its outputs concatenated on the CPU;
    logs e2e_inference_time and inference_sequences_per_second."""
    model.eval()
    inputs = ("input_ids", "token_type_ids", "attention_mask")
    n = tensors["input_ids"].shape[0]
    outs: list[Any] = []
    t0 = time.perf_counter()
    with train.autocast(dist.device, args.precision):
        for i in range(0, n, batch_size):
            out = model(**{k: tensors[k][i:i + batch_size].to(dist.device) for k in inputs})
            outs.append(tuple(o.float().cpu() for o in out) if isinstance(out, tuple) else out.float().cpu())
    seconds = time.perf_counter() - t0
    log.log([], {"e2e_inference_time": seconds, "inference_sequences_per_second": n / max(seconds, 1e-9)})
    if isinstance(outs[0], tuple):
        return tuple(torch.cat(parts) for parts in zip(*outs))
    return torch.cat(outs)


def write_json(path: str, obj: Any) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_file(path, "w") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def finish_training(args: argparse.Namespace, trainer: train.Trainer, tok: WordPieceTokenizer, dist: Dist,
                    log: DLLogger, t_start: float) -> None:
    result = trainer.fit()
    train.log_train_summary(log, result, time.perf_counter() - t_start)
    if dist.is_main:
        save_pretrained(trainer.model, tok, os.path.join(args.output_dir, "model"))
    dist.barrier()
