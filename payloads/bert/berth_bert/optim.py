"""Optimisers and the learning-rate schedule: AdamW (fused on CUDA with torch 2) and LAMB."""

from __future__ import annotations

import inspect
import math

import torch
from torch import nn


class Lamb(torch.optim.Optimizer):
    """LAMB (You et al., 2019) as NVIDIA's BERT pretraining uses it: Adam moments, then a per-tensor
    trust ratio ||w|| / ||update|| so large batches train stably. Pure PyTorch, no apex."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.01) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                m_hat = m / (1 - b1 ** state["step"])
                v_hat = v / (1 - b2 ** state["step"])
                update = m_hat / (v_hat.sqrt() + group["eps"])
                if group["weight_decay"]:
                    update.add_(p, alpha=group["weight_decay"])
                w_norm, u_norm = p.norm(), update.norm()
                trust = torch.where((w_norm > 0) & (u_norm > 0), w_norm / u_norm, torch.ones_like(w_norm))
                p.add_(update * trust, alpha=-group["lr"])
        return loss


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """BERT's recipe: no weight decay on biases and LayerNorm weights."""
    decay, no_decay = [], []
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:  # the tied decoder shares the embedding tensor
            continue
        seen.add(id(p))
        (no_decay if name.endswith(".bias") or "LayerNorm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def fused_adamw_available(device: torch.device) -> bool:
    return device.type == "cuda" and "fused" in inspect.signature(torch.optim.AdamW).parameters


def make_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float,
                   device: torch.device) -> torch.optim.Optimizer:
    groups = _param_groups(model, weight_decay)
    if name == "lamb":
        return Lamb(groups, lr=lr)
    kwargs = {"fused": True} if fused_adamw_available(device) else {}
    return torch.optim.AdamW(groups, lr=lr, eps=1e-6, **kwargs)


def linear_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    """Linear warm-up to the peak rate, then linear decay to zero at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def warmup_steps_for(total_steps: int, warmup: float) -> int:
    """``--warmup`` below 1 is a proportion of the run (NVIDIA's convention), else a step count."""
    return int(math.ceil(total_steps * warmup)) if warmup < 1 else int(warmup)
