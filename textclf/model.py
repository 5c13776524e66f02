"""The classifier: a plain `nn.Module` built from a config dataclass (as nanoGPT's `model.py`).

TF-IDF vocabularies run to hundreds of thousands of terms, so the first layer never sees a dense
batch: it multiplies the sparse CSR batch by its weight directly, and in training it touches only
the rows of the terms present in the batch, so its gradient is row-sparse and the optimiser updates
those rows alone. The later layers are ordinary `nn.Linear`.

With `config.wide`, the first layer has `n_labels` more columns whose output goes straight to the
logits: a linear term of the features, as in Wide & Deep. Training sets those columns in closed
form from naive Bayes (`textclf/naive_bayes.py`), weighted on validation, because the two models
err on different posts. Sharing the first layer's product makes the term nearly free to serve: one
sparse product 148 columns wide costs what a 128-wide one does, where a second product would add
~6 us to every batch.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from textclf.config import ModelConfig


class SparseLinear(nn.Module):
    """`nn.Linear` for sparse input: y = x W^T + b.

    The weight is stored transposed, (in_features, out_features), so that one term is one row:
    gathering rows with `F.embedding(sparse=True)` gives a row-sparse gradient, which
    `textclf.optim.LazyAdamW` updates row by row.
    Initialised like `nn.Linear` (uniform in +-1/sqrt(in_features)).
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.empty(out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled() or not self.weight.requires_grad:
            return torch.sparse.mm(x, self.weight) + self.bias
        # Training: multiply by the gathered rows only, so the weight's gradient is row-sparse.
        used, local = torch.unique(x.col_indices(), return_inverse=True)
        rows = F.embedding(used, self.weight, sparse=True)
        local_x = torch.sparse_csr_tensor(
            x.crow_indices(),
            local,
            x.values(),
            size=(x.shape[0], used.numel()),
            check_invariants=False,
        )
        return torch.sparse.mm(local_x, rows) + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, sparse input"


class MLP(nn.Module):
    """TF-IDF -> SparseLinear -> ReLU -> dropout -> [Linear -> ReLU -> dropout]* -> logits.

    With `config.wide`, the first layer's last `n_labels` outputs skip the rest and are added to
    the logits. With `config.n_bigrams`, the input's last columns (word pairs) bypass the network:
    `pairs @ bigrams`, a naive Bayes term set in closed form, is added to the logits.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        widths = [config.n_features, *config.hidden]
        self.n_wide = config.n_labels if config.wide else 0
        self.n_bigrams = config.n_bigrams
        self.input = SparseLinear(widths[0] - self.n_bigrams, widths[1] + self.n_wide)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths[1:]))
        self.output = nn.Linear(widths[-1], config.n_labels)
        # Dropout masks come from this generator when one is set (else torch's global one), so
        # two models can train side by side in threads, each reproducibly (`textclf/train.py`).
        self.generator: torch.Generator | None = None
        # Naive Bayes weights of the word pairs, set in closed form (never trained): a buffer.
        self.bigrams: torch.Tensor | None
        bigrams = torch.zeros(self.n_bigrams, config.n_labels) if self.n_bigrams else None
        self.register_buffer("bigrams", bigrams)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.n_bigrams:
            x, pairs = split_columns(x, x.shape[1] - self.n_bigrams)
            return self._forward(x) + torch.sparse.mm(pairs, self.bigrams)
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and not torch.is_grad_enabled():
            return self._infer(x)
        first = self.input(x)
        deep = first[:, : -self.n_wide] if self.n_wide else first  # no slicing on the usual path
        h = self._dropout(F.relu(deep))
        for layer in self.hidden:
            h = self._dropout(F.relu(layer(h)))
        logits = self.output(h)
        return logits + first[:, -self.n_wide :] if self.n_wide else logits

    def _infer(self, x: torch.Tensor) -> torch.Tensor:
        """`forward` without dropout, in functional ops on the same parameters.

        Serving scores a text or a few at a time, where each module call and each separate bias
        add is dispatch overhead, not arithmetic: this takes a one-text forward pass from ~20 to
        ~10 us. Gradients never come through here (only with autograd off)."""
        n_wide, weight, bias = self.n_wide, self.input.weight, self.input.bias
        if x.device.type == "cpu":
            first = torch.addmm(bias, x, weight)  # the bias add fused into the sparse product
        else:
            first = torch.sparse.mm(x, weight) + bias
        h = F.relu(first[:, :-n_wide] if n_wide else first)
        for layer in self.hidden:
            h = F.relu(layer(h))
        out = self.output
        if not n_wide:
            return F.linear(h, out.weight, out.bias)
        return torch.addmm(first[:, -n_wide:], h, out.weight.t()).add_(out.bias)

    def _dropout(self, h: torch.Tensor) -> torch.Tensor:
        p = self.config.dropout
        if not self.training or p == 0.0:
            return h
        keep = torch.empty_like(h).bernoulli_(1.0 - p, generator=self.generator)
        return h * keep / (1.0 - p)

    def sparse_parameters(self) -> list[nn.Parameter]:
        """Parameters with row-sparse gradients (`textclf.optim.LazyAdamW` steps them)."""
        return [self.input.weight]

    def dense_parameters(self) -> list[nn.Parameter]:
        sparse = {id(p) for p in self.sparse_parameters()}
        return [p for p in self.parameters() if id(p) not in sparse]


def split_columns(x: torch.Tensor, at: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A sparse CSR batch as two: its columns before `at`, and those from `at` on (renumbered
    from 0). Rows keep their entries' order."""
    crow, col, val = x.crow_indices(), x.col_indices(), x.values()
    left = col < at
    before = torch.cat([crow.new_zeros(1), torch.cumsum(left, 0)])[crow]  # left entries per row
    parts = []
    for mask, starts, shift, width in (
        (left, before, 0, at),
        (~left, crow - before, at, x.shape[1] - at),
    ):
        parts.append(
            torch.sparse_csr_tensor(
                starts,
                col[mask] - shift,
                val[mask],
                size=(x.shape[0], width),
                check_invariants=False,
            )
        )
    return parts[0], parts[1]
