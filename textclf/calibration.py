"""Pick, on validation, how much to trust the MLP's logits and naive Bayes' scores.

The served logits are `scale * mlp + nb_weight * nb (+ bigram_weight * nb over word pairs)`.
The numbers minimise validation log-loss: it is convex in them (a log-sum-exp of a linear map),
so the optimum is unique and a few L-BFGS steps find it, and it is far less noisy than
validation accuracy, where one post of 20 Newsgroups' 1,131 is 0.09 points. The scale is
temperature scaling (Guo et al., 2017): without naive Bayes it leaves every prediction's label
alone and only makes the reported probabilities honest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax

# Bounds keep a degenerate validation split (e.g. perfectly separated) from sending either
# number to infinity.
SCALE_BOUNDS = (0.05, 20.0)
NB_WEIGHT_BOUNDS = (0.0, 20.0)


@dataclass(frozen=True)
class Blend:
    scale: float
    nb_weight: float
    val_loss_before: float
    val_loss_after: float
    bigram_weight: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_blend(
    logits: np.ndarray,
    nb_scores: np.ndarray | None,
    y: np.ndarray,
    bigram_scores: np.ndarray | None = None,
) -> Blend:
    """Minimise validation log-loss over (scale, nb_weight, bigram_weight); a weight stays 0
    without its scores. The loss is convex in all three, so the optimum is still unique."""
    logits = logits.astype(np.float64)
    terms = [logits] + [
        np.zeros_like(logits) if s is None else s.astype(np.float64)
        for s in (nb_scores, bigram_scores)
    ]
    rows = np.arange(len(y))

    def loss_and_grad(params: np.ndarray) -> tuple[float, np.ndarray]:
        z = sum(w * t for w, t in zip(params, terms, strict=True))
        p = softmax(z, axis=1)
        loss = -float(log_softmax(z, axis=1)[rows, y].mean())
        grads = [float(((p * t).sum(1) - t[rows, y]).mean()) for t in terms]
        return loss, np.array(grads)

    bounds = [SCALE_BOUNDS] + [
        NB_WEIGHT_BOUNDS if s is not None else (0.0, 0.0) for s in (nb_scores, bigram_scores)
    ]
    start = np.array([1.0, 0.0, 0.0])
    found = minimize(loss_and_grad, x0=start, jac=True, method="L-BFGS-B", bounds=bounds)
    before = loss_and_grad(start)[0]
    scale, nb_weight, bigram_weight = (float(v) for v in found.x)
    return Blend(scale, nb_weight, before, float(found.fun), bigram_weight)
