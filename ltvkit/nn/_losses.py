"""Zero-inflated lognormal (ZILN) likelihood pieces shared by ltvkit's deep models.

Everything here is a plain function on torch tensors, broadcasting like torch does,
so the same code serves ZILN (one distribution per customer, shape ``(n,)``) and
mixture models such as OptDist (``L`` sub-distributions per customer, parameters of
shape ``(n, L)`` against targets of shape ``(n, 1)``).

Conventions: ``logit`` is the logit of ``p = P(y > 0)``; ``mu`` and ``sigma`` are the
location and scale of ``log(y)`` given ``y > 0``; ``sigma`` must already be positive
(models map their raw output through softplus with a floor, see
:func:`bounded_sigma`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "bounded_mu",
    "bounded_sigma",
    "inverse_bounded_sigma",
    "lognormal_log_mean",
    "lognormal_nll",
    "ziln_log_mean",
    "ziln_mean",
    "ziln_nll",
    "ziln_quantile",
]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)

#: The reference implementation's floor on sigma: sqrt(keras epsilon) = sqrt(1e-7).
SIGMA_FLOOR = math.sqrt(1e-7)


def lognormal_nll(y: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Negative log density of a lognormal, ``-log LogNormal(y; mu, sigma)``, elementwise.

    Parameters
    ----------
    y : Tensor
        Strictly positive values, broadcastable against ``mu``.
    mu, sigma : Tensor
        Location and (positive) scale of ``log(y)``.

    Returns
    -------
    Tensor
        The broadcast shape of the inputs.

    Examples
    --------
    >>> import torch
    >>> round(float(lognormal_nll(torch.tensor(1.0), torch.tensor(0.0), torch.tensor(1.0))), 4)
    0.9189
    """
    log_y = torch.log(y)
    z = (log_y - mu) / sigma
    return log_y + torch.log(sigma) + _HALF_LOG_2PI + 0.5 * z * z


def ziln_nll(
    y: torch.Tensor, logit: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor
) -> torch.Tensor:
    """Per-sample ZILN loss of Wang, Liu & Miao (2019), as in google/lifetime_value.

    ``BCE(logit, 1[y > 0]) + 1[y > 0] * (-log LogNormal(y; mu, sigma))``, elementwise,
    without any reduction. Averaging it over a batch gives exactly the reference
    ``zero_inflated_lognormal_loss`` (which Keras averages over the batch).

    Parameters
    ----------
    y : Tensor
        Non-negative targets. Must broadcast against the parameters: shape ``(n,)``
        for parameters of shape ``(n,)``; ``(n, 1)`` for per-sub-distribution
        parameters of shape ``(n, L)`` (then the result is the matrix of losses
        ``L[u, i]``).
    logit, mu, sigma : Tensor
        Logit of ``P(y > 0)``, location and positive scale of ``log(y) | y > 0``.

    Returns
    -------
    Tensor
        Per-sample (per-sub-distribution) losses, the broadcast shape of the inputs.

    Examples
    --------
    >>> import torch
    >>> y = torch.tensor([0.0, 2.0])
    >>> ziln_nll(y, torch.zeros(2), torch.zeros(2), torch.ones(2)).shape
    torch.Size([2])
    """
    positive = (y > 0).to(logit.dtype)
    y_b, logit_b = torch.broadcast_tensors(positive * y, logit)
    positive_b = torch.broadcast_to(positive, y_b.shape)
    bce = F.binary_cross_entropy_with_logits(logit_b, positive_b, reduction="none")
    # zeros get a dummy label 1 so log(y) stays finite; their term is multiplied by 0
    safe_y = torch.where(positive_b > 0, y_b, torch.ones_like(y_b))
    return bce + positive_b * lognormal_nll(safe_y, mu, sigma)


