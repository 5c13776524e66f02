"""Optimiser for the sparse first layer: lazy Adam with decoupled weight decay.

Only the rows of the terms present in a batch get a gradient, and only those rows are read and
written: that is what makes a hundred-thousand-term input layer cheap to train. Unlike
`torch.optim.SparseAdam` it also applies AdamW's decoupled weight decay (to the same rows: "lazy"
decay, as in TensorFlow Addons' LazyAdam). Decay keeps the weights of rare terms small, which is
where a bag-of-words model overfits. The update works on gathered dense rows rather than on sparse
tensors, which is several times faster on CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch


class LazyAdamW(torch.optim.Optimizer):
    """Adam(W) for parameters whose gradients are row-sparse COO tensors."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        if lr <= 0 or eps <= 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(
                f"invalid LazyAdamW settings: {lr=}, {betas=}, {eps=}, {weight_decay=}"
            )
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        super().__init__(list(params), defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, group)
        return loss

    def _update(self, p: torch.Tensor, group: dict[str, Any]) -> None:
        grad = p.grad
        assert grad is not None
        if not grad.is_sparse:
            raise RuntimeError("LazyAdamW expects sparse gradients (use Adam/AdamW otherwise)")
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        grad = grad.coalesce()
        rows, values = grad.indices()[0], grad.values()
        exp_avg = state["exp_avg"].index_select(0, rows).lerp_(values, 1 - beta1)
        exp_avg_sq = state["exp_avg_sq"].index_select(0, rows)
        exp_avg_sq.mul_(beta2).addcmul_(values, values, value=1 - beta2)
        state["exp_avg"].index_copy_(0, rows, exp_avg)
        state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)
        step = state["step"]
        bias1, bias2 = 1 - beta1**step, 1 - beta2**step
        denom = exp_avg_sq.sqrt_().div_(math.sqrt(bias2)).add_(group["eps"])
        weights = p.index_select(0, rows)
        if group["weight_decay"]:
            weights.mul_(1 - group["lr"] * group["weight_decay"])
        weights.addcdiv_(exp_avg, denom, value=-group["lr"] / bias1)
        p.index_copy_(0, rows, weights)
