"""The training loop every task shares: deterministic sharded batches, gradient accumulation,
autocast (bf16 / fp16 with a grad scaler / fp32), clipping, warm-up + decay, DDP, periodic atomic
checkpoints, automatic resume from the newest one, and SIGTERM → checkpoint → exit 75."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import random
import signal
import sys
import time
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from . import checkpoint
from .dllog import DLLogger
from .distributed import Dist
from .errors import EXIT_PREEMPTED, BerthError, UsageError
from .model import BertHead
from .optim import linear_schedule, make_optimizer, warmup_steps_for

Batch = dict[str, torch.Tensor]
# Turns a batch of stored features into model inputs; gets a generator seeded from (seed, epoch,
# batch) so that random choices (MLM masking) are the same after a resume.
Transform = Callable[[Batch, torch.Generator], Batch]


class Preempted(BerthError):
    """SIGTERM arrived; a checkpoint was saved. Starting the same command again resumes."""

    exit_code = EXIT_PREEMPTED


def add_training_arguments(p: argparse.ArgumentParser, lr: float, batch_size: int, epochs: float) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--output-dir", default="/results",
                   help="where checkpoints/, model/, predictions and caches go; a run resumes from the "
                        "newest complete checkpoint here (default: %(default)s)")
    g.add_argument("--batch-size", type=int, default=batch_size,
                   help="sequences per optimizer step per process, before accumulation (default: %(default)s)")
    g.add_argument("--grad-accum", type=int, default=1,
                   help="micro-batches per optimizer step; --batch-size is split into this many (default: 1)")
    g.add_argument("--lr", type=float, default=lr, help="peak learning rate (default: %(default)s)")
    g.add_argument("--optimizer", choices=("adamw", "lamb"), default="adamw",
                   help="AdamW (fused on CUDA with torch 2) or LAMB (default: %(default)s)")
    g.add_argument("--weight-decay", type=float, default=0.01, help="default: %(default)s")
    g.add_argument("--warmup", type=float, default=0.1,
                   help="warm-up: a proportion of all steps if < 1, else a step count (default: %(default)s)")
    g.add_argument("--epochs", type=float, default=epochs,
                   help="passes over the training set; ignored when --max-steps is set (default: %(default)s)")
    g.add_argument("--max-steps", type=int, default=0, help="optimizer steps to train for; 0: use --epochs")
    g.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping; 0 disables (default: 1.0)")
    g.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                   help="autocast dtype; fp16 uses a grad scaler and needs CUDA (default: %(default)s)")
    g.add_argument("--compile", action="store_true", help="torch.compile the model (torch >= 2; ignored before)")
    g.add_argument("--seed", type=int, default=42, help="seeds init, data order, masking, dropout (default: 42)")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: CUDA when visible (default: %(default)s)")
    g.add_argument("--log-every", type=int, default=10, help="DLLogger progress line every N steps (default: 10)")
    g.add_argument("--save-every", type=int, default=500,
                   help="checkpoint every N optimizer steps; 0: only at the end and on SIGTERM (default: 500)")
    g.add_argument("--keep-checkpoints", type=int, default=3, help="newest checkpoints to keep (default: 3)")


def check_training_arguments(args: argparse.Namespace) -> None:
    for flag in ("batch_size", "grad_accum", "log_every"):
        if getattr(args, flag) < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be at least 1")
    if args.batch_size % args.grad_accum:
        raise UsageError("--batch-size must be a multiple of --grad-accum")
    if args.max_steps < 0 or args.epochs <= 0 or args.lr <= 0:
        raise UsageError("--max-steps must be >= 0, --epochs and --lr > 0")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    if device.type == "cpu" and dtype == torch.float16:
        raise UsageError("--precision fp16 needs CUDA; use bf16 or fp32 on CPU")
    return torch.autocast(device_type=device.type, dtype=dtype)


def maybe_compile(model: nn.Module, wanted: bool) -> nn.Module:
    if wanted and hasattr(torch, "compile"):
        return torch.compile(model)
    return model


def _grad_scaler(enabled: bool):
    if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):  # torch >= 2.3; the old one is deprecated
        return torch.amp.GradScaler("cuda", enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)


def _batch_seed(seed: int, epoch: int, index: int) -> int:
    return (seed * 1_000_003 + epoch * 10_007 + index) % (2 ** 63)


@dataclasses.dataclass
class Position:
    step: int = 0  # optimizer steps done
    epoch: int = 0
    batch: int = 0  # micro-batches of this epoch already consumed


@dataclasses.dataclass
class TrainResult:
    steps: int
    final_loss: float | None
    train_seconds: float
    sequences: int
    resumed_from: int | None


class Trainer:
    def __init__(self, args: argparse.Namespace, task: str, model: BertHead, data: Batch, dist: Dist,
                 log: DLLogger, transform: Transform | None = None) -> None:
        self.args = args
        self.task = task
        self.model = model.to(dist.device)
        self.data = data
        self.dist = dist
        self.log = log
        self.transform = transform
        self.micro = args.batch_size // args.grad_accum
        n = next(iter(data.values())).shape[0]
        self.per_rank = n // dist.world_size
        # Whole optimizer steps only, so accumulation never straddles an epoch boundary.
        self.batches_per_epoch = self.per_rank // self.micro // args.grad_accum * args.grad_accum
        if self.batches_per_epoch < args.grad_accum:
            raise UsageError(f"{n} training examples are too few for --batch-size {args.batch_size} "
                             f"on {dist.world_size} process(es)")
        steps_per_epoch = self.batches_per_epoch // args.grad_accum
        self.total_steps = args.max_steps or max(1, int(args.epochs * steps_per_epoch))
        # Known only now (it depends on the data): readers of the log show progress as a share of it.
        self.log.parameters({"total_steps": self.total_steps})
        self.optimizer = make_optimizer(model, args.optimizer, args.lr, args.weight_decay, dist.device)
        self.scheduler = linear_schedule(self.optimizer, warmup_steps_for(self.total_steps, args.warmup),
                                         self.total_steps)
        self.scaler = _grad_scaler(args.precision == "fp16" and dist.device.type == "cuda")
        wrapped: nn.Module = model
        if dist.enabled:
            ids = [dist.device.index] if dist.device.type == "cuda" else None
            wrapped = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        self.forward = maybe_compile(wrapped, args.compile)
        self.wrapped = wrapped
        self.pos = Position()
        self._stop = False

    # --- data -----------------------------------------------------------------------------------
    def _batches(self) -> Iterator[tuple[int, Batch]]:
        """This rank's micro-batches of the current epoch from ``pos.batch`` on, in a fixed order."""
        n = next(iter(self.data.values())).shape[0]
        g = torch.Generator().manual_seed(_batch_seed(self.args.seed, self.pos.epoch, -1))
        order = torch.randperm(n, generator=g)[self.dist.rank::self.dist.world_size][:self.per_rank]
        for i in range(self.pos.batch, self.batches_per_epoch):
            idx = order[i * self.micro:(i + 1) * self.micro]
            batch = {k: v[idx] for k, v in self.data.items()}
            if self.transform is not None:
                gen = torch.Generator().manual_seed(_batch_seed(self.args.seed, self.pos.epoch, i) + self.dist.rank)
                batch = self.transform(batch, gen)
            yield i, {k: v.to(self.dist.device, non_blocking=True) for k, v in batch.items()}

    # --- checkpoints ----------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
        if self.dist.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.dist.device)
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "position": dataclasses.asdict(self.pos), "rng": rng}

    def save(self) -> str | None:
        path = None
        if self.dist.is_main:
            meta = {"task": self.task, "epoch": self.pos.epoch, "total_steps": self.total_steps}
            path = checkpoint.save_checkpoint(self.args.output_dir, self.pos.step, self._state(), meta,
                                              self.args.keep_checkpoints)
            print(f"checkpoint: saved {path}", file=sys.stderr, flush=True)
        self.dist.barrier()
        return path

    def resume(self) -> int | None:
        """Continues from rank 0's newest checkpoint. Only rank 0 saves, so with several nodes the
        other nodes hold that checkpoint only if it was copied into their output directory (berth's
        worker does so). Every rank that holds the very checkpoint rank 0 picked (same meta.json)
        reads its own copy; if any rank lacks it, rank 0 sends its state to all of them instead, so
        no rank ever starts from another step than rank 0."""
        if self.dist.is_main:
            checkpoint.remove_stale_temporaries(self.args.output_dir)
        self.dist.barrier()
        path = checkpoint.latest_checkpoint(self.args.output_dir)
        meta = checkpoint.read_meta(path) if path is not None else None
        chosen_path, chosen = self.dist.broadcast((path, meta))
        if chosen is None:
            return None
        # Checked on every rank, so that all of them stop with the same error rather than wait.
        if chosen.get("task") != self.task:
            raise UsageError(f"{chosen_path} is a {chosen.get('task')!r} checkpoint, not {self.task!r}: "
                             f"use another --output-dir")
        if not self.dist.any(meta != chosen):
            state, _ = checkpoint.load_checkpoint(path)
        else:
            state = self.dist.broadcast(checkpoint.load_checkpoint(path)[0] if self.dist.is_main else None)
            if not self.dist.is_main and meta != chosen:
                print(f"checkpoint: {self.args.output_dir} on rank {self.dist.rank} does not hold rank 0's "
                      f"{os.path.basename(chosen_path)}; received it from rank 0", file=sys.stderr, flush=True)
        path = chosen_path
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.pos = Position(**state["position"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        if "cuda" in rng and self.dist.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.dist.device)
        print(f"checkpoint: resumed from {path} (step {self.pos.step})", file=sys.stderr, flush=True)
        return self.pos.step

    # --- the loop -------------------------------------------------------------------------------
    def _on_sigterm(self, signum, frame) -> None:
        self._stop = True

    def fit(self) -> TrainResult:
        args = self.args
        resumed = self.resume()
        previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        self.model.train()
        amp = autocast(self.dist.device, args.precision)
        window = torch.zeros((), device=self.dist.device)  # summed on device: no sync per step
        window_steps = 0
        step_loss = torch.zeros((), device=self.dist.device)
        last_loss: float | None = None
        sequences = 0
        t0 = time.perf_counter()
        try:
            while self.pos.step < self.total_steps:
                for i, batch in self._batches():
                    last_micro = (i + 1) % args.grad_accum == 0
                    sync = last_micro or not self.dist.enabled
                    with (contextlib.nullcontext() if sync else self.wrapped.no_sync()), amp:
                        loss = self.forward(**batch) / args.grad_accum
                    self.scaler.scale(loss).backward()
                    step_loss += loss.detach()
                    sequences += self.micro * self.dist.world_size
                    self.pos.batch = i + 1
                    if not last_micro:
                        continue
                    self._optimizer_step()
                    window += step_loss
                    window_steps += 1
                    if self.pos.step % args.log_every == 0 or self.pos.step == self.total_steps:
                        last_loss = float(step_loss)
                        self.log.log([self.pos.epoch, self.pos.step], {
                            "step_loss": last_loss, "average_loss": float(window) / window_steps,
                            "learning_rate": self.scheduler.get_last_lr()[0]})
                        window.zero_()
                        window_steps = 0
                    step_loss.zero_()
                    if self.dist.any(self._stop):
                        self.save()
                        raise Preempted(f"SIGTERM: checkpoint saved at step {self.pos.step}; run again to resume")
                    if self.pos.step == self.total_steps:
                        break
                    if args.save_every and self.pos.step % args.save_every == 0:
                        self.save()
                else:
                    self.pos.epoch += 1
                    self.pos.batch = 0
            seconds = time.perf_counter() - t0
            if resumed is None or resumed < self.total_steps:
                self.save()  # the end state: running the same command again finds the work done
        finally:
            signal.signal(signal.SIGTERM, previous)
        self.model.eval()
        return TrainResult(self.pos.step, last_loss, seconds, sequences, resumed)

    def _optimizer_step(self) -> None:
        if self.args.max_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.args.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.pos.step += 1


def log_train_summary(log: DLLogger, result: TrainResult, e2e_seconds: float) -> None:
    data: dict[str, Any] = {"e2e_train_time": e2e_seconds, "raw_train_time": result.train_seconds}
    if result.sequences:
        data["training_sequences_per_second"] = result.sequences / max(result.train_seconds, 1e-9)
    if result.final_loss is not None:
        data["final_loss"] = result.final_loss
    log.log([], data)

