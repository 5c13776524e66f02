"""Pick, on validation, how much to trust the MLP's logits and naive Bayes' scores.

The served logits are `scale * mlp + nb_weight * nb`. Both numbers minimise validation log-loss:
it is convex in them (a log-sum-exp of a linear map), so the optimum is unique and a few L-BFGS
steps find it, and it is far less noisy than validation accuracy, where one post of 20 Newsgroups'
1,131 is 0.09 points. The scale is temperature scaling (Guo et al., 2017): without naive Bayes it
leaves every prediction's label alone and only makes the reported probabilities honest.
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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_blend(logits: np.ndarray, nb_scores: np.ndarray | None, y: np.ndarray) -> Blend:
    """Minimise validation log-loss over (scale, nb_weight); nb_weight stays 0 without NB scores."""
    logits = logits.astype(np.float64)
    nb = np.zeros_like(logits) if nb_scores is None else nb_scores.astype(np.float64)
    rows = np.arange(len(y))

    def loss_and_grad(params: np.ndarray) -> tuple[float, np.ndarray]:
        z = params[0] * logits + params[1] * nb
        p = softmax(z, axis=1)
        loss = -float(log_softmax(z, axis=1)[rows, y].mean())
        grads = [float(((p * s).sum(1) - s[rows, y]).mean()) for s in (logits, nb)]
        return loss, np.array(grads)

    nb_bounds = NB_WEIGHT_BOUNDS if nb_scores is not None else (0.0, 0.0)
    found = minimize(
        loss_and_grad,
        x0=np.array([1.0, 0.0]),
        jac=True,
        method="L-BFGS-B",
        bounds=[SCALE_BOUNDS, nb_bounds],
    )
    before = loss_and_grad(np.array([1.0, 0.0]))[0]
    scale, nb_weight = (float(v) for v in found.x)
    return Blend(scale, nb_weight, before, float(found.fun))
