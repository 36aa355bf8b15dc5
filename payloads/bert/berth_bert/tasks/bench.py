"""Throughput on synthetic data, the way NVIDIA and Hugging Face report it: SQuAD fine-tuning steps
(forward, backward, optimizer) and inference, in sequences per second after warm-up steps."""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from .. import train
from ..config import PRESETS, BertConfig
from ..distributed import setup
from ..dllog import DLLogger
from ..model import HAS_SDPA, BertForQuestionAnswering
from ..optim import fused_adamw_available, make_optimizer


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-config", default="large", choices=sorted(PRESETS), help="default: %(default)s")
    p.add_argument("--seq-length", type=int, default=384, help="default: %(default)s")
    p.add_argument("--batch-size", type=int, default=32, help="default: %(default)s")
    p.add_argument("--train-steps", type=int, default=20, help="timed training steps (default: 20)")
    p.add_argument("--infer-steps", type=int, default=30, help="timed inference batches (default: 30)")
    p.add_argument("--warmup-steps", type=int, default=6, help="untimed steps first (default: 6)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="bf16", help="default: %(default)s")
    p.add_argument("--variant", action="append", choices=("eager", "compiled"),
                   help="eager and/or torch.compile'd (torch >= 2); repeatable (default: eager)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: %(default)s")
    p.add_argument("--json-out", help="write the figures here as JSON too")
    p.add_argument("--seed", type=int, default=42, help="default: %(default)s")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _batch(cfg: BertConfig, bs: int, seq: int, device: torch.device, g: torch.Generator) -> dict[str, torch.Tensor]:
    return {"input_ids": torch.randint(1000, cfg.vocab_size - 8, (bs, seq), generator=g).to(device),
            "token_type_ids": torch.zeros(bs, seq, dtype=torch.long, device=device),
            "attention_mask": torch.ones(bs, seq, dtype=torch.long, device=device),
            "start_positions": torch.randint(0, seq, (bs,), generator=g).to(device),
            "end_positions": torch.randint(0, seq, (bs,), generator=g).to(device)}


def _train(model: torch.nn.Module, fwd, batch, args, device: torch.device) -> float:
    model.train()
    opt = make_optimizer(model, "adamw", 1e-5, 0.01, device)
    amp = train.autocast(device, args.precision)
    for i in range(args.warmup_steps + args.train_steps):
        if i == args.warmup_steps:
            _sync(device)
            t = time.perf_counter()
        with amp:
            loss = fwd(**batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    _sync(device)
    return args.batch_size * args.train_steps / (time.perf_counter() - t)


@torch.inference_mode()
def _infer(model: torch.nn.Module, fwd, batch, args, device: torch.device) -> float:
    model.eval()
    inputs = {k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
    amp = train.autocast(device, args.precision)
    for i in range(args.warmup_steps + args.infer_steps):
        if i == args.warmup_steps:
            _sync(device)
            t = time.perf_counter()
        with amp:
            fwd(**inputs)
    _sync(device)
    return args.batch_size * args.infer_steps / (time.perf_counter() - t)


def run(args: argparse.Namespace) -> int:
    dist = setup(args.device)
    device = dist.device
    log = DLLogger()
    log.announce_units()
    log.parameters(vars(args))
    cfg = BertConfig(**PRESETS[args.model_config], vocab_size=30528)
    cfg.max_position_embeddings = max(cfg.max_position_embeddings, args.seq_length)
    g = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    batch = _batch(cfg, args.batch_size, args.seq_length, device, g)
    res: dict[str, object] = {
        "torch": torch.__version__, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "model": args.model_config, "seq_length": args.seq_length, "batch_size": args.batch_size,
        "precision": args.precision, "sdpa": HAS_SDPA, "fused_adamw": fused_adamw_available(device)}
    def save() -> None:  # after every figure, so a run cut short still reports what it measured
        if args.json_out:
            with open(args.json_out, "w") as f:
                json.dump(res, f, indent=1)

    if args.json_out:
        os.makedirs(os.path.dirname(os.path.abspath(args.json_out)), exist_ok=True)
    variants = [v for v in (args.variant or ["eager"]) if v == "eager" or hasattr(torch, "compile")]
    for name in variants:
        compiled = name == "compiled"
        model = BertForQuestionAnswering(cfg).to(device)
        fwd = train.maybe_compile(model, compiled)
        res[f"train_{name}_seq_per_s"] = round(_train(model, fwd, batch, args, device), 1)
        log.log([], {"training_sequences_per_second": res[f"train_{name}_seq_per_s"], "variant": name})
        save()
        res[f"infer_{name}_seq_per_s"] = round(_infer(model, fwd, batch, args, device), 1)
        log.log([], {"inference_sequences_per_second": res[f"infer_{name}_seq_per_s"], "variant": name})
        save()
        if args.precision == "bf16" and not compiled:
            # Inference needs no fp32 master weights: bf16 weights skip autocast's per-call casts.
            model.to(torch.bfloat16)
            fp32 = args.precision
            args.precision = "fp32"
            res["infer_bf16_weights_seq_per_s"] = round(_infer(model, model, batch, args, device), 1)
            args.precision = fp32
            log.log([], {"inference_sequences_per_second": res["infer_bf16_weights_seq_per_s"],
                         "variant": "bf16_weights"})
            save()
        del model, fwd
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print(json.dumps(res))
    return 0