def lognormal_log_mean(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Log of the lognormal mean, ``mu + sigma**2 / 2``.

    Work with this instead of ``exp(mu + sigma**2 / 2)`` until the very end: the mean
    itself overflows float32 for ``mu + sigma**2 / 2 > 88``.

    Examples
    --------
    >>> import torch
    >>> float(lognormal_log_mean(torch.tensor(1.0), torch.tensor(2.0)))
    3.0
    """
    return mu + 0.5 * sigma * sigma


def ziln_log_mean(logit: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Log of the ZILN mean, ``log(p) + mu + sigma**2 / 2``, computed stably.

    Examples
    --------
    >>> import torch
    >>> round(float(ziln_log_mean(torch.tensor(0.0), torch.tensor(0.0), torch.tensor(0.0))), 4)
    -0.6931
    """
    return F.logsigmoid(logit) + lognormal_log_mean(mu, sigma)


def ziln_mean(logit: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """ZILN mean ``p * exp(mu + sigma**2 / 2)``, evaluated in log space.

    Examples
    --------
    >>> import torch
    >>> round(float(ziln_mean(torch.tensor(0.0), torch.tensor(0.0), torch.tensor(0.0))), 4)
    0.5
    """
    return torch.exp(ziln_log_mean(logit, mu, sigma))


def ziln_quantile(
    logit: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, q: torch.Tensor
) -> torch.Tensor:
    """Exact quantile function of the zero-inflated lognormal.

    ``Q(q) = 0`` when ``q <= 1 - p``, else the lognormal quantile of
    ``(q - (1 - p)) / p``: ``exp(mu + sigma * Phi^-1((q - 1 + p) / p))``.

    Parameters
    ----------
    logit, mu, sigma : Tensor
        Distribution parameters, broadcastable against ``q``.
    q : Tensor
        Probability levels in ``[0, 1]`` (1 gives ``inf``).

    Returns
    -------
    Tensor
        The broadcast shape. Use float64 inputs for accurate extreme quantiles.

    Examples
    --------
    >>> import torch
    >>> p_half = torch.tensor(0.0)  # logit 0: p = 0.5
    >>> ziln_quantile(p_half, torch.tensor(0.0), torch.tensor(1.0), torch.tensor([0.25, 0.75]))
    tensor([0., 1.])
    """
    p = torch.sigmoid(logit)
    # conditional level within the positive part; clamp keeps ndtri's argument in [0, 1]
    level = ((q - (1.0 - p)) / p).clamp(0.0, 1.0)
    positive_q = torch.exp(mu + sigma * torch.special.ndtri(level))
    return torch.where(q > 1.0 - p, positive_q, torch.zeros_like(positive_q))


def bounded_sigma(raw: torch.Tensor, sigma_max: float, floor: float = SIGMA_FLOOR) -> torch.Tensor:
    """Map a raw network output to ``sigma`` in ``(floor, sigma_max)``.

    ``softplus(raw)`` (the reference parameterization) followed by a smooth saturation
    ``floor + c * tanh(softplus(raw) / c)`` with ``c = sigma_max - floor``. For
    ``sigma`` well below ``sigma_max`` this is the reference mapping (the relative
    error is below 4% up to ``sigma = sigma_max / 3``); near the bound it saturates
    smoothly, so unlike a hard clamp the gradient does not drop to zero the moment the
    bound is reached and a customer pushed against it can come back.

    Examples
    --------
    >>> import torch
    >>> float(bounded_sigma(torch.tensor(100.0), sigma_max=2.0)) <= 2.0
    True
    """
    span = sigma_max - floor
    return floor + span * torch.tanh(F.softplus(raw) / span)


def inverse_bounded_sigma(sigma: float, sigma_max: float, floor: float = SIGMA_FLOOR) -> float:
    """Raw value whose :func:`bounded_sigma` is ``sigma`` (used to initialise head biases).

    Examples
    --------
    >>> import torch
    >>> raw = inverse_bounded_sigma(1.0, sigma_max=2.0)
    >>> round(float(bounded_sigma(torch.tensor(raw), sigma_max=2.0)), 6)
    1.0
    """
    span = sigma_max - floor
    target = min(max(sigma, floor * 2), sigma_max - 1e-3 * span) - floor
    s = span * math.atanh(target / span)  # softplus(raw) = s
    return s + math.log(-math.expm1(-s))  # inverse softplus


def bounded_mu(raw: torch.Tensor, center: float, half_width: float) -> torch.Tensor:
    """Map a raw output to ``mu`` in ``(center - half_width, center + half_width)``.

    ``center + half_width * tanh(raw / half_width)``: the identity around ``center`` (a
    raw output of 0 means ``mu = center``), saturating smoothly at the bounds. Models
    centre it on the mean of ``log(y)`` over the positive training labels, so the head
    starts at a sensible value and cannot extrapolate a median spend far beyond the
    range seen in training.

    Examples
    --------
    >>> import torch
    >>> float(bounded_mu(torch.tensor(0.0), center=3.0, half_width=5.0))
    3.0
    """
    return center + half_width * torch.tanh(raw / half_width)


#: The lower bound on mu sits this far (in log units) below log(min positive label).
MU_MARGIN_LOW = 1.0


@dataclass(frozen=True)
class ZILNLabelStats:
    """Weighted label statistics that start and bound a ZILN head (ZILN, OptDist).

    Examples
    --------
    >>> stats = ZILNLabelStats.from_labels(np.array([0.0, 1.0, np.e]))
    >>> stats.log_range
    (0.0, 1.0)
    >>> sorted(stats.head_init(sigma_max=2.0))
    ['init_logit', 'init_mu', 'init_sigma', 'mu_high', 'mu_low', 'sigma_max']
    """

    positive_rate: float
    log_range: tuple[float, float]
    log_mean: float
    log_std: float

    @classmethod
    def from_labels(cls, y: np.ndarray, sample_weight: np.ndarray | None = None) -> ZILNLabelStats:
        """Compute the statistics (sample weights are frequency weights)."""
        positive = y > 0
        if sample_weight is None:
            # the same numbers as with unit weights, without full-length float copies
            # (a streaming fit on tens of millions of rows holds y and little else)
            log_pos = np.log(y[positive])
            return cls(
                float(positive.mean()),
                (float(log_pos.min()), float(log_pos.max())),
                float(log_pos.mean()),
                float(log_pos.std()),
            )
        w = sample_weight
        log_pos = np.log(y[positive])
        w_pos = w[positive]
        rate = float(np.average(positive, weights=w)) if w.sum() > 0 else 0.5
        if w_pos.sum() > 0:
            mean = float(np.average(log_pos, weights=w_pos))
            std = float(np.sqrt(np.average((log_pos - mean) ** 2, weights=w_pos)))
        else:
            mean, std = float(log_pos.mean()), float(log_pos.std())
        return cls(rate, (float(log_pos.min()), float(log_pos.max())), mean, std)

    def head_init(self, sigma_max: float) -> dict[str, float]:
        """Keyword arguments for a ZILN head: mu bounds, sigma cap and starting values."""
        rate = min(max(self.positive_rate, 1e-3), 1 - 1e-3)
        lo, hi = self.log_range
        return {
            "mu_low": lo - MU_MARGIN_LOW,
            "mu_high": hi,
            "sigma_max": float(sigma_max),
            "init_logit": math.log(rate / (1 - rate)),
            "init_mu": self.log_mean,
            "init_sigma": min(max(self.log_std, 0.1), 0.9 * float(sigma_max)),
        }
