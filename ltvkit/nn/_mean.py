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
- **DAM** (distribution approximation module, eqs. 9-11): a separate shared layer and
  MLP classify the customer into the ``n`` buckets, ``b = softmax(k)``.

The constrained attention joint alignment (eqs. 12-16) ties them together: the mean
row of the attention matrix, ``theta``, is pulled towards ``b`` (KL) and the DAM is
distilled towards ``softmax(theta / tau)`` (soft-label cross-entropy). ``predict``
inverts the label scaling and corrects its retransformation bias, so it returns
expected values in the original units (see ``docs/models/mean.md``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.isotonic import IsotonicRegression
from sklearn.utils.metaestimators import available_if
from torch import nn

from ltvkit._utils import (
    Boolean,
    Increasing,
    Int,
    Options,
    Real,
    Units,
    inverted_cdf_quantile,
)
from ltvkit.nn._base import BaseDeepRegressor, PreparedTargets
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
    """``np.interp`` in torch: piecewise-linear through ``(xp, fp)``, constant outside."""
    xp, fp = xp.to(x.device), fp.to(x.device)
    if xp.numel() == 1:
        return fp.expand_as(x).clone()
    i = torch.searchsorted(xp, x.contiguous()).clamp(1, xp.numel() - 1)
    x0, x1, f0, f1 = xp[i - 1], xp[i], fp[i - 1], fp[i]
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
class MEANModule(nn.Module):
    """MVFE (experts, gates, attention over buckets, linear output) + DAM.

    The ``M`` view experts are one :class:`~ltvkit.nn.MLPBank` (``M`` towers of
    ``Linear -> ReLU -> Dropout`` layers on the shared representation, no output layer,
    one ``einsum`` per layer). ``forward`` returns a dict with

    - ``"y_hat"`` ``(B,)``: the prediction on the scaled-label scale, ``FC(e)`` (eq. 7);
    - ``"attention"`` ``(B, n, n)``: the attention matrix ``A`` (rows sum to 1);
    - ``"dam_logits"`` ``(B, n)``: the DAM logits ``k`` (eq. 9), only with a DAM.

    Parameters
    ----------
    bottom : SharedBottom
        Shared layer of the MVFE branch.
    dam_bottom : SharedBottom or None
        Separate shared layer of the DAM (None: no DAM, the "MVFE only" ablation).
    n_buckets : int
        Number of label buckets ``n`` (the paper's distributions).
    n_experts : int
    expert_units : sequence of int
        Widths of each view expert (at least one layer).
    dam_units : sequence of int
        MLP of the DAM between its shared layer and the ``n`` logits.
    dropout : float, default=0.0
    init_output : float, default=0.0
        Starting bias of the output layer (the mean scaled label).
    init_dam_logits : sequence of float or None, default=None
        Starting biases of the DAM logits (log class priors).

    Examples
    --------
    >>> from ltvkit.nn._encoder import EncodedSpec
    >>> spec = EncodedSpec(3, (), (), ("a", "b", "c"), ())
    >>> module = MEANModule(SharedBottom(spec, (8,)), SharedBottom(spec, (8,)),
    ...                     n_buckets=4, n_experts=3, expert_units=(6,), dam_units=(5,))
    >>> out = module(torch.zeros(2, 3), torch.zeros(2, 0, dtype=torch.long))
    >>> out["y_hat"].shape, out["attention"].shape, out["dam_logits"].shape
    (torch.Size([2]), torch.Size([2, 4, 4]), torch.Size([2, 4]))
    """

    def __init__(
        self,
        bottom: SharedBottom,
        dam_bottom: SharedBottom | None,
        *,
        n_buckets: int,
        n_experts: int,
        expert_units: Sequence[int],
        dam_units: Sequence[int],
        dropout: float = 0.0,
        init_output: float = 0.0,
        init_dam_logits: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        n, m = int(n_buckets), int(n_experts)
        self.n_buckets = n
        self.n_experts = m
        self.bottom = bottom
        # MVFE, eqs. 2-3: M view experts, n gates (one per bucket) over the experts
        self.experts = MLPBank(m, bottom.out_features, expert_units, dropout=dropout)
        self.gates = nn.Linear(bottom.out_features, n * m)
        d = self.experts.out_features
        # eqs. 4-5: g'_t = tanh(W_q h_t + W_k h_t + b_g'), alpha_t = softmax(g'_t W_a + b_a);
        # W_q and W_k are kept as the paper writes them (their sum is one linear map)
        self.w_q = nn.Linear(d, d, bias=False)
        self.w_k = nn.Linear(d, d)
        self.w_a = nn.Linear(d, n)
        self.output = nn.Linear(d, 1)  # eq. 7: FC without activation
        with torch.no_grad():
            self.output.bias.fill_(float(init_output))
        self.dam_bottom = dam_bottom
        if dam_bottom is not None:
            # eq. 9: k = MLP(ReLU(W_s x + b_s)), last layer of width n
            self.dam_mlp = MLP(dam_bottom.out_features, dam_units, dropout)
            self.dam_head = nn.Linear(self.dam_mlp.out_features, n)
            if init_dam_logits is not None:
                with torch.no_grad():
                    self.dam_head.bias.copy_(torch.as_tensor(init_dam_logits))

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.bottom(x_num, x_cat)
        experts = self.experts(h)  # (B, M, d)
        gates = torch.softmax(
            self.gates(h).view(-1, self.n_buckets, self.n_experts), dim=-1
        )  # (B, n, M): G_i = softmax(W_g x), one gate per bucket
        tokens = torch.bmm(gates, experts)  # (B, n, d): f_i = sum_j G_ij E_j(x), eq. 2
        # attention over the ordered bucket tokens, all n tokens at once
        g = torch.tanh(self.w_q(tokens) + self.w_k(tokens))  # (B, n, d), eq. 4
        attention = torch.softmax(self.w_a(g), dim=-1)  # (B, n, n): row t = alpha_t, eq. 5
        e = torch.bmm(attention, tokens).mean(dim=1)  # (B, d): (1/n) sum_i (A H)_i, eq. 6
        out = {"y_hat": self.output(e).squeeze(-1), "attention": attention}
        if self.dam_bottom is not None:
            out["dam_logits"] = self.dam_head(self.dam_mlp(self.dam_bottom(x_num, x_cat)))
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


class MEANLoss(nn.Module):
    """Per-sample MEAN loss, eq. 17: ``L_cltv + L_kl + L_dis``.

    - ``L_cltv``: Huber loss with threshold ``huber_delta`` between ``y_hat`` and the
      scaled label (eq. 8);
    - ``L_kl = KL(b || theta)`` with ``b = softmax(k)`` and ``theta`` the mean row of the
      attention matrix (eqs. 12-13), if ``kl``;
    - ``L_dis = beta * H(z, softmax(k)) + gamma * H(softmax(theta / tau), softmax(k / tau))``
      (eq. 14) with ``beta = hard_label_weight``, ``gamma = soft_label_weight`` and
      ``tau = distill_temperature``; the soft-label term only if ``distillation``.

    Without a DAM (the "MVFE only" ablation) the loss is ``L_cltv`` alone. No gradient
    is stopped: as in the paper's equations, ``L_kl`` moves both the attention and the
    DAM, and so does the soft-label term.

    The target is a dict with ``"s"`` (scaled label, float) and ``"z"`` (bucket id,
    int64).

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

    def forward(
        self, output: dict[str, torch.Tensor], target: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        loss = F.huber_loss(output["y_hat"], target["s"], reduction="none", delta=self.huber_delta)
        logits = output.get("dam_logits")
        if logits is None:
            return loss
        theta = output["attention"].mean(dim=1)  # (B, n), eq. 12; a distribution
        b = torch.softmax(logits, dim=-1)
        one_hot = F.one_hot(target["z"], logits.shape[-1]).to(b.dtype)
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


# -- estimator -------------------------------------------------------------------------------
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

    n_buckets: int
    #: starting bias of the output layer: the mean scaled label
    init_output: float
    #: starting biases of the DAM logits: the smoothed log bucket priors
    init_dam_logits: tuple[float, ...]


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

    Parameters
    ----------
    n_buckets : int, default=5
        Number of label buckets including the zero bucket (the paper's ``n = 5``
        distributions), passed to ``LTVBucketizer(n_buckets=...)``: positive cuts at
        the 50th, 75th and 87.5th percentiles of the positive training labels. Tied
        cuts are merged, so ``n_buckets_`` may be smaller. Ignored when ``boundaries``
        is given.
    boundaries : sequence of float or None, default=None
        Business cut points between the positive buckets (``len(boundaries) + 2``
        buckets), as in ``LTVBucketizer(boundaries=...)``: strictly increasing, all
        above the bucketizer's ``zero_tol`` (1e-6).
    n_experts : int, default=5
        Number of view experts ``M``.
    expert_units : tuple of int, default=(128,)
        Widths of each view expert (the paper: "only one layer"; its width is not
        given).
    dam_units : tuple of int, default=(256, 128, 64)
        MLP of the DAM on top of its own shared layer (the paper's sizes).
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
        ``L_kl``; ``kl`` and ``distillation`` are ignored). Without a DAM there is no
        bucket classifier, so ``predict_nonzero_proba`` and ``predict_bucket_proba``
        are not available.
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
        loss. ``"linear"``: ``20 * min(y, cap) / cap``, the paper's "scaled the labels
        and truncated them to the range [0, 20]"; the network ranks by a robust
        location of the spend itself. ``"log1p"``: ``log(1 + min(y, cap))``, which
        ranks by a robust location of ``log(1 + y)`` and ranks worse by Gini and AUC on
        zero-heavy data (``docs/models/mean.md``). ``"sqrt"``: ``sqrt(min(y, cap))``;
        ``"none"``: ``min(y, cap)``. The scaled prediction is clipped to
        ``[0, label_max_]`` (the scaled cap), so it is non-negative and never
        extrapolates; ``bias_correction`` turns it into a value in the original units.
    label_cap_quantile : float in (0, 1], default=0.99
        Labels above this quantile of the positive training labels (an observed value,
        sample-weighted) are truncated to it before scaling: the paper's truncation
        (the paper does not say where; ltvkit truncates the top 1% of spenders, so one
        extreme whale cannot compress every other label towards 0). ``1.0``: the
        largest training label, no truncation. The truncation only shapes the training
        target: with ``bias_correction="isotonic"`` (default) predictions are mapped
        back to ``E[y | s_hat]`` with the untruncated labels.
    bias_correction : {"isotonic", "balance", "smearing", "none"}, default="isotonic"
        How the scaled prediction ``s_hat`` becomes an expected value in the original
        units. A Huber fit estimates something between the mean and the median of the
        scaled, truncated label, so the plain inverse ``T^-1(s_hat)`` is well below
        ``E[y | x]`` (its mean is about 58% of the mean label on CDNOW with the
        defaults). All options are fitted on the training rows after training and keep
        the network's ranking.
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
        loss.
    hidden_units : tuple of int, default=(512, 256)
        The MVFE shared layer (the paper's ``[512, 256]``); the DAM has its own shared
        layer of the same widths.
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
    bucketizer_ : LTVBucketizer
        Defines the label buckets (``bucketizer_.boundaries_``).
    n_buckets_ : int
        Number of label buckets actually used.
    label_cap_ : float
        The truncation point of the labels (``label_cap_quantile`` of the positive
        training labels).
    label_max_ : float
        The scaled cap; scaled predictions are clipped to ``[0, label_max_]``.
    label_transform_ : str
        The label transform the network was trained with.
    label_unit_ : float
        ``label_cap_ / 20`` for ``label_transform="linear"``, 1 otherwise.
    bias_correction_ : dict
        Fitted retransformation: its ``kind``; the isotonic knots ``x``, ``y`` and
        ``tie_break``; ``factor`` for ``"balance"`` and for smearing of ``log1p``;
        residual moments ``m1``, ``m2`` for other smearings.

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
    """

    def __init__(
        self,
        *,
        n_buckets: int = 5,
        boundaries: Sequence[float] | None = None,
        n_experts: int = 5,
        expert_units: Sequence[int] = (128,),
        dam_units: Sequence[int] = (256, 128, 64),
        huber_delta: float = 1.0,
        kl: bool = True,
        distillation: bool = True,
        dam: bool = True,
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
        # anything numpy reads as a 1-D array (list, tuple, ndarray, Series);
        # _check_param_combinations checks its values
        # cut points above LTVBucketizer's zero_tol (1e-6): the first positive bucket
        "boundaries": [Increasing(Real(1e-6, None, closed="neither")), None],
        "n_experts": [Int(1)],
        "expert_units": [Units(allow_empty=False)],
        "dam_units": [Units()],
        "huber_delta": [Real(0.0, None, closed="neither")],
        "kl": [Boolean()],
        "distillation": [Boolean()],
        "dam": [Boolean()],
        "hard_label_weight": [Real(0.0)],
        "soft_label_weight": [Real(0.0)],
        "distill_temperature": [Real(0.0, None, closed="neither")],
        "label_transform": [Options(*_LABEL_TRANSFORMS)],
        "label_cap_quantile": [Real(0.0, 1.0, closed="right")],
        "bias_correction": [Options(*_BIAS_CORRECTIONS)],
    }

    # -- hooks ------------------------------------------------------------------------
    def _prepare_targets(self, y: np.ndarray, sample_weight: np.ndarray | None) -> PreparedTargets:
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
        self.bucketizer_ = bucketizer
        self.n_buckets_ = int(bucketizer.n_buckets_)
        if self.boundaries is None and self.n_buckets_ < self.n_buckets:
            warnings.warn(
                f"MEANRegressor: tied label quantiles, {self.n_buckets_} buckets instead "
                f"of n_buckets={self.n_buckets}.",
                BucketMergeWarning,
                stacklevel=3,
            )
        w = np.ones_like(y) if sample_weight is None else sample_weight
        # rows of weight 0 do not count as training data; an observed value as the cap
        # (inverted_cdf), so integer weights give the cap of the repeated rows
        positive = (y > 0) & (w > 0)
        weighted = not np.all(w[positive] == w[positive][0])
        self.label_cap_ = float(
            inverted_cdf_quantile(
                y[positive],
                np.asarray([float(self.label_cap_quantile)]),
                w[positive] if weighted else None,
            )[0]
        )
        self.label_transform_ = self.label_transform
        self.label_unit_ = (
            self.label_cap_ / _LINEAR_MAX if self.label_transform == "linear" else 1.0
        )
        s = self._scaled_label(y)
        self.label_max_ = float(self._scaled_label(np.array([self.label_cap_]))[0])
        # starting values: the output layer at the mean scaled label, the DAM at the
        # bucket priors (smoothed so an empty business bucket keeps a finite logit)
        counts = np.bincount(z, weights=w, minlength=self.n_buckets_)
        info = _LabelInfo(
            n_buckets=self.n_buckets_,
            init_output=float(np.average(s, weights=w)),
            init_dam_logits=tuple(
                np.log((counts + 1.0) / (counts.sum() + self.n_buckets_)).tolist()
            ),
        )
        return PreparedTargets({"s": s, "z": z.astype(np.int64)}, info=info)

    def _scaled_label(self, y: np.ndarray) -> np.ndarray:
        """The regression target: ``T(min(y, label_cap_))`` with the fitted transform."""
        return _scale(np.minimum(y, self.label_cap_), self.label_transform_, self.label_unit_)

    def _build_module(self, spec: EncodedSpec, info: _LabelInfo) -> MEANModule:
        return MEANModule(
            self._make_bottom(spec),
            self._make_bottom(spec) if self.dam else None,
            n_buckets=info.n_buckets,
            n_experts=int(self.n_experts),
            expert_units=tuple(int(u) for u in self.expert_units),
            dam_units=tuple(int(u) for u in self.dam_units),
            dropout=float(self.dropout),
            init_output=info.init_output,
            init_dam_logits=info.init_dam_logits,
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

    def _scaled_prediction(self, output: dict[str, torch.Tensor]) -> torch.Tensor:
        # clip at 0 (no negative spend) and at the training maximum (no extrapolation)
        return output["y_hat"].double().clamp(0.0, self.label_max_)

    def _output_to_prediction(self, output: dict[str, torch.Tensor]) -> torch.Tensor:
        s_hat = self._scaled_prediction(output)
        # the fitted kinds, not the hyperparameters: set_params after fit changes nothing
        params = self.bias_correction_
        kind = self.label_transform_
        correction = params["kind"]
        if correction == "isotonic":
            calibrated = _interp(s_hat, params["x"], params["y"])
            # the isotonic map is a step function: break its ties by the network's own
            # score (adds at most tie_break * label_max_, 1e-4 of the mean label)
            return calibrated + params["tie_break"] * s_hat
        if correction == "balance":
            return params["factor"] * _unscale(s_hat, kind, self.label_unit_)
        if correction == "none":
            return _unscale(s_hat, kind, self.label_unit_)
        # smearing: mean over residuals r_i of T^-1(s_hat + r_i), in closed form
        if kind == "log1p":  # mean(exp(s_hat + r)) - 1 = exp(s_hat) * mean(exp(r)) - 1
            return (torch.exp(s_hat) * params["factor"] - 1.0).clamp_min(0.0)
        if kind == "sqrt":  # mean((s_hat + r)**2)
            return (s_hat * s_hat + 2.0 * s_hat * params["m1"] + params["m2"]).clamp_min(0.0)
        return ((s_hat + params["m1"]) * self.label_unit_).clamp_min(0.0)  # linear, none

    # -- after training ----------------------------------------------------------------
    def _after_fit(self, X: object, y: np.ndarray, sample_weight: np.ndarray | None) -> None:
        """Fit the retransformation (bias) correction ``bias_correction_``.

        On the trained network's scaled predictions of every training row, the
        early-stopping rows included: a one-dimensional monotone map needs many rows
        more than it needs out-of-sample scores (``docs/models/mean.md`` compares
        both). Sample-weighted, like the loss.
        """
        w = np.ones_like(y) if sample_weight is None else sample_weight
        s_hat = self._forward_outputs(X, self._scaled_prediction)
        self.bias_correction_ = self._fit_bias_correction(y, s_hat, w)

    def _fit_bias_correction(
        self, y: np.ndarray, s_hat: np.ndarray, w: np.ndarray
    ) -> dict[str, Any]:
        kind = self.label_transform_
        correction = self.bias_correction
        if correction == "none":
            return {"kind": correction}
        if correction == "isotonic":
            keep = w > 0
            iso = IsotonicRegression(y_min=0.0, out_of_bounds="clip", increasing=True)
            iso.fit(s_hat[keep], y[keep], sample_weight=w[keep])
            scale = max(self.label_max_, 1e-12)
            return {
                "kind": correction,
                "x": torch.from_numpy(np.asarray(iso.X_thresholds_, dtype=np.float64)),
                "y": torch.from_numpy(np.asarray(iso.y_thresholds_, dtype=np.float64)),
                "tie_break": 1e-4 * float(np.average(y, weights=w)) / scale,
            }
        if correction == "balance":
            # the factor that makes the predicted training total the observed one
            back = _unscale(torch.from_numpy(s_hat), kind, self.label_unit_).numpy()
            denom = float(np.average(back, weights=w))
            factor = float(np.average(y, weights=w)) / denom if denom > 0 else 1.0
            return {"kind": correction, "factor": factor}
        r = self._scaled_label(y) - s_hat
        if kind == "log1p":
            # exp(r) with r <= label_max_ (s_hat >= 0), so this cannot overflow
            return {"kind": correction, "factor": float(np.average(np.exp(r), weights=w))}
        return {
            "kind": correction,
            "m1": float(np.average(r, weights=w)),
            "m2": float(np.average(r * r, weights=w)),
        }

    # -- public API -------------------------------------------------------------------
    @available_if(_has_dam)
    def predict_bucket_proba(self, X: object) -> np.ndarray:
        """The DAM's probabilities of the label buckets, ``b = softmax(k)`` (eq. 10).

        Column ``i`` is bucket ``i`` of ``bucketizer_`` (column 0: zero spend).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_buckets_)
            Rows sum to 1.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(60.0).reshape(-1, 1); y = np.r_[np.zeros(30), np.arange(1.0, 31)]
        >>> model = MEANRegressor(hidden_units=(8,), max_epochs=2, random_state=0).fit(X, y)
        >>> model.predict_bucket_proba(X).sum(axis=1).round(6).min()
        np.float64(1.0)
        """
        return self._forward_outputs(
            X, lambda out: torch.softmax(out["dam_logits"].double(), dim=-1)
        )

    @available_if(_has_dam)
    def predict_nonzero_proba(self, X: object) -> np.ndarray:
        """Probability that each customer spends anything: ``1 - b[zero bucket]``.

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
        return self._forward_outputs(
            X, lambda out: 1.0 - torch.softmax(out["dam_logits"].double(), dim=-1)[:, 0]
        )

    def predict_attention(self, X: object) -> np.ndarray:
        """The attention matrix ``A`` of each customer (eq. 5), for inspection.

        Row ``t`` is ``alpha_t``, how the embedding of bucket ``t`` mixes the bucket
        embeddings; the mean row ``theta`` is what the KL term aligns with the DAM.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_buckets_, n_buckets_)
            Every row sums to 1.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(60.0).reshape(-1, 1); y = np.r_[np.zeros(30), np.arange(1.0, 31)]
        >>> model = MEANRegressor(hidden_units=(8,), max_epochs=2, random_state=0).fit(X, y)
        >>> model.predict_attention(X[:3]).shape
        (3, 5, 5)
        """
        return self._forward_outputs(X, lambda out: out["attention"].double())
