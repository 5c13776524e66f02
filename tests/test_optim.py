"""LazyAdamW: the same steps as torch's SparseAdam without decay, and decay only where it steps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from textclf.optim import LazyAdamW


def _sparse_grad_step(weight: torch.nn.Parameter, rows: torch.Tensor, seed: int) -> None:
    """One backward pass whose gradient touches only `rows` (as the model's first layer does)."""
    gen = torch.Generator().manual_seed(seed)
    target = torch.randn(rows.numel(), weight.shape[1], generator=gen)
    F.mse_loss(F.embedding(rows, weight, sparse=True), target).backward()


def test_matches_sparse_adam_without_decay() -> None:
    torch.manual_seed(0)
    ours = torch.nn.Parameter(torch.randn(50, 8))
    ref = torch.nn.Parameter(ours.detach().clone())
    # SparseAdam adds eps before bias correction, Adam (and LazyAdamW) after; a tiny eps
    # makes that the only difference vanish, so everything else must agree.
    opt_ours = LazyAdamW([ours], lr=0.01, eps=1e-12)
    opt_ref = torch.optim.SparseAdam([ref], lr=0.01, eps=1e-12)
    for step in range(5):
        rows = torch.randperm(50, generator=torch.Generator().manual_seed(step))[:20]
        for param, opt in ((ours, opt_ours), (ref, opt_ref)):
            opt.zero_grad()
            _sparse_grad_step(param, rows, step)
            opt.step()
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


def test_decay_and_updates_touch_only_the_rows_in_the_batch() -> None:
    weight = torch.nn.Parameter(torch.ones(10, 4))
    opt = LazyAdamW([weight], lr=0.1, weight_decay=0.5)
    rows = torch.tensor([1, 3])
    _sparse_grad_step(weight, rows, seed=0)
    opt.step()
    untouched = [i for i in range(10) if i not in (1, 3)]
    assert torch.equal(weight[untouched], torch.ones(8, 4))
    assert not torch.equal(weight[rows], torch.ones(2, 4))


def test_decay_shrinks_rows_when_the_gradient_is_zero() -> None:
    weight = torch.nn.Parameter(torch.ones(4, 2))
    opt = LazyAdamW([weight], lr=0.1, weight_decay=0.5)
    weight.grad = torch.sparse_coo_tensor(
        torch.tensor([[2]]), torch.zeros(1, 2), (4, 2), check_invariants=True
    )
    opt.step()
    assert torch.allclose(weight[2], torch.full((2,), 0.95))
    assert torch.equal(weight[0], torch.ones(2))


def test_dense_gradients_are_refused() -> None:
    weight = torch.nn.Parameter(torch.ones(3, 2))
    weight.grad = torch.ones(3, 2)
    with pytest.raises(RuntimeError, match="sparse gradients"):
        LazyAdamW([weight]).step()


@pytest.mark.parametrize("bad", [{"lr": 0.0}, {"weight_decay": -1.0}, {"betas": (1.0, 0.9)}])
def test_invalid_settings_are_refused(bad: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match="invalid LazyAdamW settings"):
        LazyAdamW([torch.nn.Parameter(torch.ones(2, 2))], **bad)
