"""MDME and ODMN: Li et al., "Billion-user Customer Lifetime Value Prediction", CIKM 2022.

**MDME** (Multi Distribution Multi Experts, paper §3.3) models one LTV target by divide
and conquer: the value range is cut into *sub-distributions* (by default: zero spend, a
body and a whale tail), each sub-distribution into equal-frequency *buckets*, and a bias
inside the chosen bucket gives the fine value. Its towers:

- Distribution Segmentation Module (DSM): Distribution Classification Tower (DCT, softmax
  over sub-distributions) and Distribution Ordinal Tower (DOT, sigmoid outputs
  ``P(sub-distribution > u)``, ordinal-regression loss eq. 9), whose estimate is a soft
  label distilled into the DCT with weight ``subdistribution_distill_weight`` (the
  paper's beta).
- One Sub-Distribution Modeling Module (SDM) per sub-distribution: Bucket Classification
  Tower (BCT), Bucket Ordinal Tower (BOT, distilled into the BCT with weight
  ``bucket_distill_weight``, the paper's gamma) and Bucket Bias Tower (BBT, sigmoid, MSE
  on the min-max normalized position of ``y`` inside its bucket). *Sample isolation*: the
  DSM learns from every row, an SDM only from the rows of its sub-distribution, a bias
  output only from the rows of its bucket.

**ODMN** (Order Dependency Monotonic Network, §3.1, 3.4, 3.5) predicts T cumulative
horizons at once: a shared bottom, one MDME head per horizon, *Mono Units* (MLPs with
non-negative weights) that feed horizon ``t - 1``'s normalized bucket multinomial
(stop-gradient) into the DCT and BCT logits of horizon ``t`` (eqs. 2-3), and the ordered
dependency calibration loss ``calibration_weight * mean(max(y_t - y_{t+1}, 0))`` (eq. 12,
the paper's alpha).

Everything per batch is tensor algebra: all towers of all horizons run as one batched
tower bank (:class:`~ltvkit.nn._layers.MLPBank`, one matmul per layer),
sub-distributions and buckets are padded to common sizes with validity masks, and sample
isolation is a gather at the row's own sub-distribution and bucket. The only Python loop
in ``forward`` runs over the T horizons of ODMN, which depend on each other sequentially
through the Mono Units.
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ltvkit._utils import (
    Boolean,
    Increasing,
    Instance,
    Int,
    Options,
    PerLevel,
    Real,
    Units,
    check_quantile_levels,
    inverted_cdf_quantile,
)
from ltvkit.nn._base import BaseDeepRegressor, PreparedTargets
from ltvkit.nn._encoder import EncodedSpec
from ltvkit.nn._layers import MLPBank, SharedBottom
from ltvkit.preprocessing import LTVBucketizer

__all__ = [
    "MDMEHead",
    "MDMELoss",
    "MDMEModule",
    "MDMERegressor",
    "MonoUnit",
    "ODMNRegressor",
    "ordinal_class_proba",
    "ordinal_loss",
]

# Logit given to padded (non-existent) sub-distributions and buckets: exp() of it is an
# exact 0 in float32, and unlike -inf it never produces 0 * inf = NaN in a loss.
_MASKED_LOGIT = -1e9
# Floor of the class frequencies used to initialise the classification biases.
_PRIOR_FLOOR = 1e-3


# ----------------------------------------------------------------------------- losses
def ordinal_loss(logits: torch.Tensor, label: torch.Tensor, n_valid: torch.Tensor) -> torch.Tensor:
    """Ordinal-regression loss of the paper's eq. 9, one value per row.

    ``-(sum_{u < label} log P^u + sum_{label <= u < U} log(1 - P^u))`` with
    ``P^u = sigmoid(logits[..., u]) = P(class > u)``: the binary cross-entropies of the
    ``U = n_classes - 1`` threshold outputs against the targets ``1[u < label]``.

    Parameters
    ----------
    logits : Tensor of shape (..., U_max)
        Threshold logits, padded to a common ``U_max``.
    label : Tensor of int64 of shape (...)
        True class, in ``[0, n_valid]``.
    n_valid : Tensor of int64 broadcastable to ``label``
        Number of real thresholds (classes - 1); outputs beyond it are padding.

    Returns
    -------
    Tensor of shape (...)

    Examples
    --------
    >>> loss = ordinal_loss(torch.zeros(2, 3), torch.tensor([0, 3]), torch.tensor(3))
    >>> [round(v, 4) for v in loss.tolist()]  # 3 * log(2) each
    [2.0794, 2.0794]
    """
    u = torch.arange(logits.shape[-1], device=logits.device)
    target = (u < label.unsqueeze(-1)).to(logits.dtype)
    valid = (u < torch.as_tensor(n_valid, device=logits.device).unsqueeze(-1)).to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (bce * valid).sum(-1)


def ordinal_class_proba(logits: torch.Tensor, n_valid: torch.Tensor) -> torch.Tensor:
    """Class distribution implied by ordinal threshold outputs (the distillation soft label).

    With ``c_u = P(class > u) = sigmoid(logits[..., u])`` made non-increasing in ``u``
    (running minimum; the towers are not constrained to be consistent) and ``c_{-1} = 1``,
    ``c_U = 0``: ``P(class = k) = c_{k-1} - c_k``. Padded thresholds count as
    ``P = 0``, so padded classes get probability 0.

    Parameters
    ----------
    logits : Tensor of shape (..., U_max)
    n_valid : Tensor of int64 broadcastable to ``logits.shape[:-1]``

    Returns
    -------
    Tensor of shape (..., U_max + 1)
        Non-negative, sums to 1 over the last axis.

    Examples
    --------
    >>> p = ordinal_class_proba(torch.tensor([[0.0, -50.0]]), torch.tensor(2))
    >>> [round(v, 3) for v in p[0].tolist()]
    [0.5, 0.5, 0.0]
    """
    u = torch.arange(logits.shape[-1], device=logits.device)
    valid = u < torch.as_tensor(n_valid, device=logits.device).unsqueeze(-1)
    c = torch.where(valid, torch.sigmoid(logits), torch.zeros_like(logits))
    if c.shape[-1]:
        c = torch.cummin(c, dim=-1).values
    ones = torch.ones_like(c[..., :1])
    upper = torch.cat([ones, c], dim=-1)
    lower = torch.cat([c, torch.zeros_like(ones)], dim=-1)
    return upper - lower


# ----------------------------------------------------------------------------- modules
class _NonNegativeMLPBank(MLPBank):
    """An :class:`~ltvkit.nn._layers.MLPBank` whose weights are ``softplus(V)`` (Mono Units).

    Every weight is ``softplus`` of an unconstrained parameter ``V`` (biases stay free),
    which makes each output a non-decreasing function of each input (ReLU is monotone).
    ``V`` starts at ``softplus^-1(|w|)`` of the default initialisation ``w``.
    """

    def reset_parameters(self) -> None:
        super().reset_parameters()
        with torch.no_grad():
            for v in self.weights:
                # start from |default init|: softplus^-1(|w|) = log(expm1(|w|))
                v.copy_(torch.log(torch.expm1(v.abs().clamp_min(1e-4))))

    def layer_weight(self, k: int) -> torch.Tensor:
        return F.softplus(self.weights[k])


class MonoUnit(nn.Module):
    """ODMN's Mono Units for one downstream horizon (paper §3.4, eqs. 2-3).

    ``S + 1`` MLPs with non-negative weights (``softplus`` reparameterisation, so the
    constraint holds exactly at every step without projection) map the upstream
    horizon's normalized bucket multinomial ``o_{t-1}`` to additive terms for the
    downstream DCT logits (unit 0) and for each of the ``S`` BCT logits (units 1..S).
    Each output is non-decreasing in every upstream bucket probability.

    Parameters
    ----------
    n_inputs : int
        Length of ``o_{t-1}`` (padded number of buckets of the upstream horizon).
    n_subdistributions : int
        ``S`` of the downstream horizon (padded).
    n_buckets : int
        Largest number of buckets of a downstream sub-distribution (padded).
    hidden_units : sequence of int, default=()
        ``()``: a non-negative linear map (the paper's "linear transformation").

    Examples
    --------
    >>> unit = MonoUnit(6, n_subdistributions=3, n_buckets=2)
    >>> dct, bct = unit(torch.full((4, 6), 1 / 6))
    >>> dct.shape, bct.shape
    (torch.Size([4, 3]), torch.Size([4, 3, 2]))
    """

    def __init__(
        self,
        n_inputs: int,
        n_subdistributions: int,
        n_buckets: int,
        hidden_units: Sequence[int] = (),
    ) -> None:
        super().__init__()
        self.n_subdistributions = int(n_subdistributions)
        self.n_buckets = int(n_buckets)
        self.bank = _NonNegativeMLPBank(
            self.n_subdistributions + 1,
            n_inputs,
            hidden_units,
            max(self.n_subdistributions, self.n_buckets),
        )

    def forward(self, o_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.bank(o_prev)
        return out[:, 0, : self.n_subdistributions], out[:, 1:, : self.n_buckets]


class MDMEHead(nn.Module):
    """MDME towers for ``T`` horizons on a shared representation ``h`` (+ ODMN Mono Units).

    Sub-distributions and buckets are padded to ``S`` and ``m`` (the largest counts over
    horizons); ``bucket_valid`` marks the real ones. All towers of all horizons form one
    :class:`~ltvkit.nn._layers.MLPBank`; per horizon the roles are DCT (``S`` logits),
    DOT (``S - 1``), ``S`` BCTs (``m`` each), ``S`` BOTs (``m - 1``) and ``S`` BBTs (``m``).

    Parameters
    ----------
    in_features : int
        Width of ``h``.
    bucket_lower, bucket_width : array of shape (T, S, m)
        Left boundary and width of every (padded) bucket.
    bucket_valid : bool array of shape (T, S, m)
    tower_units : sequence of int, default=(16,)
        Hidden widths of every tower.
    dropout : float, default=0.0
    ordinal : bool, default=True
        Build the DOT and BOT towers (ordinal distillation).
    bias : bool, default=True
        Build the BBT towers; without them a bucket's value is its midpoint (NM, NMO).
    mono : bool, default=False
        Link horizon ``t - 1`` to horizon ``t`` with :class:`MonoUnit` (ODMN).
    mono_hidden_units : sequence of int, default=()
        Hidden widths of the Mono Units.

    Examples
    --------
    >>> lower = np.array([[[0.0, 0.0], [0.0, 5.0]]])
    >>> width = np.array([[[0.0, 0.0], [5.0, 5.0]]])
    >>> valid = np.array([[[True, False], [True, True]]])
    >>> head = MDMEHead(4, lower, width, valid)
    >>> out = head(torch.zeros(3, 4))
    >>> out["expected"].shape, out["log_q"].shape
    (torch.Size([3, 1]), torch.Size([3, 1, 2, 2]))
    """

    def __init__(
        self,
        in_features: int,
        bucket_lower: np.ndarray,
        bucket_width: np.ndarray,
        bucket_valid: np.ndarray,
        *,
        tower_units: Sequence[int] = (16,),
        dropout: float = 0.0,
        ordinal: bool = True,
        bias: bool = True,
        mono: bool = False,
        mono_hidden_units: Sequence[int] = (),
    ) -> None:
        super().__init__()
        valid = torch.as_tensor(np.asarray(bucket_valid, dtype=bool))
        n_horizons, n_sub, n_bkt = valid.shape
        self.n_horizons, self.n_sub, self.n_bkt = int(n_horizons), int(n_sub), int(n_bkt)
        self.ordinal, self.bias = bool(ordinal), bool(bias)
        self.register_buffer("bucket_valid", valid)
        self.register_buffer("sub_valid", valid.any(-1))
        self.register_buffer("n_buckets", valid.sum(-1))  # (T, S)
        self.register_buffer("n_subs", self.sub_valid.sum(-1))  # (T,)
        self.register_buffer(
            "bucket_lower", torch.as_tensor(np.asarray(bucket_lower, dtype=np.float32))
        )
        self.register_buffer(
            "bucket_width", torch.as_tensor(np.asarray(bucket_width, dtype=np.float32))
        )
        # tower roles of one horizon, in the order of the bank
        roles = [("dct", 1)]
        if self.ordinal:
            roles.append(("dot", 1))
        roles.append(("bct", self.n_sub))
        if self.ordinal:
            roles.append(("bot", self.n_sub))
        if self.bias:
            roles.append(("bbt", self.n_sub))
        self._slices: dict[str, tuple[int, int]] = {}
        start = 0
        for name, count in roles:
            self._slices[name] = (start, start + count)
            start += count
        self.n_roles = start
        self.towers = MLPBank(
            self.n_horizons * self.n_roles,
            in_features,
            tower_units,
            max(self.n_sub, self.n_bkt, 1),
            dropout=dropout,
        )
        self.mono = (
            nn.ModuleList(
                MonoUnit(self.n_sub * self.n_bkt, self.n_sub, self.n_bkt, mono_hidden_units)
                for _ in range(self.n_horizons - 1)
            )
            if mono
            else None
        )

    def tower_bias(self, role: str, horizon: int) -> torch.Tensor:
        """The output-layer bias rows of one role of one horizon (for initialisation)."""
        lo, hi = self._slices[role]
        base = horizon * self.n_roles
        return self.towers.biases[-1][base + lo : base + hi]

    def _role(self, out: torch.Tensor, role: str) -> torch.Tensor:
        lo, hi = self._slices[role]
        return out[:, :, lo:hi]

    def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        n = h.shape[0]
        out = self.towers(h).view(n, self.n_horizons, self.n_roles, -1)
        S, m = self.n_sub, self.n_bkt
        dct = self._role(out, "dct")[:, :, 0, :S]  # (n, T, S)
        bct = self._role(out, "bct")[..., :m]  # (n, T, S, m)
        dct = dct.masked_fill(~self.sub_valid, _MASKED_LOGIT)
        bct = bct.masked_fill(~self.bucket_valid, _MASKED_LOGIT)
        if self.mono is None:
            log_p = torch.log_softmax(dct, dim=-1)
            log_q = torch.log_softmax(bct, dim=-1)
        else:
            # horizons depend on each other through o_{t-1}: a loop over the few horizons
            log_ps = [torch.log_softmax(dct[:, 0], dim=-1)]
            log_qs = [torch.log_softmax(bct[:, 0], dim=-1)]
            for t in range(1, self.n_horizons):
                o_prev = (log_ps[-1].unsqueeze(-1) + log_qs[-1]).exp().reshape(n, S * m)
                add_dct, add_bct = self.mono[t - 1](o_prev.detach())  # stop_gradient
                d = (dct[:, t] + add_dct).masked_fill(~self.sub_valid[t], _MASKED_LOGIT)
                b = (bct[:, t] + add_bct).masked_fill(~self.bucket_valid[t], _MASKED_LOGIT)
                log_ps.append(torch.log_softmax(d, dim=-1))
                log_qs.append(torch.log_softmax(b, dim=-1))
            log_p = torch.stack(log_ps, dim=1)
            log_q = torch.stack(log_qs, dim=1)
        result = {"log_p": log_p, "log_q": log_q}
        if self.bias:
            bias = torch.sigmoid(self._role(out, "bbt")[..., :m])
            result["bias"] = bias
        else:
            bias = torch.full_like(log_q, 0.5)  # NM / NMO: the bucket's midpoint
        if self.ordinal:
            result["dot"] = self._role(out, "dot")[:, :, 0, : max(S - 1, 0)]
            result["bot"] = self._role(out, "bot")[..., : max(m - 1, 0)]
        value = self.bucket_lower + bias * self.bucket_width
        proba = (log_p.unsqueeze(-1) + log_q).exp()  # normalized bucket multinomial
        # differentiable expected value: the calibration loss (eq. 12) needs it
        result["expected"] = (proba * value).sum((-1, -2))
        return result


class MDMEModule(nn.Module):
    """Shared bottom + :class:`MDMEHead`: the whole network of MDME (T = 1) and ODMN.

    Parameters
    ----------
    bottom : SharedBottom
    head : MDMEHead

    Examples
    --------
    >>> from ltvkit.nn._encoder import EncodedSpec
    >>> spec = EncodedSpec(2, (), (), ("a", "b"), ())
    >>> bottom = SharedBottom(spec, (8,))
    >>> valid = np.ones((2, 2, 3), dtype=bool)
    >>> head = MDMEHead(8, np.zeros((2, 2, 3)), np.ones((2, 2, 3)), valid, mono=True)
    >>> out = MDMEModule(bottom, head)(torch.zeros(5, 2), torch.zeros(5, 0, dtype=torch.long))
    >>> out["log_p"].shape
    torch.Size([5, 2, 2])
    """

    def __init__(self, bottom: SharedBottom, head: MDMEHead) -> None:
        super().__init__()
        self.bottom = bottom
        self.head = head

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.head(self.bottom(x_num, x_cat))


class MDMELoss(nn.Module):
    """Per-sample MDME loss (eq. 14), summed over horizons, + ODMN calibration (eq. 12).

    Per horizon: ``CE(DCT) + L_ord(DOT) + beta * CE(soft label of DOT, DCT)`` on every
    row, plus, for the row's own sub-distribution only (sample isolation),
    ``CE(BCT) + L_ord(BOT) + gamma * CE(soft label of BOT, BCT)`` and, if its bucket has
    a width, ``(BBT - position)**2``, with ``beta = subdistribution_distill_weight`` and
    ``gamma = bucket_distill_weight``. Ordinal terms are skipped when the output has no
    ordinal towers, the bias term when it has no bias towers. With
    ``calibration_weight > 0`` and ``T > 1``:
    ``+ calibration_weight * sum_t max(E_t - E_{t+1}, 0) / y_scale`` (eq. 12, the paper's
    alpha) on the differentiable expected values ``E_t``.

    The target is a dict of ``(n, T)`` tensors: ``"sub"`` (sub-distribution id),
    ``"bucket"`` (bucket id inside the sub-distribution), ``"position"`` (min-max
    normalized position of ``y`` in its bucket) and ``"has_width"`` (1 if that bucket has
    a positive width, so that the bias term applies).

    Parameters
    ----------
    subdistribution_distill_weight : float, default=0.5
        Weight of the DOT -> DCT distillation term (the paper's beta).
    bucket_distill_weight : float, default=0.5
        Weight of the BOT -> BCT distillation term (the paper's gamma).
    calibration_weight : float, default=0.0
        Weight of the ordered-dependency calibration term (the paper's alpha); 0 for
        MDME.
    y_scale : float, default=1.0
        The calibration term divides the expected values by it (ltvkit: the mean of the
        longest horizon's training labels), so ``calibration_weight`` is unit-free.
    n_buckets : array of int of shape (T, S) or None, default=None
        Number of real buckets of every (padded) sub-distribution; None: read from the
        masked logits of the output.

    Examples
    --------
    >>> head = MDMEHead(4, np.zeros((1, 2, 2)), np.ones((1, 2, 2)), np.ones((1, 2, 2), bool))
    >>> target = {"sub": torch.tensor([[0], [1]]), "bucket": torch.tensor([[1], [0]]),
    ...           "position": torch.tensor([[0.3], [0.9]]), "has_width": torch.ones(2, 1)}
    >>> MDMELoss()(head(torch.zeros(2, 4)), target).shape
    torch.Size([2])
    """

    def __init__(
        self,
        subdistribution_distill_weight: float = 0.5,
        bucket_distill_weight: float = 0.5,
        calibration_weight: float = 0.0,
        y_scale: float = 1.0,
        n_buckets: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.subdistribution_distill_weight = float(subdistribution_distill_weight)
        self.bucket_distill_weight = float(bucket_distill_weight)
        self.calibration_weight = float(calibration_weight)
        self.y_scale = float(y_scale)
        # (T, S) number of real buckets per sub-distribution; None: read from the masks
        self.n_buckets: torch.Tensor | None
        if n_buckets is None:
            self.n_buckets = None
        else:
            self.register_buffer("n_buckets", torch.as_tensor(np.asarray(n_buckets, np.int64)))

    def forward(
        self, output: dict[str, torch.Tensor], target: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        log_p, log_q = output["log_p"], output["log_q"]
        n, T, S, m = log_q.shape
        sub, bkt = target["sub"], target["bucket"]
        n_buckets = self.n_buckets
        if n_buckets is None:  # derive it from the masks of the output
            n_buckets = (log_q > _MASKED_LOGIT / 2).sum(-1)[0]
        n_subs = (n_buckets > 0).sum(-1)  # (T,)
        # -- distribution segmentation module: every row
        loss = -log_p.gather(-1, sub.unsqueeze(-1)).squeeze(-1)
        # sample isolation: gather the row's own sub-distribution (n, T, m)
        idx = sub.view(n, T, 1, 1).expand(n, T, 1, m)
        own_log_q = log_q.gather(2, idx).squeeze(2)
        loss = loss - own_log_q.gather(-1, bkt.unsqueeze(-1)).squeeze(-1)
        if "dot" in output:
            dot = output["dot"]
            loss = loss + ordinal_loss(dot, sub, n_subs - 1)
            soft = ordinal_class_proba(dot.detach(), n_subs - 1)
            loss = loss + self.subdistribution_distill_weight * -(soft * _finite(log_p)).sum(-1)
            bot = output["bot"]
            own_bot = bot.gather(2, sub.view(n, T, 1, 1).expand(n, T, 1, bot.shape[-1])).squeeze(2)
            own_n = (
                n_buckets.unsqueeze(0).expand(n, T, S).gather(-1, sub.unsqueeze(-1)).squeeze(-1)
            )
            loss = loss + ordinal_loss(own_bot, bkt, own_n - 1)
            soft_b = ordinal_class_proba(own_bot.detach(), own_n - 1)
            loss = loss + self.bucket_distill_weight * -(soft_b * _finite(own_log_q)).sum(-1)
        if "bias" in output:
            flat = (sub * m + bkt).unsqueeze(-1)
            own_bias = output["bias"].reshape(n, T, S * m).gather(-1, flat).squeeze(-1)
            has_width = target["has_width"].to(own_bias.dtype)
            loss = loss + has_width * (own_bias - target["position"]) ** 2
        total = loss.sum(-1)
        if self.calibration_weight > 0 and T > 1:
            e = output["expected"] / self.y_scale
            total = total + self.calibration_weight * torch.relu(e[:, :-1] - e[:, 1:]).sum(-1)
        return total


def _finite(log_prob: torch.Tensor) -> torch.Tensor:
    """Masked log-probabilities (about -1e9) as 0, so 0 * log p stays exactly 0."""
    return torch.where(log_prob > _MASKED_LOGIT / 2, log_prob, torch.zeros_like(log_prob))


# ----------------------------------------------------------------------------- segmentation
def _global_quantiles(
    sub_quantiles: Sequence[float], n_buckets: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """All positive-value cut quantiles, and the subset that splits sub-distributions.

    Sub-distribution ``j`` spans the quantile interval ``[a_j, b_j]`` (edges 0,
    ``sub_quantiles``, 1) and gets ``n_buckets[j]`` equal-frequency buckets, i.e. cuts at
    ``a_j + (b_j - a_j) * k / n_buckets[j]``.
    """
    edges = [0.0, *(float(q) for q in sub_quantiles), 1.0]
    cuts: list[float] = []
    for j, nb in enumerate(n_buckets):
        a, b = edges[j], edges[j + 1]
        cuts.extend(a + (b - a) * k / int(nb) for k in range(1, int(nb)))
        if j < len(n_buckets) - 1:
            cuts.append(b)
    return np.asarray(cuts, dtype=np.float64), np.asarray(edges[1:-1], dtype=np.float64)


class _Segmentation:
    """Buckets and sub-distributions of one horizon, from a fitted LTVBucketizer."""

    def __init__(self, bucketizer: LTVBucketizer, splits: np.ndarray, zero_sub: bool) -> None:
        self.bucketizer = bucketizer
        cuts = np.asarray(bucketizer.boundaries_, dtype=np.float64)
        self.lower = np.asarray(bucketizer.lower_, dtype=np.float64)
        self.upper = np.asarray(bucketizer.upper_, dtype=np.float64)
        # a split that LTVBucketizer merged away (e.g. at the maximum) is no split
        self.splits = np.asarray([s for s in splits if np.isin(s, cuts)], dtype=np.float64)
        first = 1 if zero_sub else 0
        sub = first + np.searchsorted(self.splits, self.lower, side="right")
        sub[0] = 0  # the zero bucket
        self.sub_of_bucket = sub.astype(np.int64)
        self.n_sub = int(sub.max()) + 1
        self.sizes = np.bincount(sub, minlength=self.n_sub).astype(np.int64)
        start = np.concatenate(([0], np.cumsum(self.sizes)[:-1]))
        self.local_of_bucket = np.arange(sub.size) - start[sub]

    def encode(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(sub id, bucket id within the sub-distribution, position in bucket, has width)."""
        ids = self.bucketizer.transform(y.reshape(-1, 1)).ravel()
        width = self.upper[ids] - self.lower[ids]
        has_width = width > 0
        pos = np.where(has_width, (y - self.lower[ids]) / np.where(has_width, width, 1.0), 0.0)
        return (
            self.sub_of_bucket[ids],
            self.local_of_bucket[ids],
            np.clip(pos, 0.0, 1.0),
            has_width,
        )


# ----------------------------------------------------------------------------- estimators
@dataclass(frozen=True)
class _BucketInfo:
    """What ``_prepare_targets`` hands to the builders (``PreparedTargets.info``).

    ``lower``, ``width``, ``valid``: the padded ``(T, S, m)`` bucket tables (left edge,
    width, real bucket); ``priors``: per horizon, the weighted training frequencies of the
    sub-distributions (``"p"``), of the buckets inside each (``"q"``) and the mean
    position inside each bucket (``"pos"``), the starting values of the output biases;
    ``y_scale``: the mean training label of the longest horizon (the calibration loss
    divides by it).
    """

    lower: np.ndarray
    width: np.ndarray
    valid: np.ndarray
    priors: list[dict[str, np.ndarray]]
    y_scale: float


class _MDMEBase(BaseDeepRegressor):
    """Shared machinery of MDMERegressor (T = 1) and ODMNRegressor (T horizons).

    The bucket edges needed at predict time are the documented fitted attributes
    ``bucket_lower_`` / ``bucket_upper_`` (value order, per horizon); the padded layout
    of the tables is ``bucket_layout_``.
    """

    # -- hyperparameters --------------------------------------------------------------
    _parameter_constraints: ClassVar[dict[str, list]] = {
        **BaseDeepRegressor._parameter_constraints,
        "subdistribution_quantiles": [
            Increasing(Real(0.0, 1.0, closed="neither"), allow_empty=True)
        ],
        "n_buckets": [PerLevel(Int(1))],
        "boundaries": [
            PerLevel(
                Instance(Sequence, text="a sequence of numbers"), what="a non-empty sequence"
            ),
            None,
        ],
        "zero_subdistribution": [Boolean()],
        "bucket_bias": [Boolean()],
        "ordinal_distillation": [Boolean()],
        "subdistribution_distill_weight": [Real(0.0)],
        "bucket_distill_weight": [Real(0.0)],
        "prediction": [Options("expected", "hard")],
        "tower_units": [Units()],
    }

    def _check_param_combinations(self) -> None:
        name = type(self).__name__
        sq = tuple(float(q) for q in self.subdistribution_quantiles)
        if self.boundaries is None:
            if len(self.n_buckets) != len(sq) + 1:
                raise ValueError(
                    f"ltvkit: {name}: n_buckets must have one entry per positive "
                    f"sub-distribution ({len(sq) + 1} for subdistribution_quantiles="
                    f"{self.subdistribution_quantiles!r}), got {self.n_buckets!r}."
                )
            return
        # boundaries: the edges of all parts together must increase, and only the last
        # part may be empty (the constraints check the nesting)
        b = self.boundaries
        msg = (
            f"ltvkit: {name}: boundaries must be a sequence with one sequence of bucket "
            "upper edges per positive sub-distribution (the last one without its open top "
            f"edge), e.g. [(10, 20, 50), (200, 500)]; got {b!r}."
        )
        if any(len(part) == 0 for part in list(b)[:-1]):
            raise ValueError(msg + " Only the last sub-distribution may have no cut.")
        edge = Real(0.0, None, closed="neither")
        values = [v for part in b for v in part]
        if not all(edge.is_satisfied_by(v) for v in values) or any(
            hi <= lo for lo, hi in itertools.pairwise(values)
        ):
            raise ValueError(msg + " The edges must be positive, finite and strictly increasing.")

    def _flat_boundaries(self) -> tuple[np.ndarray, np.ndarray]:
        """All bucket upper edges of ``boundaries``, and the sub-distribution splits."""
        parts = [[float(v) for v in part] for part in self.boundaries]
        flat = np.asarray([v for p in parts for v in p], dtype=np.float64)
        splits = np.asarray([p[-1] for p in parts[:-1]], dtype=np.float64)
        return flat, splits

    # -- targets ----------------------------------------------------------------------
    def _segment(self, y: np.ndarray, w: np.ndarray | None) -> _Segmentation:
        """Fit the buckets of one horizon with LTVBucketizer (``y`` 1-D)."""
        if self.boundaries is not None:
            flat, splits = self._flat_boundaries()
            bk = LTVBucketizer(boundaries=flat, zero_tol=0.0).fit(y.reshape(-1, 1))
            return _Segmentation(bk, splits, bool(self.zero_subdistribution))
        qs, split_qs = _global_quantiles(self.subdistribution_quantiles, self.n_buckets)
        if w is not None and np.all(w == w[0]):
            w = None  # equal weights: the unweighted segmentation
        # Sample weights are frequency weights: weighted quantiles, so integer weights
        # give the buckets of the rows repeated; rows of weight 0 do not count.
        bk = LTVBucketizer(quantiles=qs, zero_tol=0.0).fit(y.reshape(-1, 1), sample_weight=w)
        # the sub-distribution splits: LTVBucketizer's quantiles of the same positive
        # values at the split levels, before it merges ties (_Segmentation drops the
        # splits that were merged away)
        pos_mask = y > 0 if w is None else (y > 0) & (w > 0)
        pos, wp = y[pos_mask], None if w is None else w[pos_mask]
        splits = (
            inverted_cdf_quantile(pos, split_qs, wp) if pos.size and split_qs.size else np.empty(0)
        )
        return _Segmentation(bk, splits, bool(self.zero_subdistribution))

    def _set_bucket_attributes(self, segments: list[_Segmentation]) -> None:  # pragma: no cover
        """Set the public fitted attributes of the segmentation (one per horizon)."""
        raise NotImplementedError

    def _bucket_edges(self) -> list[tuple[np.ndarray, np.ndarray]]:  # pragma: no cover
        """``(bucket_lower, bucket_upper)`` of every horizon, in value order."""
        raise NotImplementedError

    def _prepare_targets(self, y: np.ndarray, sample_weight: np.ndarray | None) -> PreparedTargets:
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        n, T = Y.shape
        w = sample_weight
        segs = [self._segment(Y[:, t], w) for t in range(T)]
        self._set_bucket_attributes(segs)
        S = max(s.n_sub for s in segs)
        m = max(int(s.sizes.max()) for s in segs)
        lower = np.zeros((T, S, m))
        width = np.zeros((T, S, m))
        valid = np.zeros((T, S, m), dtype=bool)
        for t, s in enumerate(segs):
            lower[t, s.sub_of_bucket, s.local_of_bucket] = s.lower
            width[t, s.sub_of_bucket, s.local_of_bucket] = s.upper - s.lower
            valid[t, s.sub_of_bucket, s.local_of_bucket] = True
        sub = np.empty((n, T), dtype=np.int64)
        bkt = np.empty((n, T), dtype=np.int64)
        pos = np.empty((n, T), dtype=np.float64)
        has_width = np.empty((n, T), dtype=bool)
        for t, s in enumerate(segs):
            sub[:, t], bkt[:, t], pos[:, t], has_width[:, t] = s.encode(Y[:, t])
        ww = np.ones(n) if w is None else w
        mean_last = float(np.average(Y[:, -1], weights=ww)) if ww.sum() > 0 else 0.0
        info = _BucketInfo(
            lower=lower,
            width=width,
            valid=valid,
            priors=self._label_priors(sub, bkt, pos, has_width, ww, valid),
            y_scale=mean_last if mean_last > 0 else 1.0,
        )
        targets = {
            "sub": sub,
            "bucket": bkt,
            "position": pos,
            "has_width": has_width.astype(np.int64),
        }
        # predictions read the padded layout (also during training, for scoring)
        self.bucket_layout_ = valid
        return PreparedTargets(targets, info=info)

    @staticmethod
    def _label_priors(
        sub: np.ndarray,
        bkt: np.ndarray,
        pos: np.ndarray,
        has_width: np.ndarray,
        w: np.ndarray,
        valid: np.ndarray,
    ) -> list[dict[str, np.ndarray]]:
        """Weighted label frequencies per horizon: starting values of the output biases."""
        T, S, m = valid.shape
        out = []
        for t in range(T):
            st, bt = sub[:, t], bkt[:, t]
            p_sub = np.bincount(st, weights=w, minlength=S)[:S]
            p_sub = p_sub / max(p_sub.sum(), 1e-12)
            joint = np.zeros((S, m))
            np.add.at(joint, (st, bt), w)
            q = joint / np.maximum(joint.sum(1, keepdims=True), 1e-12)
            pos_sum = np.zeros((S, m))
            np.add.at(pos_sum, (st, bt), w * pos[:, t] * has_width[:, t])
            mean_pos = np.where(joint > 0, pos_sum / np.maximum(joint, 1e-12), 0.5)
            out.append({"p": p_sub, "q": q, "pos": mean_pos})
        return out

    def _validation_strata(
        self, y: np.ndarray, targets: dict[str, np.ndarray]
    ) -> np.ndarray | None:
        # stratify on the (last horizon's) sub-distribution: whales in both parts
        return targets["sub"][:, -1]

    # -- module and loss --------------------------------------------------------------
    def _head_kwargs(self) -> dict[str, Any]:
        return {}

    def _build_module(self, spec: EncodedSpec, info: _BucketInfo) -> MDMEModule:
        bottom = self._make_bottom(spec)
        head = MDMEHead(
            bottom.out_features,
            info.lower,
            info.width,
            info.valid,
            tower_units=tuple(int(u) for u in self.tower_units),
            dropout=float(self.dropout),
            ordinal=bool(self.ordinal_distillation),
            bias=bool(self.bucket_bias),
            **self._head_kwargs(),
        )
        _init_head_biases(head, info)
        return MDMEModule(bottom, head)

    def _make_loss(self, info: _BucketInfo, calibration_weight: float) -> MDMELoss:
        return MDMELoss(
            subdistribution_distill_weight=float(self.subdistribution_distill_weight),
            bucket_distill_weight=float(self.bucket_distill_weight),
            calibration_weight=calibration_weight,
            y_scale=info.y_scale,
            n_buckets=info.valid.sum(-1),
        )

    # -- prediction -------------------------------------------------------------------
    def _bucket_valid(self, device: torch.device) -> torch.Tensor:
        """(T, S, m) bool: the real buckets of the padded layout (``bucket_layout_``)."""
        return torch.as_tensor(self.bucket_layout_, device=device)

    def _tables(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Padded (T, S, m) float64 left edges and widths of the buckets, and validity.

        The padded layout is sub-distribution-major, i.e. the buckets' value order, so
        the fitted ``bucket_lower_`` / ``bucket_upper_`` fill the valid cells in order.
        """
        valid = self._bucket_valid(device)
        lowers, uppers = zip(*self._bucket_edges(), strict=True)
        lo, up = np.concatenate(lowers), np.concatenate(uppers)
        lower = torch.zeros(valid.shape, dtype=torch.float64, device=device)
        width = torch.zeros_like(lower)
        lower[valid] = torch.as_tensor(lo, dtype=torch.float64, device=device)
        width[valid] = torch.as_tensor(up - lo, dtype=torch.float64, device=device)
        return lower, width, valid

    @staticmethod
    def _proba(output: dict[str, torch.Tensor], valid: torch.Tensor) -> torch.Tensor:
        """Normalized bucket multinomial, padded: (n, T, S, m), float64."""
        proba = (output["log_p"].double().unsqueeze(-1) + output["log_q"].double()).exp()
        proba = torch.where(valid, proba, torch.zeros_like(proba))
        # the log-softmaxes ran in float32: renormalize so every row sums to 1 in float64
        return proba / proba.sum((-1, -2), keepdim=True)

    def _raw_prediction(self, output: dict[str, torch.Tensor]) -> torch.Tensor:
        """(n, T) float64 predictions before any monotonic enforcement."""
        lower, width, valid = self._tables(output["log_q"].device)
        if "bias" in output:
            bias = output["bias"].double()
        else:  # NM / NMO: the bucket's midpoint
            bias = torch.full(output["log_q"].shape, 0.5, dtype=torch.float64, device=lower.device)
        value = lower + bias * width  # (n, T, S, m)
        if self.prediction == "expected":
            return (self._proba(output, valid) * value).sum((-1, -2))
        # eqs. 7-8: the most probable sub-distribution, then its most probable bucket
        n, T, S, m = value.shape
        s_star = output["log_p"].argmax(-1)  # (n, T)
        own_q = output["log_q"].gather(2, s_star.view(n, T, 1, 1).expand(n, T, 1, m)).squeeze(2)
        u_star = own_q.argmax(-1)
        flat = (s_star * m + u_star).unsqueeze(-1)
        return value.reshape(n, T, S * m).gather(-1, flat).squeeze(-1)

    def _global_bucket_proba(self, output: dict[str, torch.Tensor], horizon: int) -> torch.Tensor:
        valid = self._bucket_valid(output["log_q"].device)
        proba = self._proba(output, valid)[:, horizon]  # (n, S, m)
        # padded layout is sub-distribution-major, i.e. the global bucket order
        return proba[:, valid[horizon]]

    def _quantiles_from_proba(
        self, proba: torch.Tensor, horizon: int, q: torch.Tensor
    ) -> torch.Tensor:
        """Quantiles of the bucket distribution, uniform inside each bucket."""
        lo, up = self._bucket_edges()[horizon]
        lower = torch.as_tensor(lo, dtype=torch.float64, device=proba.device)
        width = torch.as_tensor(up - lo, dtype=torch.float64, device=proba.device)
        cum = proba.cumsum(-1)
        cum = cum / cum[:, -1:].clamp_min(1e-300)
        qq = q.to(proba.device).expand(cum.shape[0], -1).contiguous()  # (n, n_q)
        # first bucket whose cumulative probability reaches q
        k = torch.searchsorted(cum, qq).clamp_max(cum.shape[1] - 1)
        prev = torch.cat([torch.zeros_like(cum[:, :1]), cum[:, :-1]], dim=1).gather(1, k)
        mass = proba.gather(1, k)
        frac = ((qq - prev) / mass.clamp_min(1e-300)).clamp(0.0, 1.0)
        return lower[k] + frac * width[k]


class MDMERegressor(_MDMEBase):
    """Multi Distribution Multi Experts (MDME) network for customer lifetime value.

    Li et al., "Billion-user Customer Lifetime Value Prediction: An Industrial-scale
    Solution from Kuaishou", CIKM 2022, §3.3. The label range is cut into
    sub-distributions and buckets (:class:`~ltvkit.preprocessing.LTVBucketizer` on the
    training labels); a Distribution Classification Tower picks the sub-distribution, a
    Bucket Classification Tower per sub-distribution picks the bucket, a Bucket Bias
    Tower places the value inside it. Ordinal towers distil the order of sub-distributions
    and buckets into the classifiers. See ``docs/models/mdme_odmn.md``. ``sample_weight``
    holds frequency weights: they weight the loss, the bucket quantiles and the
    classifier initialisation.

    Parameters
    ----------
    subdistribution_quantiles : tuple of float, default=(0.9,)
        Quantiles of the *positive* training labels at which the positive values are split
        into sub-distributions. The default splits them at their 90th percentile into a
        body and a whale tail: the tail holds values spread over orders of magnitude and
        gets its own experts, the body keeps fine buckets where most customers are.
    n_buckets : tuple of int, default=(8, 4)
        Equal-frequency buckets per positive sub-distribution (one entry per
        sub-distribution, so ``len(subdistribution_quantiles) + 1`` entries). 8 body
        buckets of ~11% of the positives each and 4 tail buckets of 2.5% each: the paper
        sizes buckets so that each holds a similar number of samples; the tail gets fewer
        because it has ten times fewer rows. Tied quantiles are merged (fewer buckets,
        ``BucketMergeWarning``).
    boundaries : sequence of sequences of float or None, default=None
        Business segmentation instead of quantiles: one sequence per positive
        sub-distribution with the upper edges of its buckets; the last sub-distribution
        omits its top edge (its last bucket is open-ended, up to the training maximum).
        ``[(10, 20, 50), (200, 500)]``: body buckets (0, 10], (10, 20], (20, 50]; tail
        buckets (50, 200], (200, 500], (500, max]. Overrides the two parameters above.
    zero_subdistribution : bool, default=True
        Zero spend is its own sub-distribution, a single bucket of width 0 (no bias
        needed). False: the zero bucket is the first bucket of the first positive
        sub-distribution.
    bucket_bias : bool, default=True
        Bucket Bias Towers. False: a bucket's value is its midpoint (paper's NM/NMO).
    ordinal_distillation : bool, default=True
        Distribution and Bucket Ordinal Towers with their distillation (paper's NMO/MDME).
        ``bucket_bias=False, ordinal_distillation=False`` is the paper's NM,
        ``(True, False)`` NMB, ``(False, True)`` NMO, ``(True, True)`` the full MDME.
    subdistribution_distill_weight : float, default=0.5
        Weight of the distillation of the Distribution Ordinal Tower's soft label into
        the Distribution Classification Tower (DOT -> DCT; the paper's beta, 0.5 in its
        §5.1.2). 0: the ordinal towers still train, but teach the classifier nothing.
    bucket_distill_weight : float, default=0.5
        Weight of the distillation of each Bucket Ordinal Tower's soft label into its
        Bucket Classification Tower (BOT -> BCT; the paper's gamma, 0.5 in its §5.1.2).
    prediction : {"expected", "hard"}, default="expected"
        ``"expected"``: the expectation over all sub-distributions and buckets,
        ``sum_s sum_b P(s) P(b | s) (left_b + bias_b * width_b)``, i.e. E[y | x], the
        ltvkit contract. ``"hard"``: the paper's eqs. 7-8, the most probable
        sub-distribution, then its most probable bucket, then ``left + bias * width``.
    tower_units : tuple of int, default=(16,)
        Hidden layer widths of every tower (the paper does not give them).
    batch_size : int, default=512
        Training batch size: the paper's.
    learning_rate : float, default=1e-3
        Learning rate of the optimizer. The paper uses 0.05 (Adam) for its embedding-only
        input; on ltvkit's standardized numeric input 0.05 gave a lower Gini on CDNOW (see
        the model page), so ltvkit keeps the shared 1e-3.
    validation_fraction : float, default=0.1
        Share of rows held out for early stopping. The split is stratified on the
        sub-distribution, so the tail is in both parts.
    {shared_params}

    Attributes
    ----------
    bucket_lower_, bucket_upper_ : ndarray of shape (n_buckets_total,)
        Ranges of all buckets in value order (bucket 0 is the zero bucket ``[0, 0]``);
        the predictions place each bucket's value in this range.
    bucket_subdistribution_ : ndarray of int64 of shape (n_buckets_total,)
        Sub-distribution of each bucket.
    n_subdistributions_ : int
    bucketizer_ : LTVBucketizer
        The fitted bucketizer behind the segmentation.
    bucket_layout_ : ndarray of bool of shape (1, n_subdistributions, max_buckets)
        Which cells of the padded (horizon, sub-distribution, bucket) layout of the
        towers are real buckets.
    net_, encoder_, n_iter_, best_epoch_, target_ndim_
        See :class:`~ltvkit.nn.BaseDeepRegressor`.

    Examples
    --------
    >>> from ltvkit.datasets import make_ltv
    >>> from ltvkit.nn import MDMERegressor
    >>> X, y = make_ltv(n_samples=600, n_features=4, n_categorical=1, random_state=0)
    >>> model = MDMERegressor(max_epochs=3, random_state=0).fit(X, y)
    >>> model.predict(X).shape, model.predict_bucket_proba(X).shape
    ((600,), (600, 13))
    """

    def __init__(
        self,
        *,
        subdistribution_quantiles: Sequence[float] = (0.9,),
        n_buckets: Sequence[int] = (8, 4),
        boundaries: Sequence[Sequence[float]] | None = None,
        zero_subdistribution: bool = True,
        bucket_bias: bool = True,
        ordinal_distillation: bool = True,
        subdistribution_distill_weight: float = 0.5,
        bucket_distill_weight: float = 0.5,
        prediction: str = "expected",
        tower_units: Sequence[int] = (16,),
        hidden_units: Sequence[int] = (64, 32),
        dropout: float = 0.0,
        embedding_dim: int | None = None,
        log_transform: bool | str = "auto",
        min_category_frequency: int = 5,
        batch_size: int = 512,
        max_epochs: int = 100,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: str | type = "adam",
        learning_rate_schedule: str | None = "cosine",
        early_stopping: bool = True,
        validation_fraction: float = 0.1,
        patience: int = 10,
        gradient_clip: float | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
        callbacks: list | None = None,
        device: str = "cpu",
        precision: str = "float32",
    ) -> None:
        self._store_params(locals())

    def _set_bucket_attributes(self, segments: list[_Segmentation]) -> None:
        (seg,) = segments
        self.bucketizer_ = seg.bucketizer
        self.bucket_lower_ = seg.lower.copy()
        self.bucket_upper_ = seg.upper.copy()
        self.bucket_subdistribution_ = seg.sub_of_bucket.copy()
        self.n_subdistributions_ = seg.n_sub

    def _bucket_edges(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(self.bucket_lower_, self.bucket_upper_)]

    def _build_criterion(self, info: _BucketInfo) -> MDMELoss:
        return self._make_loss(info, calibration_weight=0.0)  # one horizon: no calibration

    def _output_to_prediction(self, output: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._raw_prediction(output)[:, 0]

    def predict_bucket_proba(self, X: object) -> np.ndarray:
        """The normalized bucket multinomial (paper §3.4): ``P(s) * P(b | s)`` per bucket.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_buckets_total)
            Columns in value order (see ``bucket_lower_``); each row sums to 1.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(60.0).reshape(-1, 1); y = np.r_[np.zeros(30), np.arange(1.0, 31)]
        >>> m = MDMERegressor(max_epochs=2, random_state=0).fit(X, y)
        >>> bool(np.allclose(m.predict_bucket_proba(X).sum(1), 1.0))
        True
        """
        return self._forward_outputs(X, lambda out: self._global_bucket_proba(out, 0))

    def predict_nonzero_proba(self, X: object) -> np.ndarray:
        """``P(y > 0 | x)``: one minus the probability of the zero bucket.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(60.0).reshape(-1, 1); y = np.r_[np.zeros(30), np.arange(1.0, 31)]
        >>> p = MDMERegressor(max_epochs=2, random_state=0).fit(X, y).predict_nonzero_proba(X)
        >>> bool(((p >= 0) & (p <= 1)).all())
        True
        """
        return self._forward_outputs(
            X, lambda out: (1.0 - self._global_bucket_proba(out, 0)[:, 0]).clamp(0.0, 1.0)
        )

    def predict_quantiles(self, X: object, quantiles: float | Sequence[float]) -> np.ndarray:
        """Quantiles of the predicted bucket distribution (uniform inside each bucket).

        The zero bucket is a point mass at 0; a positive bucket spreads its probability
        uniformly over ``[lower, upper]``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        quantiles : float or sequence of float in [0, 1]

        Returns
        -------
        ndarray of shape (n_samples,) for a float, (n_samples, n_quantiles) otherwise

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(60.0).reshape(-1, 1); y = np.r_[np.zeros(30), np.arange(1.0, 31)]
        >>> m = MDMERegressor(max_epochs=2, random_state=0).fit(X, y)
        >>> m.predict_quantiles(X, [0.1, 0.5, 0.9]).shape
        (60, 3)
        """
        scalar, levels = check_quantile_levels(quantiles)
        q = torch.from_numpy(levels)[None, :]
        result = self._forward_outputs(
            X, lambda out: self._quantiles_from_proba(self._global_bucket_proba(out, 0), 0, q)
        )
        return result[:, 0] if scalar else result


class ODMNRegressor(_MDMEBase):
    """Order Dependency Monotonic Network (ODMN): LTV at several horizons at once.

    Li et al., CIKM 2022, §3.1-3.5. ``y`` has shape ``(n, T)``: cumulative spend at T
    increasing horizons (e.g. the next 13/26/39 weeks), non-decreasing along each row
    (``ValueError`` otherwise); a 1-D ``y`` is one horizon, and ``predict`` then returns
    1-D too. ``sample_weight`` as in :class:`MDMERegressor`. A shared bottom feeds one
    MDME head per horizon (see :class:`MDMERegressor`, whose segmentation parameters
    apply to every horizon, each with its own bucket cuts); Mono Units pass horizon
    ``t - 1``'s bucket distribution (stop-gradient) into horizon ``t``'s classification
    logits; the calibration loss penalises expected values that decrease along the
    horizons. ``predict`` returns ``(n, T)``, non-decreasing along the horizons for every
    customer when ``enforce_monotonic=True``.

    Parameters
    ----------
    mono_unit : bool, default=True
        Link the horizons with Mono Units (paper's SM/ODMN); False: independent MDME
        heads on the shared bottom (S/SC).
    mono_hidden_units : tuple of int, default=()
        Hidden widths of each Mono Unit; ``()`` is a non-negative linear map (the paper's
        "linear transformation" of the upstream distribution).
    calibration_weight : float, default=1.0
        Weight of the ordered-dependency calibration loss (eq. 12; the paper's alpha,
        1 in its §5.1.2); 0 disables it (S/SM). ltvkit applies it to expected values
        divided by the mean training label of the longest horizon, so it does not depend
        on the currency. ``mono_unit=False, calibration_weight=0`` is the paper's S,
        ``(True, 0)`` SM, ``(False, 1)`` SC, ``(True, 1)`` the full ODMN.
    enforce_monotonic : bool, default=True
        Make every customer's predictions non-decreasing along the horizons with a
        running maximum (the paper's losses only make it likely).
        :meth:`monotonic_violation_rate` reports how often the raw network violated it.
    subdistribution_quantiles, n_buckets, boundaries, zero_subdistribution, bucket_bias, \
ordinal_distillation, subdistribution_distill_weight, bucket_distill_weight, prediction, \
tower_units
        As in :class:`MDMERegressor`, for every horizon.
    batch_size : int, default=512
        Training batch size: the paper's.
    validation_fraction : float, default=0.1
        Share of rows held out for early stopping. The split is stratified on the
        longest horizon's sub-distribution.
    {shared_params}

    Attributes
    ----------
    n_horizons_ : int
    bucket_lower_, bucket_upper_ : list of ndarray
        Bucket ranges of each horizon.
    bucketizers_ : list of LTVBucketizer
    train_violation_rate_ : float
        Share of training customers whose raw predictions decrease somewhere along the
        horizons (before ``enforce_monotonic``).
    bucket_layout_ : ndarray of bool of shape (n_horizons, n_subdistributions, max_buckets)
        Which cells of the padded (horizon, sub-distribution, bucket) layout of the
        towers are real buckets.
    net_, encoder_, n_iter_, best_epoch_, target_ndim_
        See :class:`~ltvkit.nn.BaseDeepRegressor`; ``target_ndim_ == 1`` (a 1-D ``y``)
        makes ``predict`` and ``predict_quantiles`` answer without the horizon axis.

    Examples
    --------
    >>> from ltvkit.datasets import make_ltv
    >>> from ltvkit.nn import ODMNRegressor
    >>> X, y = make_ltv(n_samples=600, n_features=4, n_categorical=1, n_horizons=3,
    ...                 random_state=0)
    >>> model = ODMNRegressor(max_epochs=3, random_state=0).fit(X, y)
    >>> pred = model.predict(X)
    >>> pred.shape, bool((pred[:, 1:] >= pred[:, :-1]).all())
    ((600, 3), True)
    """

    _multi_horizon = True

    def __init__(
        self,
        *,
        mono_unit: bool = True,
        mono_hidden_units: Sequence[int] = (),
        calibration_weight: float = 1.0,
        enforce_monotonic: bool = True,
        subdistribution_quantiles: Sequence[float] = (0.9,),
        n_buckets: Sequence[int] = (8, 4),
        boundaries: Sequence[Sequence[float]] | None = None,
        zero_subdistribution: bool = True,
        bucket_bias: bool = True,
        ordinal_distillation: bool = True,
        subdistribution_distill_weight: float = 0.5,
        bucket_distill_weight: float = 0.5,
        prediction: str = "expected",
        tower_units: Sequence[int] = (16,),
        hidden_units: Sequence[int] = (64, 32),
        dropout: float = 0.0,
        embedding_dim: int | None = None,
        log_transform: bool | str = "auto",
        min_category_frequency: int = 5,
        batch_size: int = 512,
        max_epochs: int = 100,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: str | type = "adam",
        learning_rate_schedule: str | None = "cosine",
        early_stopping: bool = True,
        validation_fraction: float = 0.1,
        patience: int = 10,
        gradient_clip: float | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
        callbacks: list | None = None,
        device: str = "cpu",
        precision: str = "float32",
    ) -> None:
        self._store_params(locals())

    _parameter_constraints: ClassVar[dict[str, list]] = {
        **_MDMEBase._parameter_constraints,
        "mono_unit": [Boolean()],
        "mono_hidden_units": [Units()],
        "calibration_weight": [Real(0.0)],
        "enforce_monotonic": [Boolean()],
    }

    def _head_kwargs(self) -> dict[str, Any]:
        return {
            "mono": bool(self.mono_unit),
            "mono_hidden_units": tuple(int(u) for u in self.mono_hidden_units),
        }

    def _set_bucket_attributes(self, segments: list[_Segmentation]) -> None:
        self.n_horizons_ = len(segments)
        self.bucketizers_ = [s.bucketizer for s in segments]
        self.bucket_lower_ = [s.lower.copy() for s in segments]
        self.bucket_upper_ = [s.upper.copy() for s in segments]

    def _bucket_edges(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return list(zip(self.bucket_lower_, self.bucket_upper_, strict=True))

    def _build_criterion(self, info: _BucketInfo) -> MDMELoss:
        return self._make_loss(info, calibration_weight=float(self.calibration_weight))

    def _after_fit(self, X: object, y: np.ndarray, sample_weight: np.ndarray | None) -> None:
        """``train_violation_rate_`` of the trained network on the training rows."""
        self.train_violation_rate_ = _violation_rate(
            self._forward_outputs(X, self._raw_prediction)
        )

    def _output_to_prediction(self, output: dict[str, torch.Tensor]) -> torch.Tensor:
        pred = self._raw_prediction(output)
        if self.enforce_monotonic:
            pred = torch.cummax(pred, dim=1).values
        return pred  # (n, T); the base answers 1-D for a 1-D y

    def monotonic_violation_rate(self, X: object) -> float:
        """Share of customers whose *raw* predictions decrease along the horizons.

        Computed before ``enforce_monotonic``; ``predict`` itself never decreases when
        ``enforce_monotonic=True``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        float in [0, 1]

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(60.0).reshape(-1, 1)
        >>> y1 = np.r_[np.zeros(30), np.arange(30.0)]
        >>> y = np.c_[y1, 2 * y1]
        >>> model = ODMNRegressor(max_epochs=2, random_state=0).fit(X, y)
        >>> rate = model.monotonic_violation_rate(X)
        >>> 0.0 <= rate <= 1.0
        True
        """
        return _violation_rate(self._forward_outputs(X, self._raw_prediction))

    def _horizon(self, horizon: int) -> int:
        T = self.n_horizons_
        if not isinstance(horizon, numbers.Integral) or not -T <= horizon < T:
            raise ValueError(
                f"ltvkit: horizon must be an integer in [-{T}, {T - 1}], got {horizon!r}."
            )
        return int(horizon) % T

    def predict_bucket_proba(self, X: object, horizon: int = -1) -> np.ndarray:
        """Normalized bucket multinomial ``o_t`` of one horizon (paper §3.4).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        horizon : int, default=-1
            Which horizon (index into the columns of ``y``; -1 = the longest).

        Returns
        -------
        ndarray of shape (n_samples, n_buckets_of_that_horizon)
            Columns in value order (``bucket_lower_[horizon]``); rows sum to 1.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(60.0).reshape(-1, 1)
        >>> y1 = np.r_[np.zeros(30), np.arange(30.0)]
        >>> y = np.c_[y1, 2 * y1]
        >>> m = ODMNRegressor(max_epochs=2, random_state=0).fit(X, y)
        >>> bool(np.allclose(m.predict_bucket_proba(X, horizon=0).sum(1), 1.0))
        True
        """
        check_is_fitted(self, "n_horizons_")
        t = self._horizon(horizon)
        return self._forward_outputs(X, lambda out: self._global_bucket_proba(out, t))

    def predict_nonzero_proba(self, X: object) -> np.ndarray:
        """``P(y_T > 0 | x)`` for the **last (longest) horizon** ``T``.

        Spending anything by the longest horizon is the event that matters for
        targeting; use ``1 - predict_bucket_proba(X, horizon=t)[:, 0]`` for another
        horizon. With ``enforce_monotonic=True`` it is the largest of the horizons'
        ``P(y_t > 0 | x)`` (who spent by horizon ``t`` spent by ``T``), the zero mass
        of the monotone quantiles of :meth:`predict_quantiles`: their point mass at
        zero is exact.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(60.0).reshape(-1, 1)
        >>> y1 = np.r_[np.zeros(30), np.arange(30.0)]
        >>> y = np.c_[y1, 2 * y1]
        >>> p = ODMNRegressor(max_epochs=2, random_state=0).fit(X, y).predict_nonzero_proba(X)
        >>> p.shape
        (60,)
        """

        def fn(out: dict[str, torch.Tensor]) -> torch.Tensor:
            if not self.enforce_monotonic:
                return (1.0 - self._global_bucket_proba(out, -1)[:, 0]).clamp(0.0, 1.0)
            zero = torch.stack(
                [self._global_bucket_proba(out, t)[:, 0] for t in range(self.n_horizons_)], 1
            )
            return (1.0 - zero.min(dim=1).values).clamp(0.0, 1.0)

        return self._forward_outputs(X, fn)

    def predict_quantiles(self, X: object, quantiles: float | Sequence[float]) -> np.ndarray:
        """Quantiles of each horizon's bucket distribution (uniform inside buckets).

        With ``enforce_monotonic=True`` each quantile is made non-decreasing along the
        horizons too (true cumulative spend has non-decreasing quantiles).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        quantiles : float or sequence of float in [0, 1]

        Returns
        -------
        ndarray of shape (n_samples, n_horizons) for a float,
        (n_samples, n_horizons, n_quantiles) otherwise; without the horizon axis when
        the model was fitted on a 1-D ``y`` (like ``predict``)

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(60.0).reshape(-1, 1)
        >>> y1 = np.r_[np.zeros(30), np.arange(30.0)]
        >>> y = np.c_[y1, 2 * y1]
        >>> m = ODMNRegressor(max_epochs=2, random_state=0).fit(X, y)
        >>> m.predict_quantiles(X, [0.5, 0.9]).shape
        (60, 2, 2)
        """
        scalar, levels = check_quantile_levels(quantiles)
        q = torch.from_numpy(levels)[None, :]

        def fn(out: dict[str, torch.Tensor]) -> torch.Tensor:
            per = [
                self._quantiles_from_proba(self._global_bucket_proba(out, t), t, q)
                for t in range(self.n_horizons_)
            ]
            res = torch.stack(per, dim=1)  # (n, T, n_q)
            if self.enforce_monotonic:
                res = torch.cummax(res, dim=1).values
            return res

        result = self._forward_outputs(X, fn)
        if self.target_ndim_ == 1:
            result = result[:, 0]  # one horizon, fitted on a 1-D y
        return result[..., 0] if scalar else result


# ----------------------------------------------------------------------------- helpers
def _violation_rate(pred: np.ndarray) -> float:
    if pred.ndim != 2 or pred.shape[1] < 2:
        return 0.0
    # a relative tolerance: float64 rounding of equal values is not a violation
    tol = 1e-9 * np.maximum(np.abs(pred[:, :-1]), 1.0)
    return float((pred[:, 1:] < pred[:, :-1] - tol).any(axis=1).mean())


def _init_head_biases(head: MDMEHead, info: _BucketInfo) -> None:
    """Start every classifier from the training label frequencies (as ZILN does)."""
    valid = info.valid
    with torch.no_grad():
        for t, pri in enumerate(info.priors):
            S, m = valid.shape[1:]
            sub_valid = valid[t].any(-1)
            log_p = np.log(np.maximum(pri["p"], _PRIOR_FLOOR))
            head.tower_bias("dct", t)[0, :S] = torch.as_tensor(log_p, dtype=torch.float32)
            log_q = np.log(np.maximum(pri["q"], _PRIOR_FLOOR))
            head.tower_bias("bct", t)[:, :m] = torch.as_tensor(log_q, dtype=torch.float32)
            if head.ordinal:
                head.tower_bias("dot", t)[0, : S - 1] = _cumulative_logits(pri["p"], sub_valid)[
                    : S - 1
                ]
                for s in range(S):
                    head.tower_bias("bot", t)[s, : m - 1] = _cumulative_logits(
                        pri["q"][s], valid[t, s]
                    )[: m - 1]
            if head.bias:
                # the mean position in the whale bucket is often ~0.01 (its width reaches
                # the largest training value): a tight clip would start it far too high
                mp = np.clip(pri["pos"], _PRIOR_FLOOR, 1 - _PRIOR_FLOOR)
                head.tower_bias("bbt", t)[:, :m] = torch.as_tensor(
                    np.log(mp / (1 - mp)), dtype=torch.float32
                )


def _cumulative_logits(freq: np.ndarray, valid: np.ndarray) -> torch.Tensor:
    """logit(P(class > u)) of a class frequency vector (ordinal tower initialisation)."""
    f = np.where(valid, freq, 0.0)
    f = f / max(f.sum(), 1e-12)
    above = 1.0 - np.cumsum(f)  # P(class > u) for u = 0 .. len-1
    above = np.clip(above, _PRIOR_FLOOR, 1 - _PRIOR_FLOOR)
    return torch.as_tensor(np.log(above / (1 - above)), dtype=torch.float32)
