"""MEAN: the Multi-Expert Adaptive Network of Liu et al. (WeChat Pay).

The label range is pre-divided into ``n`` ordered label buckets (value ranges, the
paper's *distributions*; the zero value is its own bucket;
:class:`~ltvkit.preprocessing.LTVBucketizer`). Two branches read the customer's
features:

- **MVFE** (multi-view feature express, eqs. 2-7): ``M`` view experts on the shared
  representation and ``n`` softmax gates (an MMoE whose "tasks" are the buckets) give
  one embedding per bucket; an attention layer over these ``n`` embeddings, read as an
  ordered sequence of tokens, mixes them into one embedding ``e``; a linear layer maps
  ``e`` to the scaled label. Loss: Huber (eq. 8).
- **DAM** (distribution approximation module, eqs. 9-11): an MLP on the shared layer
  classifies the customer into the ``n`` buckets, ``b = softmax(k)``; the shared layer
  is the MVFE's (``dam_input="shared"``, default) or the DAM's own (``"separate"``).

The constrained attention joint alignment (eqs. 12-16) ties them together: the mean
row of the attention matrix, ``theta``, is pulled towards ``b`` (KL) and the DAM is
distilled towards ``softmax(theta / tau)`` (soft-label cross-entropy). ``predict``
inverts the label scaling and corrects its retransformation bias, so it returns
expected values in the original units.

With a 2-D ``y`` of cumulative spend at ``T`` horizons (the paper's cltv30/90/180/365
of the same users, §4) one network predicts every horizon: the experts and the shared
layers are shared, and each horizon has its own label buckets, gates, attention,
output layer and DAM logits (the MMoE multi-task reading of the paper's MTL-MEAN);
the losses of the horizons are summed. See ``docs/models/mean.md``.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import minimize_scalar
from sklearn.isotonic import IsotonicRegression
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback
from torch import nn

from ltvkit._utils import (
    Boolean,
    Increasing,
    Int,
    Options,
    Real,
    Units,
    check_quantile_levels,
    inverted_cdf_quantile,
)
from ltvkit.nn._base import TARGETS_KEY, BaseDeepRegressor, PreparedTargets
from ltvkit.nn._encoder import EncodedSpec
from ltvkit.nn._layers import MLP, MLPBank, SharedBottom
from ltvkit.preprocessing import BucketMergeWarning, LTVBucketizer

__all__ = ["MEANLoss", "MEANModule", "MEANRegressor"]

#: The small constant xi of eq. 15 inside ``log(q + xi)``; also used in the KL term
#: (eq. 13), where a float32 softmax can underflow to an exact 0.
XI = 1e-8

_LABEL_TRANSFORMS = ("linear", "log1p", "sqrt", "none")
#: "linear" maps the label cap to this value: the paper scales the labels and truncates
#: them to [0, 20].
_LINEAR_MAX = 20.0
_BIAS_CORRECTIONS = ("isotonic", "smearing", "balance", "none")
_DAM_INPUTS = ("shared", "separate")
_BUCKET_CALIBRATIONS = ("temperature", "none")
#: Range of the fitted bucket temperature (log scale search): 0.05 .. 20.
_LOG_TEMPERATURE_BOUNDS = (-3.0, 3.0)
#: Levels of the within-bucket quantile grid (the training labels' distribution inside
#: each bucket, linearly interpolated between these levels).
_WITHIN_BUCKET_LEVELS = np.linspace(0.0, 1.0, 101)


# -- label scaling -------------------------------------------------------------------------
def _scale(y: np.ndarray, kind: str, unit: float) -> np.ndarray:
    """The scaled label; ``unit`` is the label unit of ``"linear"`` (ignored otherwise)."""
    if kind == "linear":
        return y / unit
    if kind == "log1p":
        return np.log1p(y)
    if kind == "sqrt":
        return np.sqrt(y)
    return y.copy()


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """``np.interp`` in torch: piecewise-linear through ``(xp, fp)``, constant outside.

    ``fp`` may carry leading batch axes (``(..., K)``) with ``x`` of shape ``(..., m)``:
    one curve per leading index, all on the same knots ``xp``.
    """
    xp, fp = xp.to(x.device), fp.to(x.device)
    if xp.numel() == 1:
        return fp[..., :1].expand_as(x).clone() if fp.ndim > 1 else fp.expand_as(x).clone()
    i = torch.searchsorted(xp, x.contiguous()).clamp(1, xp.numel() - 1)
    x0, x1 = xp[i - 1], xp[i]
    if fp.ndim > 1:
        f0, f1 = fp.gather(-1, i - 1), fp.gather(-1, i)
    else:
        f0, f1 = fp[i - 1], fp[i]
    t = ((x - x0) / (x1 - x0)).clamp(0.0, 1.0)
    return f0 + t * (f1 - f0)


def _unscale(s: torch.Tensor, kind: str, unit: float) -> torch.Tensor:
    """Inverse of :func:`_scale` for ``s >= 0`` (callers clip first)."""
    if kind == "linear":
        return s * unit
    if kind == "log1p":
        return torch.expm1(s)
    if kind == "sqrt":
        return s * s
    return s


# -- modules ---------------------------------------------------------------------------------
class _SafeBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm that uses its running statistics on a 1-row training batch.

    The last training batch can hold a single row (``n_train % batch_size == 1``), on
    which batch statistics are undefined; torch raises there, ltvkit must not. (The same
    guard as CC-OR-Net's batch norm.)
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] < 2:
            return F.batch_norm(
                x,
                self.running_mean,
                self.running_var,
                self.weight,
                self.bias,
                False,
                0.0,
                self.eps,
            )
        return super().forward(x)


def _as_per_horizon(value: Any, n_horizons: int) -> list[Any]:
    """A number for every horizon, or one per horizon -> a list of ``n_horizons``."""
    if isinstance(value, numbers.Real):
        return [value] * n_horizons
    return list(value)


class MEANModule(nn.Module):
    """MVFE (experts, gates, attention over buckets, linear output) + DAM, per horizon.

    The ``M`` view experts are one :class:`~ltvkit.nn.MLPBank` (``M`` towers of
    ``Linear -> ReLU -> Dropout`` layers on the shared representation, no output layer,
    one ``einsum`` per layer), optionally followed by a batch normalization of every
    expert's output (``expert_batch_norm``, the paper's "one layer followed by a batch
    normalization"). The experts are shared by all horizons; each horizon ``t`` has its
    own ``n_t`` gates, attention (``W_q``, ``W_k``, ``W_a``), output layer and DAM
    logits. ``forward`` returns a dict with

    - ``"y_hat"`` ``(B, T)``: the prediction on each horizon's scaled-label scale,
      ``FC_t(e_t)`` (eq. 7);
    - ``"attention"``: a tuple of ``T`` attention matrices ``A_t`` ``(B, n_t, n_t)``
      (rows sum to 1);
    - ``"dam_logits"``: a tuple of ``T`` DAM logits ``k_t`` ``(B, n_t)`` (eq. 9), only
      with a DAM.

    Parameters
    ----------
    bottom : SharedBottom
        Shared layer of the MVFE branch (and of the DAM with ``dam_input="shared"``).
    dam_bottom : SharedBottom or None
        The DAM's own shared layer with ``dam_input="separate"``; None otherwise.
    n_buckets : int or sequence of int
        Number of label buckets ``n_t`` of each horizon (an int: one horizon).
    n_experts : int
    expert_units : sequence of int
        Widths of each view expert (at least one layer).
    dam_units : sequence of int
        MLP of the DAM between its shared layer and the ``n_t`` logits of each horizon.
    dropout : float, default=0.0
    init_output : float or sequence of float, default=0.0
        Starting bias of each horizon's output layer (the mean scaled label).
    init_dam_logits : sequence of float, sequence of sequences, or None, default=None
        Starting biases of the DAM logits (log bucket priors), per horizon.
    dam_input : {"separate", "shared"} or None, default="separate"
        Where the DAM reads: its own ``dam_bottom``, the MVFE's ``bottom``, or no DAM.
    expert_batch_norm : bool, default=False
        Batch normalization after the experts (each expert's output features).

    Examples
    --------
    >>> from ltvkit.nn._encoder import EncodedSpec
    >>> spec = EncodedSpec(3, (), (), ("a", "b", "c"), ())
    >>> module = MEANModule(SharedBottom(spec, (8,)), SharedBottom(spec, (8,)),
    ...                     n_buckets=4, n_experts=3, expert_units=(6,), dam_units=(5,))
    >>> out = module(torch.zeros(2, 3), torch.zeros(2, 0, dtype=torch.long))
    >>> out["y_hat"].shape, out["attention"][0].shape, out["dam_logits"][0].shape
    (torch.Size([2, 1]), torch.Size([2, 4, 4]), torch.Size([2, 4]))
    >>> two = MEANModule(SharedBottom(spec, (8,)), None, n_buckets=(4, 5), n_experts=3,
    ...                  expert_units=(6,), dam_units=(5,), dam_input="shared",
    ...                  expert_batch_norm=True)
    >>> out = two(torch.zeros(2, 3), torch.zeros(2, 0, dtype=torch.long))
    >>> out["y_hat"].shape, [tuple(k.shape) for k in out["dam_logits"]]
    (torch.Size([2, 2]), [(2, 4), (2, 5)])
    """

    def __init__(
        self,
        bottom: SharedBottom,
        dam_bottom: SharedBottom | None,
        *,
        n_buckets: int | Sequence[int],
        n_experts: int,
        expert_units: Sequence[int],
        dam_units: Sequence[int],
        dropout: float = 0.0,
        init_output: float | Sequence[float] = 0.0,
        init_dam_logits: Sequence[float] | Sequence[Sequence[float]] | None = None,
        dam_input: str | None = "separate",
        expert_batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if dam_input not in (*_DAM_INPUTS, None):
            raise ValueError(f"dam_input must be 'separate', 'shared' or None, got {dam_input!r}.")
        if (dam_input == "separate") != (dam_bottom is not None):
            raise ValueError("dam_bottom is required with dam_input='separate' and only then.")
        sizes = [int(n_buckets)] if isinstance(n_buckets, numbers.Integral) else list(n_buckets)
        self.n_buckets = tuple(int(n) for n in sizes)
        T, m = len(self.n_buckets), int(n_experts)
        self.n_horizons = T
        self.n_experts = m
        self.dam_input = dam_input
        self.bottom = bottom
        # MVFE, eqs. 2-3: M view experts shared by every horizon
        self.experts = MLPBank(m, bottom.out_features, expert_units, dropout=dropout)
        d = self.experts.out_features
        # the paper's "one layer followed by a batch normalization": each expert's output
        self.expert_norm = _SafeBatchNorm1d(m * d) if expert_batch_norm else None
        # n_t gates per horizon (one per bucket) over the M experts, all in one matrix
        self.gates = nn.Linear(bottom.out_features, sum(self.n_buckets) * m)
        # eqs. 4-5 per horizon: g'_t = tanh(W_q h_t + W_k h_t + b_g'),
        # alpha_t = softmax(g'_t W_a + b_a); W_q and W_k kept as the paper writes them
        self.w_q = nn.ModuleList(nn.Linear(d, d, bias=False) for _ in range(T))
        self.w_k = nn.ModuleList(nn.Linear(d, d) for _ in range(T))
        self.w_a = nn.ModuleList(nn.Linear(d, n) for n in self.n_buckets)
        self.output = nn.ModuleList(nn.Linear(d, 1) for _ in range(T))  # eq. 7, no activation
        with torch.no_grad():
            for layer, init in zip(self.output, _as_per_horizon(init_output, T), strict=True):
                layer.bias.fill_(float(init))
        self.dam_bottom = dam_bottom
        if dam_input is not None:
            width = (dam_bottom if dam_bottom is not None else bottom).out_features
            # eq. 9: k = MLP(ReLU(W_s x + b_s)), last layer of width n_t per horizon
            self.dam_mlp = MLP(width, dam_units, dropout)
            self.dam_head = nn.Linear(self.dam_mlp.out_features, sum(self.n_buckets))
            if init_dam_logits is not None:
                # one horizon's logits (numbers) or one sequence per horizon
                first = next(iter(init_dam_logits))
                per = [init_dam_logits] if isinstance(first, numbers.Real) else init_dam_logits
                flat = [float(v) for logits in per for v in logits]
                with torch.no_grad():
                    self.dam_head.bias.copy_(torch.as_tensor(flat))

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> dict[str, Any]:
        h = self.bottom(x_num, x_cat)
        experts = self.experts(h)  # (B, M, d)
        if self.expert_norm is not None:
            experts = self.expert_norm(experts.flatten(1)).view_as(experts)
        all_gates = self.gates(h)
        y_hat, attentions = [], []
        start = 0
        for t, n in enumerate(self.n_buckets):
            stop = start + n * self.n_experts
            # (B, n, M): G_i = softmax(W_g x), one gate per bucket
            gates = torch.softmax(all_gates[:, start:stop].view(-1, n, self.n_experts), dim=-1)
            start = stop
            tokens = torch.bmm(gates, experts)  # (B, n, d): f_i = sum_j G_ij E_j(x), eq. 2
            # attention over the ordered bucket tokens, all n tokens at once
            g = torch.tanh(self.w_q[t](tokens) + self.w_k[t](tokens))  # (B, n, d), eq. 4
            attention = torch.softmax(self.w_a[t](g), dim=-1)  # (B, n, n): row t = alpha_t
            e = torch.bmm(attention, tokens).mean(dim=1)  # (B, d): (1/n) sum_i (A H)_i, eq. 6
            y_hat.append(self.output[t](e).squeeze(-1))
            attentions.append(attention)
        out: dict[str, Any] = {"y_hat": torch.stack(y_hat, dim=1), "attention": tuple(attentions)}
        if self.dam_input is not None:
            base = self.dam_bottom(x_num, x_cat) if self.dam_bottom is not None else h
            logits = self.dam_head(self.dam_mlp(base))
            out["dam_logits"] = tuple(torch.split(logits, self.n_buckets, dim=1))
        return out


def soft_cross_entropy(p: torch.Tensor, q: torch.Tensor, xi: float = XI) -> torch.Tensor:
    """``H(p, q) = -sum_i p_i log(q_i + xi)`` over the last axis (eq. 15).

    Examples
    --------
    >>> p = torch.tensor([[0.0, 1.0]]); q = torch.tensor([[0.5, 0.5]])
    >>> round(float(soft_cross_entropy(p, q)), 4)
    0.6931
    """
    return -(p * torch.log(q + xi)).sum(dim=-1)


def _per_horizon_outputs(
    output: dict[str, Any], target: dict[str, torch.Tensor]
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]]:
    """``(y_hat, s, attention, dam_logits or None, z)`` of each horizon.

    Accepts the module's output (``y_hat`` ``(B, T)``, tuples of per-horizon tensors)
    and the one-horizon form (``y_hat`` ``(B,)``, tensors instead of tuples).
    """
    y_hat, s, z = output["y_hat"], target["s"], target["z"]
    attention, logits = output["attention"], output.get("dam_logits")
    if y_hat.ndim == 1:
        y_hat = y_hat[:, None]
    if s.ndim == 1:
        s, z = s.reshape(-1, 1), z.reshape(-1, 1)
    if isinstance(attention, torch.Tensor):
        attention = (attention,)
    if isinstance(logits, torch.Tensor):
        logits = (logits,)
    return [
        (
            y_hat[:, t],
            s[:, t],
            attention[t],
            None if logits is None else logits[t],
            z[:, t],
        )
        for t in range(y_hat.shape[1])
    ]


class MEANLoss(nn.Module):
    """Per-sample MEAN loss, eq. 17: ``L_cltv + L_kl + L_dis``, summed over horizons.

    Per horizon:

    - ``L_cltv``: Huber loss with threshold ``huber_delta`` between ``y_hat`` and the
      scaled label (eq. 8);
    - ``L_kl = KL(b || theta)`` with ``b = softmax(k)`` and ``theta`` the mean row of the
      attention matrix (eqs. 12-13), if ``kl``;
    - ``L_dis = beta * H(z, softmax(k)) + gamma * H(softmax(theta / tau), softmax(k / tau))``
      (eq. 14) with ``beta = hard_label_weight``, ``gamma = soft_label_weight`` and
      ``tau = distill_temperature``; the soft-label term only if ``distillation``.

    Without a DAM (the "MVFE only" ablation) the loss is ``L_cltv`` alone. No gradient
    is stopped: as in the paper's equations, ``L_kl`` moves both the attention and the
    DAM, and so does the soft-label term. Several horizons: the per-horizon losses are
    summed (the paper's MTL-MEAN, "summing the losses for joint optimization", §4.2).

    The target is a dict with ``"s"`` (scaled label, float, ``(B, T)`` or ``(B,)``) and
    ``"z"`` (bucket id, int64, same shape).

    Examples
    --------
    >>> out = {"y_hat": torch.zeros(2), "attention": torch.full((2, 3, 3), 1 / 3),
    ...        "dam_logits": torch.zeros(2, 3)}
    >>> target = {"s": torch.tensor([0.0, 2.0]), "z": torch.tensor([0, 2])}
    >>> MEANLoss()(out, target).shape
    torch.Size([2])
    """

    def __init__(
        self,
        *,
        huber_delta: float = 1.0,
        kl: bool = True,
        distillation: bool = True,
        hard_label_weight: float = 1.0,
        soft_label_weight: float = 1.0,
        distill_temperature: float = 2.0,
    ) -> None:
        super().__init__()
        self.huber_delta = float(huber_delta)
        self.kl = bool(kl)
        self.distillation = bool(distillation)
        self.hard_label_weight = float(hard_label_weight)
        self.soft_label_weight = float(soft_label_weight)
        self.distill_temperature = float(distill_temperature)

    def _horizon_loss(
        self,
        y_hat: torch.Tensor,
        s: torch.Tensor,
        attention: torch.Tensor,
        logits: torch.Tensor | None,
        z: torch.Tensor,
    ) -> torch.Tensor:
        loss = F.huber_loss(y_hat, s, reduction="none", delta=self.huber_delta)
        if logits is None:
            return loss
        theta = attention.mean(dim=1)  # (B, n), eq. 12; a distribution
        b = torch.softmax(logits, dim=-1)
        one_hot = F.one_hot(z, logits.shape[-1]).to(b.dtype)
        # eqs. 11 / 14, hard labels
        loss = loss + self.hard_label_weight * soft_cross_entropy(one_hot, b)
        if self.kl:  # eq. 13
            log_b = torch.log_softmax(logits, dim=-1)
            loss = loss + (b * (log_b - torch.log(theta + XI))).sum(dim=-1)
        if self.distillation and self.soft_label_weight:  # eq. 14, soft labels at tau
            tau = self.distill_temperature
            loss = loss + self.soft_label_weight * soft_cross_entropy(
                torch.softmax(theta / tau, dim=-1), torch.softmax(logits / tau, dim=-1)
            )
        return loss

    def forward(self, output: dict[str, Any], target: dict[str, torch.Tensor]) -> torch.Tensor:
        losses = [self._horizon_loss(*parts) for parts in _per_horizon_outputs(output, target)]
        total = losses[0]
        for loss in losses[1:]:
            total = total + loss
        return total


# -- estimator -------------------------------------------------------------------------------
class _EpochBiasCorrection(Callback):
    """Refits the retransformation on the training rows at the end of every epoch.

    ``predict`` of a MEAN model is ``bias_correction(s_hat)``, fitted after training
    (``_after_fit``); the net's own ``predict`` in training (what skorch's
    ``EpochScoring`` scores) must be the same function of the current weights, or an
    epoch's score is not the score of the model that epoch would give. So each epoch,
    before the user's callbacks run, this refits the correction on the trained rows'
    current scaled predictions, exactly as ``_after_fit`` does on the fitted weights.
    Only added when the user passes ``callbacks`` (nothing else predicts in training):
    it costs one forward pass over the training rows per epoch.
    """

    def __init__(self, estimator: MEANRegressor) -> None:
        self.estimator = estimator

    def on_epoch_end(self, net: Any, dataset_train: Any = None, **kwargs: Any) -> None:
        est = self.estimator
        if dataset_train is None or est is None:
            return
        was_training = net.module_.training
        net.module_.eval()
        s_parts, y_parts, w_parts = [], [], []
        with torch.inference_mode():
            for Xi, yi in net.get_iterator(dataset_train, training=False):
                targets = Xi[TARGETS_KEY]
                out = net.module_(**{k: v for k, v in Xi.items() if k != TARGETS_KEY})
                s_parts.append(est._scaled_prediction(out).cpu().numpy())
                y_parts.append(np.asarray(yi.cpu(), dtype=np.float64).reshape(len(yi), -1))
                w = targets.get("weight")
                w_parts.append(
                    np.ones(len(yi)) if w is None else np.asarray(w.cpu(), dtype=np.float64)
                )
        net.module_.train(was_training)
        s_hat, Y, w = np.concatenate(s_parts), np.concatenate(y_parts), np.concatenate(w_parts)
        est._epoch_bias_correction = [
            est._fit_bias_correction(Y[:, t], s_hat[:, t], w, t) for t in range(Y.shape[1])
        ]

    def on_train_end(self, net: Any, **kwargs: Any) -> None:
        # the fitted net keeps its callbacks: no reference back to the estimator
        self.estimator = None


def _has_dam(estimator: MEANRegressor) -> bool:
    if not estimator.dam:
        raise AttributeError(
            "this MEANRegressor was built with dam=False (the 'MVFE only' ablation), which "
            "has no bucket classifier."
        )
    return True


@dataclass(frozen=True)
class _LabelInfo:
    """What the module needs from the training labels (``PreparedTargets.info``)."""

    #: number of label buckets of each horizon
    n_buckets: tuple[int, ...]
    #: starting bias of each horizon's output layer: the mean scaled label
    init_output: tuple[float, ...]
    #: starting biases of each horizon's DAM logits: the smoothed log bucket priors
    init_dam_logits: tuple[tuple[float, ...], ...]


def _violation_rate(pred: np.ndarray) -> float:
    """Share of rows of ``(n, T)`` predictions that decrease somewhere along the horizons."""
    if pred.ndim != 2 or pred.shape[1] < 2:
        return 0.0
    # a relative tolerance: float64 rounding of equal values is not a violation
    tol = 1e-9 * np.maximum(np.abs(pred[:, :-1]), 1.0)
    return float((pred[:, 1:] < pred[:, :-1] - tol).any(axis=1).mean())


def _within_bucket_grid(
    y: np.ndarray, z: np.ndarray, w: np.ndarray, bucketizer: LTVBucketizer
) -> np.ndarray:
    """``(n_buckets, G)`` quantiles of the training labels inside each bucket.

    Row 0 (the zero bucket) is the point mass at 0. A positive bucket's row holds the
    sample-weighted quantiles (observed values, ``inverted_cdf``) of its training labels
    at ``_WITHIN_BUCKET_LEVELS``: level 0 is its smallest label, level 1 its largest. A
    business bucket without training rows spans its edges uniformly. The rows are made
    non-decreasing across buckets (they are value ranges), and every positive value is
    kept above the bucketizer's ``zero_tol``.
    """
    n = int(bucketizer.n_buckets_)
    levels = _WITHIN_BUCKET_LEVELS
    grid = np.zeros((n, levels.size))
    floor = np.nextafter(float(bucketizer.zero_tol), np.inf)
    for k in range(1, n):
        rows = (z == k) & (w > 0)
        if rows.any():
            wk = w[rows]
            weighted = not np.all(wk == wk[0])
            grid[k] = inverted_cdf_quantile(y[rows], levels, wk if weighted else None)
        else:
            lo, up = float(bucketizer.lower_[k]), float(bucketizer.upper_[k])
            grid[k] = np.linspace(max(lo, floor), max(up, lo, floor), levels.size)
    grid[1:] = np.maximum(grid[1:], floor)
    return np.maximum.accumulate(grid.ravel()).reshape(grid.shape)


class MEANRegressor(BaseDeepRegressor):
    """Multi-Expert Adaptive Network (MEAN) for customer lifetime value.

    Liu, Zhou, Liu, Su & Chen, "MEAN: Multi-Expert Adaptive Network for Customer
    Lifetime Value Prediction" (WeChat Pay). The label range is split into
    ``n_buckets`` ordered label buckets (the paper's "distributions"; zero is its own
    bucket; :class:`~ltvkit.preprocessing.LTVBucketizer`). The MVFE branch (an MMoE
    with one gate per bucket, then an attention layer over the bucket embeddings)
    regresses the scaled label with a Huber loss; the DAM branch classifies the bucket;
    the KL and soft-label distillation terms align the attention with the DAM.
    ``predict`` inverts the label scaling, corrects its retransformation bias and
    returns expected values in the original units.

    ``y`` may be 1-D (one horizon) or 2-D ``(n, T)``: cumulative spend at ``T``
    increasing horizons (e.g. the next 13/26/39 weeks), non-decreasing along each row
    (``ValueError`` otherwise); the paper's cltv30/90/180/365 of the same users. One
    network then predicts all horizons (shared layers and experts; per horizon its own
    buckets, label scaling, gates, attention, output layer, DAM logits and
    retransformation; the losses summed), and ``predict`` returns ``(n, T)``
    **non-decreasing along the horizons for every customer**: a running maximum over the
    horizons is applied after the retransformation (an enforced step;
    :meth:`monotonic_violation_rate` reports how often it had to act). For a 1-D ``y``
    everything answers in 1-D, exactly as a one-horizon model.

    Parameters
    ----------
    n_buckets : int, default=5
        Number of label buckets including the zero bucket (the paper's ``n = 5``
        distributions), passed to ``LTVBucketizer(n_buckets=...)``: positive cuts at
        the 50th, 75th and 87.5th percentiles of the positive training labels (of each
        horizon). Tied cuts are merged, so ``n_buckets_`` may be smaller. Ignored when
        ``boundaries`` is given.
    boundaries : sequence of float or None, default=None
        Business cut points between the positive buckets (``len(boundaries) + 2``
        buckets, the same cuts for every horizon), as in
        ``LTVBucketizer(boundaries=...)``: strictly increasing, all above the
        bucketizer's ``zero_tol`` (1e-6).
    n_experts : int, default=5
        Number of view experts ``M``.
    expert_units : tuple of int, default=(128,)
        Widths of each view expert (the paper: "only one layer"; its width is not
        given).
    expert_batch_norm : bool, default=False
        Batch normalization of every expert's output (after its last layer), the
        paper's "there is only one layer followed by a batch normalization operation"
        (§4.1, read as the expert layer). A reading, not the default: it is measured
        in ``docs/models/mean.md``. In training the statistics are those of the batch,
        so a row with ``sample_weight=k`` is not exactly ``k`` repeated rows.
    dam_units : tuple of int, default=(256, 128, 64)
        MLP of the DAM on top of its shared layer (the paper's sizes).
    huber_delta : float, default=1.0
        Threshold ``delta`` of the Huber loss on the scaled label (eq. 8).
    kl : bool, default=True
        Use the KL alignment term ``KL(b || theta)`` (eq. 13). False: the paper's
        "without L_kl" ablation.
    distillation : bool, default=True
        Use the soft-label distillation term of ``L_dis`` (eq. 14). False: the
        "without L_dis_2" ablation.
    dam : bool, default=True
        Build the DAM. False: the "MVFE only" ablation (no DAM, no ``L_dis``, no
        ``L_kl``; ``kl``, ``distillation`` and ``dam_input`` are ignored). Without a DAM
        there is no bucket classifier: ``predict_bucket_proba`` is not available, and
        ``predict_nonzero_proba`` / ``predict_quantiles`` use bucket probabilities
        calibrated on the MVFE's own score instead (see ``predict_nonzero_proba``).
    dam_input : {"shared", "separate"}, default="shared"
        The layer the DAM's MLP reads (eq. 9, ``k = MLP(ReLU(W_s x + b_s))``, "via a
        simple shared layer", ``W_s`` "the parameters of the shared layer").
        ``"shared"``: the MVFE's shared layer (``hidden_units``), the one shared layer
        of the paper's §3 and §4.1, so the DAM's losses also train the representation
        the regression reads. ``"separate"``: the DAM has its own shared layer of the
        same widths, a bypass that touches the MVFE only through the alignment terms
        (ltvkit's reading before 2026-12). Both rank the same within the seed noise on
        CDNOW, Online Retail and the first-purchase CDNOW table; ``"shared"`` is the
        paper's reading and, with one bottom fewer, trains faster
        (``docs/models/mean.md``).
    bucket_calibration : {"temperature", "none"}, default="temperature"
        How the DAM's bucket probabilities are read after training (per horizon).
        ``"temperature"``: ``softmax(k / T)`` with one temperature ``T`` fitted on the
        training rows by maximum likelihood of their buckets (sample-weighted; not in
        the paper): the soft-label term of eq. 14 distils a nearly uniform
        ``softmax(theta / tau)`` into the DAM, so its ``softmax(k)`` is too flat, and
        quantiles built from it cover too much (CDNOW: ``P(y <= q_0.9) = 0.96``;
        ``docs/models/mean.md``). ``"none"``: ``softmax(k)``, eq. 10 as written. It
        changes ``predict_bucket_proba``, ``predict_nonzero_proba`` and
        ``predict_quantiles``, never training or ``predict``.
    hard_label_weight : float, default=1.0
        Weight ``beta`` of the hard-label term ``H(z, softmax(k))`` of ``L_dis``
        (eq. 14), the DAM's bucket cross-entropy. The paper does not give ``beta``;
        1 is the weight of the soft-label term.
    soft_label_weight : float, default=1.0
        Weight ``gamma`` of the soft-label term ``H(softmax(theta / tau),
        softmax(k / tau))`` of ``L_dis`` (eq. 14); 0 is ``distillation=False``.
    distill_temperature : float, default=2.0
        Distillation temperature ``tau`` of the soft-label term (eq. 14).
    label_transform : {"linear", "log1p", "sqrt", "none"}, default="linear"
        Scaling of the (truncated, see ``label_cap_quantile``) label before the Huber
        loss, per horizon. ``"linear"``: ``20 * min(y, cap) / cap``, the paper's
        "scaled the labels and truncated them to the range [0, 20]"; the network ranks
        by a robust location of the spend itself. ``"log1p"``: ``log(1 + min(y, cap))``,
        which ranks by a robust location of ``log(1 + y)`` and ranks worse by Gini and
        AUC on zero-heavy data (``docs/models/mean.md``). ``"sqrt"``:
        ``sqrt(min(y, cap))``; ``"none"``: ``min(y, cap)``. The scaled prediction is
        clipped to ``[0, label_max_]`` (the scaled cap), so it is non-negative and never
        extrapolates; ``bias_correction`` turns it into a value in the original units.
    label_cap_quantile : float in (0, 1], default=0.99
        Labels above this quantile of the positive training labels (an observed value,
        sample-weighted; per horizon) are truncated to it before scaling: the paper's
        truncation (the paper does not say where; ltvkit truncates the top 1% of
        spenders, so one extreme whale cannot compress every other label towards 0).
        ``1.0``: the largest training label, no truncation. The truncation only shapes
        the training target: with ``bias_correction="isotonic"`` (default) predictions
        are mapped back to ``E[y | s_hat]`` with the untruncated labels.
    bias_correction : {"isotonic", "balance", "smearing", "none"}, default="isotonic"
        How the scaled prediction ``s_hat`` becomes an expected value in the original
        units (per horizon). A Huber fit estimates something between the mean and the
        median of the scaled, truncated label, so the plain inverse ``T^-1(s_hat)`` is
        well below ``E[y | x]`` (its mean is about 58% of the mean label on CDNOW with
        the defaults). All options are fitted on the training rows after training and
        keep the network's ranking.
        ``"isotonic"``: ``E[y | s_hat]`` by isotonic regression of ``y`` on ``s_hat``
        (a non-parametric smearing that allows the residual spread to change with
        ``s_hat``, as it does with zero inflation); ties between its steps are broken
        by ``s_hat`` with a term of at most 1e-4 of the mean label. ``"balance"``:
        ``c * T^-1(s_hat)`` with the factor ``c`` chosen so the predicted training total
        equals the observed total (as ``TwoStageRegressor``'s ``"balance"``).
        ``"smearing"``: Duan's ``mean_i T^-1(s_hat + r_i)`` over the training residuals
        (assumes one residual distribution for everybody; badly over-predicts
        zero-inflated data, kept for comparison). ``"none"``: ``T^-1(s_hat)``, a
        median-like value. ``sample_weight`` weights the correction as it weights the
        loss. In training, when ``callbacks`` are given (e.g. skorch's
        ``EpochScoring``), the correction is refitted at the end of every epoch on the
        training rows, so the net's ``predict`` that the callbacks score is the
        estimator's ``predict`` of that epoch's weights (without the early-stopping
        rows, which the final correction also uses).
    hidden_units : tuple of int, default=(512, 256)
        The shared layer (the paper's ``[512, 256]``), read by the MVFE and the DAM;
        with ``dam_input="separate"`` the DAM has its own shared layer of these widths.
    batch_size : int, default=1024
        The paper's batch size.
    max_epochs : int, default=30
        The paper's MEAN "typically converges within 12 to 15 epochs" with early
        stopping. The cosine learning-rate schedule spans ``max_epochs``; with the
        shared default of 100 it has barely decayed when early stopping fires, and the
        ranking of the paper-sized network swings from epoch to epoch (CDNOW Gini
        0.721 ± 0.013 over 3 seeds against 0.727 ± 0.002 with 30;
        ``docs/models/mean.md``).
    learning_rate : float, default=1e-3
        The paper's Adam learning rate.
    {shared_params}

    Attributes
    ----------
    net_ : skorch NeuralNet
        Trained net; ``net_.history`` holds the loss curves.
    encoder_ : TabularEncoder
    n_iter_ : int
    best_epoch_ : int
    target_ndim_ : int
        1 for a 1-D ``y`` (everything answers without the horizon axis), else 2.
    n_horizons_ : int
        ``T``, the number of columns of ``y`` (1 for a 1-D ``y``).
    bucketizers_ : list of LTVBucketizer
        The label buckets of each horizon (``bucketizers_[t].boundaries_``).
    bucketizer_ : LTVBucketizer
        The longest horizon's, ``bucketizers_[-1]`` (the only one for a 1-D ``y``).
    n_buckets_ : int
        Number of label buckets of the longest horizon (``bucketizers_[t].n_buckets_``
        for the others).
    within_bucket_quantiles_ : list of ndarray of shape (n_buckets, 101)
        Per horizon, the training labels' quantiles inside each bucket at levels
        0, 0.01, ..., 1 (row 0: the zero bucket, all 0): the within-bucket part of
        :meth:`predict_quantiles`.
    label_cap_ : float or ndarray of shape (n_horizons,)
        The truncation point of the labels (``label_cap_quantile`` of the positive
        training labels), per horizon (a float for a 1-D ``y``; the same for the
        attributes below).
    label_max_ : float or ndarray
        The scaled cap; scaled predictions are clipped to ``[0, label_max_]``.
    label_transform_ : str
        The label transform the network was trained with.
    label_unit_ : float or ndarray
        ``label_cap_ / 20`` for ``label_transform="linear"``, 1 otherwise.
    bias_correction_ : dict or list of dict
        Fitted retransformation (per horizon): its ``kind``; the isotonic knots ``x``,
        ``y`` and ``tie_break``; ``factor`` for ``"balance"`` and for smearing of
        ``log1p``; residual moments ``m1``, ``m2`` for other smearings.
    bucket_temperature_ : float or ndarray of shape (n_horizons,)
        The DAM's fitted temperature ``T`` per horizon (1.0 with
        ``bucket_calibration="none"`` or ``dam=False``).
    score_bucket_survival_ : list of list of tuple or None
        Only with ``dam=False``: per horizon and bucket ``i >= 1``, the isotonic knots
        of ``P(bucket >= i | s_hat)`` fitted on the training rows (None with a DAM).
    train_violation_rate_ : float
        Share of training customers whose predictions decreased somewhere along the
        horizons before the running maximum (0 for one horizon).

    Examples
    --------
    >>> import numpy as np
    >>> from ltvkit.nn import MEANRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3))
    >>> y = (rng.random(500) < 0.4) * np.exp(1 + X[:, 0] + 0.5 * rng.normal(size=500))
    >>> model = MEANRegressor(hidden_units=(32,), max_epochs=5, random_state=0).fit(X, y)
    >>> model.predict(X[:2]).shape
    (2,)
    >>> model.predict_bucket_proba(X[:2]).shape
    (2, 5)
    >>> model.predict_quantiles(X[:2], [0.5, 0.9]).shape
    (2, 2)
    >>> Y = np.c_[y, y + (rng.random(500) < 0.3) * 5.0]  # cumulative spend, 2 horizons
    >>> two = MEANRegressor(hidden_units=(32,), max_epochs=5, random_state=0).fit(X, Y)
    >>> pred = two.predict(X)
    >>> pred.shape, bool((pred[:, 1] >= pred[:, 0]).all())
    ((500, 2), True)
    """

    _multi_horizon = True

    def __init__(
        self,
        *,
        n_buckets: int = 5,
        boundaries: Sequence[float] | None = None,
        n_experts: int = 5,
        expert_units: Sequence[int] = (128,),
        expert_batch_norm: bool = False,
        dam_units: Sequence[int] = (256, 128, 64),
        huber_delta: float = 1.0,
        kl: bool = True,
        distillation: bool = True,
        dam: bool = True,
        dam_input: str = "shared",
        bucket_calibration: str = "temperature",
        hard_label_weight: float = 1.0,
        soft_label_weight: float = 1.0,
        distill_temperature: float = 2.0,
        label_transform: str = "linear",
        label_cap_quantile: float = 0.99,
        bias_correction: str = "isotonic",
        hidden_units: Sequence[int] = (512, 256),
        dropout: float = 0.0,
        embedding_dim: int | None = None,
        log_transform: bool | str = "auto",
        min_category_frequency: int = 5,
        batch_size: int = 1024,
        max_epochs: int = 30,
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
        **BaseDeepRegressor._parameter_constraints,
        "n_buckets": [Int(2)],
        # anything numpy reads as a 1-D array (list, tuple, ndarray, Series), with
        # cut points above LTVBucketizer's zero_tol (1e-6): the first positive bucket
        "boundaries": [Increasing(Real(1e-6, None, closed="neither")), None],
        "n_experts": [Int(1)],
        "expert_units": [Units(allow_empty=False)],
        "expert_batch_norm": [Boolean()],
        "dam_units": [Units()],
        "huber_delta": [Real(0.0, None, closed="neither")],
        "kl": [Boolean()],
        "distillation": [Boolean()],
        "dam": [Boolean()],
        "dam_input": [Options(*_DAM_INPUTS)],
        "bucket_calibration": [Options(*_BUCKET_CALIBRATIONS)],
        "hard_label_weight": [Real(0.0)],
        "soft_label_weight": [Real(0.0)],
        "distill_temperature": [Real(0.0, None, closed="neither")],
        "label_transform": [Options(*_LABEL_TRANSFORMS)],
        "label_cap_quantile": [Real(0.0, 1.0, closed="right")],
        "bias_correction": [Options(*_BIAS_CORRECTIONS)],
    }

    # -- targets ----------------------------------------------------------------------
    def _prepare_targets(self, y: np.ndarray, sample_weight: np.ndarray | None) -> PreparedTargets:
        # a refit: the previous fit's correction must not serve this training's predict
        self.__dict__.pop("bias_correction_", None)
        self.__dict__.pop("_epoch_bias_correction", None)
        one_d = y.ndim == 1 or getattr(self, "target_ndim_", 2) == 1
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        w = np.ones(Y.shape[0]) if sample_weight is None else sample_weight
        T = Y.shape[1]
        self.n_horizons_ = T
        self.label_transform_ = self.label_transform
        bucketizers, grids, caps, units, maxima = [], [], [], [], []
        S = np.empty(Y.shape, dtype=np.float64)
        Z = np.empty(Y.shape, dtype=np.int64)
        init_output, init_logits = [], []
        for t in range(T):
            yt = Y[:, t]
            bucketizer, z = self._fit_buckets(yt, sample_weight)
            bucketizers.append(bucketizer)
            grids.append(_within_bucket_grid(yt, z, w, bucketizer))
            # rows of weight 0 do not count as training data; an observed value as the
            # cap (inverted_cdf), so integer weights give the cap of the repeated rows
            positive = (yt > 0) & (w > 0)
            cap = 1.0  # a horizon without a positive label: every scaled label is 0
            if positive.any():
                weighted = not np.all(w[positive] == w[positive][0])
                cap = float(
                    inverted_cdf_quantile(
                        yt[positive],
                        np.asarray([float(self.label_cap_quantile)]),
                        w[positive] if weighted else None,
                    )[0]
                )
            unit = cap / _LINEAR_MAX if self.label_transform == "linear" else 1.0
            caps.append(cap)
            units.append(unit)
            S[:, t] = _scale(np.minimum(yt, cap), self.label_transform_, unit)
            maxima.append(float(_scale(np.array([cap]), self.label_transform_, unit)[0]))
            Z[:, t] = z
            # starting values: the output layer at the mean scaled label, the DAM at the
            # bucket priors (smoothed so an empty business bucket keeps a finite logit)
            n_t = int(bucketizer.n_buckets_)
            counts = np.bincount(z, weights=w, minlength=n_t)
            init_output.append(float(np.average(S[:, t], weights=w)))
            init_logits.append(tuple(np.log((counts + 1.0) / (counts.sum() + n_t)).tolist()))
        self.bucketizers_ = bucketizers
        self.bucketizer_ = bucketizers[-1]
        self.n_buckets_ = int(bucketizers[-1].n_buckets_)
        self.within_bucket_quantiles_ = grids
        self.label_cap_ = caps[0] if one_d else np.asarray(caps)
        self.label_unit_ = units[0] if one_d else np.asarray(units)
        self.label_max_ = maxima[0] if one_d else np.asarray(maxima)
        info = _LabelInfo(
            n_buckets=tuple(int(b.n_buckets_) for b in bucketizers),
            init_output=tuple(init_output),
            init_dam_logits=tuple(init_logits),
        )
        return PreparedTargets({"s": S, "z": Z}, info=info)

    def _fit_buckets(
        self, y: np.ndarray, sample_weight: np.ndarray | None
    ) -> tuple[LTVBucketizer, np.ndarray]:
        """One horizon's bucketizer and bucket ids (warns once if ties merged buckets)."""
        if self.boundaries is not None:
            bucketizer, fit_weight = LTVBucketizer(boundaries=self.boundaries), None
        else:
            # weighted quantiles (frequency weights: integer weights give the buckets of
            # the repeated rows, rows of weight 0 do not count)
            bucketizer = LTVBucketizer(n_buckets=int(self.n_buckets))
            fit_weight = sample_weight
        with warnings.catch_warnings():
            # a merged bucket is reported once, below, in terms of this model
            warnings.simplefilter("ignore", BucketMergeWarning)
            z = bucketizer.fit_transform(y.reshape(-1, 1), sample_weight=fit_weight).ravel()
        if self.boundaries is None and bucketizer.n_buckets_ < self.n_buckets:
            warnings.warn(
                f"MEANRegressor: tied label quantiles, {bucketizer.n_buckets_} buckets "
                f"instead of n_buckets={self.n_buckets}.",
                BucketMergeWarning,
                stacklevel=4,
            )
        return bucketizer, z.astype(np.int64)

    def _per_horizon(self, name: str) -> np.ndarray:
        """A fitted per-horizon attribute (float for a 1-D ``y``) as a 1-D array."""
        return np.atleast_1d(np.asarray(getattr(self, name), dtype=np.float64))

    def _scaled_label(self, y: np.ndarray) -> np.ndarray:
        """The regression target: ``T(min(y, label_cap_))`` with the fitted transform."""
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        caps, units = self._per_horizon("label_cap_"), self._per_horizon("label_unit_")
        out = np.column_stack(
            [
                _scale(np.minimum(Y[:, t], caps[t]), self.label_transform_, units[t])
                for t in range(Y.shape[1])
            ]
        )
        return out[:, 0] if y.ndim == 1 else out

    # -- module and loss --------------------------------------------------------------
    def _build_module(self, spec: EncodedSpec, info: _LabelInfo) -> MEANModule:
        separate = self.dam and self.dam_input == "separate"
        return MEANModule(
            self._make_bottom(spec),
            self._make_bottom(spec) if separate else None,
            n_buckets=info.n_buckets,
            n_experts=int(self.n_experts),
            expert_units=tuple(int(u) for u in self.expert_units),
            dam_units=tuple(int(u) for u in self.dam_units),
            dropout=float(self.dropout),
            init_output=info.init_output,
            init_dam_logits=info.init_dam_logits,
            dam_input=self.dam_input if self.dam else None,
            expert_batch_norm=bool(self.expert_batch_norm),
        )

    def _build_criterion(self, info: _LabelInfo) -> MEANLoss:
        return MEANLoss(
            huber_delta=float(self.huber_delta),
            kl=bool(self.kl),
            distillation=bool(self.distillation),
            hard_label_weight=float(self.hard_label_weight),
            soft_label_weight=float(self.soft_label_weight),
            distill_temperature=float(self.distill_temperature),
        )

    def _model_callbacks(self) -> list[tuple[str, Callback]]:
        # the user's callbacks may predict in training (EpochScoring): keep the net's
        # predict the estimator's, with the correction refitted each epoch
        if self.callbacks:
            return [("epoch_bias_correction", _EpochBiasCorrection(self))]
        return []

    # -- prediction -------------------------------------------------------------------
    def _corrections(self) -> list[dict[str, Any]]:
        if "bias_correction_" not in self.__dict__:
            # in training (the fitted correction does not exist yet): the one refitted
            # at the end of the last epoch, else the plain inverse of the scaling
            epoch = self.__dict__.get("_epoch_bias_correction")
            return epoch if epoch is not None else [{"kind": "none"}] * self.n_horizons_
        c = self.bias_correction_
        return [c] if isinstance(c, dict) else list(c)

    def _scaled_prediction(self, output: dict[str, Any]) -> torch.Tensor:
        """``(B, T)`` scaled predictions, clipped to ``[0, label_max_]`` per horizon."""
        s = output["y_hat"].double()
        # clip at 0 (no negative spend) and at the training maximum (no extrapolation)
        top = torch.as_tensor(self._per_horizon("label_max_"), device=s.device)
        return torch.minimum(s.clamp_min(0.0), top)

    def _raw_prediction(self, output: dict[str, Any]) -> torch.Tensor:
        """``(B, T)`` expected values per horizon, before the running maximum."""
        s_hat = self._scaled_prediction(output)
        units = self._per_horizon("label_unit_")
        cols = [
            self._retransform(s_hat[:, t], params, float(units[t]))
            for t, params in enumerate(self._corrections())
        ]
        return torch.stack(cols, dim=1)

    def _output_to_prediction(self, output: dict[str, Any]) -> torch.Tensor:
        # cumulative spend cannot decrease along the horizons: the enforced step
        return torch.cummax(self._raw_prediction(output), dim=1).values

    def _retransform(
        self, s_hat: torch.Tensor, params: dict[str, Any], unit: float
    ) -> torch.Tensor:
        # the fitted kinds, not the hyperparameters: set_params after fit changes nothing
        kind = self.label_transform_
        correction = params["kind"]
        if correction == "isotonic":
            calibrated = _interp(s_hat, params["x"], params["y"])
            # the isotonic map is a step function: break its ties by the network's own
            # score (adds at most tie_break * label_max_, 1e-4 of the mean label)
            return calibrated + params["tie_break"] * s_hat
        if correction == "balance":
            return params["factor"] * _unscale(s_hat, kind, unit)
        if correction == "none":
            return _unscale(s_hat, kind, unit)
        # smearing: mean over residuals r_i of T^-1(s_hat + r_i), in closed form
        if kind == "log1p":  # mean(exp(s_hat + r)) - 1 = exp(s_hat) * mean(exp(r)) - 1
            return (torch.exp(s_hat) * params["factor"] - 1.0).clamp_min(0.0)
        if kind == "sqrt":  # mean((s_hat + r)**2)
            return (s_hat * s_hat + 2.0 * s_hat * params["m1"] + params["m2"]).clamp_min(0.0)
        return ((s_hat + params["m1"]) * unit).clamp_min(0.0)  # linear, none

    # -- after training ----------------------------------------------------------------
    def _after_fit(self, X: object, y: np.ndarray, sample_weight: np.ndarray | None) -> None:
        """Fit the retransformation ``bias_correction_`` (and, without a DAM, the
        score-based bucket probabilities); record ``train_violation_rate_``.

        On the trained network's scaled predictions of every training row, the
        early-stopping rows included: a one-dimensional monotone map needs many rows
        more than it needs out-of-sample scores (``docs/models/mean.md`` compares
        both). Sample-weighted, like the loss.
        """
        self.__dict__.pop("_epoch_bias_correction", None)  # training's, not the model's
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        w = np.ones(Y.shape[0]) if sample_weight is None else sample_weight
        s_hat = self._forward_outputs(X, self._scaled_prediction)  # (n, T)
        fitted = [self._fit_bias_correction(Y[:, t], s_hat[:, t], w, t) for t in range(Y.shape[1])]
        self.bias_correction_ = fitted[0] if self.target_ndim_ == 1 else fitted
        temperatures = [1.0] * Y.shape[1]
        if self.dam and self.bucket_calibration == "temperature":
            logits = self._forward_outputs(
                X, lambda out: torch.cat(out["dam_logits"], dim=1).double()
            )
            sizes = [int(b.n_buckets_) for b in self.bucketizers_]
            parts = np.split(logits, np.cumsum(sizes)[:-1], axis=1)
            temperatures = [
                self._fit_temperature(Y[:, t], parts[t], w, t) for t in range(Y.shape[1])
            ]
        self.bucket_temperature_ = (
            temperatures[0] if self.target_ndim_ == 1 else np.asarray(temperatures)
        )
        self.score_bucket_survival_ = None
        if not self.dam:
            self.score_bucket_survival_ = [
                self._fit_score_survival(Y[:, t], s_hat[:, t], w, t) for t in range(Y.shape[1])
            ]
        self.train_violation_rate_ = _violation_rate(
            self._forward_outputs(X, self._raw_prediction)
        )

    def _fit_bias_correction(
        self, y: np.ndarray, s_hat: np.ndarray, w: np.ndarray, horizon: int = 0
    ) -> dict[str, Any]:
        """One horizon's retransformation from ``s_hat`` to the original units."""
        kind = self.label_transform_
        correction = self.bias_correction
        unit = float(self._per_horizon("label_unit_")[horizon])
        if correction == "none":
            return {"kind": correction}
        if correction == "isotonic":
            keep = w > 0
            iso = IsotonicRegression(y_min=0.0, out_of_bounds="clip", increasing=True)
            iso.fit(s_hat[keep], y[keep], sample_weight=w[keep])
            scale = max(float(self._per_horizon("label_max_")[horizon]), 1e-12)
            return {
                "kind": correction,
                "x": torch.from_numpy(np.asarray(iso.X_thresholds_, dtype=np.float64)),
                "y": torch.from_numpy(np.asarray(iso.y_thresholds_, dtype=np.float64)),
                "tie_break": 1e-4 * float(np.average(y, weights=w)) / scale,
            }
        if correction == "balance":
            # the factor that makes the predicted training total the observed one
            back = _unscale(torch.from_numpy(s_hat), kind, unit).numpy()
            denom = float(np.average(back, weights=w))
            factor = float(np.average(y, weights=w)) / denom if denom > 0 else 1.0
            return {"kind": correction, "factor": factor}
        cap = float(self._per_horizon("label_cap_")[horizon])
        r = _scale(np.minimum(y, cap), kind, unit) - s_hat
        if kind == "log1p":
            # exp(r) with r <= label_max_ (s_hat >= 0), so this cannot overflow
            return {"kind": correction, "factor": float(np.average(np.exp(r), weights=w))}
        return {
            "kind": correction,
            "m1": float(np.average(r, weights=w)),
            "m2": float(np.average(r * r, weights=w)),
        }

    def _fit_temperature(
        self, y: np.ndarray, logits: np.ndarray, w: np.ndarray, horizon: int
    ) -> float:
        """The temperature ``T`` maximising the weighted likelihood of the buckets."""
        z = self.bucketizers_[horizon].transform(y.reshape(-1, 1)).ravel()
        keep = w > 0
        k = torch.from_numpy(logits[keep])
        idx = torch.from_numpy(z[keep].astype(np.int64))[:, None]
        wk = torch.from_numpy(w[keep] / w[keep].sum())

        def nll(log_t: float) -> float:
            log_p = torch.log_softmax(k / float(np.exp(log_t)), dim=-1).gather(1, idx)[:, 0]
            return -float((wk * log_p).sum())

        res = minimize_scalar(nll, bounds=_LOG_TEMPERATURE_BOUNDS, method="bounded")
        return float(np.exp(res.x))

    def _fit_score_survival(
        self, y: np.ndarray, s_hat: np.ndarray, w: np.ndarray, horizon: int
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Isotonic ``P(bucket >= i | s_hat)``, ``i = 1 .. n - 1`` (no DAM)."""
        z = self.bucketizers_[horizon].transform(y.reshape(-1, 1)).ravel()
        keep = w > 0
        knots = []
        for i in range(1, int(self.bucketizers_[horizon].n_buckets_)):
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            iso.fit(s_hat[keep], (z[keep] >= i).astype(np.float64), sample_weight=w[keep])
            knots.append(
                (
                    torch.from_numpy(np.asarray(iso.X_thresholds_, dtype=np.float64)),
                    torch.from_numpy(np.asarray(iso.y_thresholds_, dtype=np.float64)),
                )
            )
        return knots

    # -- distributions ----------------------------------------------------------------
    def _bucket_distribution(self, output: dict[str, Any], horizon: int) -> torch.Tensor:
        """``(B, n_t)`` float64 bucket probabilities of one horizon.

        The DAM's ``softmax(k_t)``; without a DAM, differences of the isotonic
        ``P(bucket >= i | s_hat)`` fitted on the training rows.
        """
        if self.dam:
            return self._dam_proba(output, horizon)
        s_hat = self._scaled_prediction(output)[:, horizon]
        surv = [_interp(s_hat, x, p) for x, p in self.score_bucket_survival_[horizon]]
        above = torch.stack([torch.ones_like(s_hat), *surv], dim=1).clamp(0.0, 1.0)
        above = torch.cummin(above, dim=1).values  # nested events: P(>= i) non-increasing
        below = torch.cat([above[:, 1:], torch.zeros_like(above[:, :1])], dim=1)
        return above - below

    def _dam_proba(self, output: dict[str, Any], horizon: int) -> torch.Tensor:
        """``softmax(k_t / T_t)``, the DAM's (calibrated) bucket probabilities."""
        temperature = float(self._per_horizon("bucket_temperature_")[horizon])
        return torch.softmax(output["dam_logits"][horizon].double() / temperature, dim=-1)

    def _nonzero_proba(self, output: dict[str, Any]) -> torch.Tensor:
        """``(B, T)`` P(y_t > 0), made non-decreasing along the horizons."""
        cols = [1.0 - self._bucket_distribution(output, t)[:, 0] for t in range(self.n_horizons_)]
        return torch.cummax(torch.stack(cols, dim=1), dim=1).values.clamp(0.0, 1.0)

    def _horizon_quantiles(
        self, output: dict[str, Any], horizon: int, q: torch.Tensor
    ) -> torch.Tensor:
        """``(B, n_q)`` quantiles of the bucket distribution with within-bucket values."""
        proba = self._bucket_distribution(output, horizon)
        grid = torch.as_tensor(self.within_bucket_quantiles_[horizon], device=proba.device)
        cum = proba.cumsum(-1)
        cum = cum / cum[:, -1:].clamp_min(1e-300)
        qq = q.to(proba.device).expand(cum.shape[0], -1).contiguous()  # (B, n_q)
        # the first bucket whose cumulative probability reaches the level: bucket 0
        # (value 0) for every level <= P(y = 0 | x)
        k = torch.searchsorted(cum, qq).clamp_max(cum.shape[1] - 1)
        prev = torch.cat([torch.zeros_like(cum[:, :1]), cum[:, :-1]], dim=1).gather(1, k)
        mass = proba.gather(1, k)
        frac = ((qq - prev) / mass.clamp_min(1e-300)).clamp(0.0, 1.0)
        # the within-bucket quantile at `frac` of bucket k: linear between the grid's
        # equally spaced levels (index arithmetic, no (B, n_q, G) tensor)
        G = grid.shape[1]
        pos = frac * (G - 1)
        j = pos.floor().clamp(0, G - 2).long()
        step = pos - j
        flat = grid.reshape(-1)
        lo = flat[k * G + j]
        value = lo + step * (flat[k * G + j + 1] - lo)
        return torch.where(k == 0, torch.zeros_like(value), value)

    # -- public API -------------------------------------------------------------------
    def _horizon(self, horizon: int) -> int:
        check_is_fitted(self, "n_horizons_")
        T = self.n_horizons_
        if (
            isinstance(horizon, bool)
            or not isinstance(horizon, numbers.Integral)
            or not (-T <= horizon < T)
        ):
            raise ValueError(
                f"ltvkit: MEANRegressor: horizon must be an integer in [-{T}, {T - 1}], "
                f"got {horizon!r}."
            )
        return int(horizon) % T

    @available_if(_has_dam)
    def predict_bucket_proba(self, X: object, horizon: int = -1) -> np.ndarray:
        """The DAM's probabilities of the label buckets, ``b = softmax(k / T)``.

        Eq. 10 (``T = 1``) with ``bucket_calibration="none"``; by default the temperature
        ``bucket_temperature_`` fitted on the training rows.

        Column ``i`` is bucket ``i`` of ``bucketizers_[horizon]`` (column 0: zero spend).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        horizon : int, default=-1
            Which horizon (index into the columns of ``y``; -1: the longest, the only
            one for a 1-D ``y``).

        Returns
        -------
        ndarray of shape (n_samples, n_buckets of that horizon)
            Rows sum to 1.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(60.0).reshape(-1, 1); y = np.r_[np.zeros(30), np.arange(1.0, 31)]
        >>> model = MEANRegressor(hidden_units=(8,), max_epochs=2, random_state=0).fit(X, y)
        >>> model.predict_bucket_proba(X).sum(axis=1).round(6).min()
        np.float64(1.0)
        """
        t = self._horizon(horizon)
        return self._forward_outputs(X, lambda out: self._dam_proba(out, t))

    def predict_nonzero_proba(self, X: object) -> np.ndarray:
        """Probability that each customer spends anything (by the longest horizon).

        With a DAM: ``1 - b[zero bucket]`` (``b`` of :meth:`predict_bucket_proba`).
        Without one (``dam=False``): ``P(y > 0 | s_hat)``, an isotonic regression of
        ``1(y > 0)`` on the MVFE's scaled prediction ``s_hat`` over the training rows
        (the model's own score, calibrated; monotone in it, so a customer the network
        ranks higher never gets a lower probability). Several horizons: the longest
        horizon's, after a running maximum of the horizons' probabilities (spending by
        an earlier horizon is spending by the later ones). It is the mass above zero of
        :meth:`predict_quantiles`'s distribution.

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
        >>> model = MEANRegressor(hidden_units=(8,), max_epochs=2, random_state=0).fit(X, y)
        >>> p = model.predict_nonzero_proba(X)
        >>> bool(((p > 0) & (p < 1)).all())
        True
        """
        return self._forward_outputs(X, lambda out: self._nonzero_proba(out)[:, -1])

    def predict_quantiles(self, X: object, quantiles: float | Sequence[float]) -> np.ndarray:
        """Quantiles of the bucket distribution with the training labels inside buckets.

        The distribution of ``y | x`` is the bucket probabilities (the DAM's ``b``; with
        ``dam=False`` the score-based ones of :meth:`predict_nonzero_proba`) times the
        training labels' distribution inside each bucket
        (``within_bucket_quantiles_``, linear between its percentiles): the zero bucket
        is the point mass at 0, so ``Q(tau) = 0`` exactly for ``tau <= P(y = 0 | x)``;
        level 1 is the largest training label (finite support). Several horizons: the
        quantiles are made non-decreasing along the horizons by a running maximum
        (the distribution whose CDF is the running minimum of the horizons' CDFs).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        quantiles : float or sequence of float in [0, 1]

        Returns
        -------
        ndarray of shape (n_samples,) for a float, (n_samples, n_quantiles) otherwise;
        with a horizon axis, (n_samples, n_horizons[, n_quantiles]), for a 2-D ``y``

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(60.0).reshape(-1, 1); y = np.r_[np.zeros(30), np.arange(1.0, 31)]
        >>> model = MEANRegressor(hidden_units=(8,), max_epochs=2, random_state=0).fit(X, y)
        >>> Q = model.predict_quantiles(X, [0.1, 0.5, 0.9])
        >>> Q.shape, bool((np.diff(Q, axis=1) >= 0).all())
        ((60, 3), True)
        """
        if isinstance(quantiles, (str, bytes)):
            # check_quantile_levels reads the text "0.5" as a number; levels are numbers
            raise ValueError(
                f"ltvkit: quantiles must be a number or a sequence of numbers in [0, 1], "
                f"got the text {quantiles!r}."
            )
        scalar, levels = check_quantile_levels(quantiles)
        q = torch.from_numpy(levels)[None, :]

        def fn(out: dict[str, Any]) -> torch.Tensor:
            per = [self._horizon_quantiles(out, t, q) for t in range(self.n_horizons_)]
            return torch.cummax(torch.stack(per, dim=1), dim=1).values  # (B, T, n_q)

        result = self._forward_outputs(X, fn)
        if self.target_ndim_ == 1:
            result = result[:, 0]
        return result[..., 0] if scalar else result

    def predict_attention(self, X: object, horizon: int = -1) -> np.ndarray:
        """The attention matrix ``A`` of each customer (eq. 5), for inspection.

        Row ``t`` is ``alpha_t``, how the embedding of bucket ``t`` mixes the bucket
        embeddings; the mean row ``theta`` is what the KL term aligns with the DAM.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        horizon : int, default=-1
            Which horizon's attention (-1: the longest).

        Returns
        -------
        ndarray of shape (n_samples, n_buckets, n_buckets) of that horizon
            Every row sums to 1.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(60.0).reshape(-1, 1); y = np.r_[np.zeros(30), np.arange(1.0, 31)]
        >>> model = MEANRegressor(hidden_units=(8,), max_epochs=2, random_state=0).fit(X, y)
        >>> model.predict_attention(X[:3]).shape
        (3, 5, 5)
        """
        t = self._horizon(horizon)
        return self._forward_outputs(X, lambda out: out["attention"][t].double())

    def monotonic_violation_rate(self, X: object) -> float:
        """Share of customers whose predictions decrease along the horizons *before*
        the running maximum that ``predict`` applies (0 for one horizon).

        ``predict`` itself never decreases along the horizons.

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
        >>> model = MEANRegressor(hidden_units=(8,), max_epochs=2, random_state=0)
        >>> 0.0 <= model.fit(X, np.c_[y1, 2 * y1]).monotonic_violation_rate(X) <= 1.0
        True
        """
        return _violation_rate(self._forward_outputs(X, self._raw_prediction))
