"""CC-OR-Net: the Conditional Cascaded Ordinal-Residual Network (Zhao et al., WWW 2026).

Customer value is cut into ``K`` ordered buckets (bucket 0 = no spend, the positives cut
at their 50th and 75th percentiles for ``K = 4``, :class:`~ltvkit.preprocessing.LTVBucketizer`).
A cascade of ``K - 1`` binary classifiers gives stage probabilities ``p_k`` that eq. 1
chains, as conditional exceedance probabilities ``P(y > tau_k | y > tau_{k-1}, x)``, into
a bucket distribution that sums to one and is ordinal by construction; the classifiers are
trained on marginal targets over the full batch (the paper's teacher forcing) or on the
rows that pass the previous stage (``cascade_training``). A residual network,
conditioned on the bucket through a gated feature alignment, places the customer inside
the bucket (``v = v_norm * r_b + c_b``, eq. 4), and a dedicated network refines the top
bucket ("whales"), trained with attention-guided feature noise.

Where the paper is ambiguous, the reading implemented here is written down in
``docs/models/ccornet.md`` ("Reading of the paper") and in the comments below.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from skorch.callbacks import Callback
from torch import nn
from torch.func import functional_call

from ltvkit._utils import (
    Boolean,
    Int,
    Options,
    PerLevel,
    Real,
    Units,
    check_quantile_levels,
    inverted_cdf_quantile,
)
from ltvkit.base import check_predictions
from ltvkit.nn._base import BaseDeepRegressor, PreparedTargets
from ltvkit.nn._encoder import EncodedSpec
from ltvkit.nn._layers import MLP, SharedBottom
from ltvkit.preprocessing import LTVBucketizer

__all__ = [
    "CCORNetLoss",
    "CCORNetModule",
    "CCORNetRegressor",
    "bucket_log_proba",
    "decide_bucket",
]

# Bound of the initial cascade logits (a bucket that is empty in training would
# otherwise ask for an infinite bias).
_MAX_INIT_LOGIT = 8.0
# tanh outputs are initialised at most this close to +-1 (atanh stays finite).
_MAX_INIT_TANH = 0.995
# What a prediction pass of CCORNetModule computes (its forward's ``value_mode``).
_VALUE_MODES = ("hard", "all", "none")
# How the cascade assigns a bucket (``decision``).
_DECISIONS = ("walk", "argmax")
# Unbounded top-bucket tower: softplus(raw) is capped at this many top-bucket half-ranges
# above the bucket's lower edge (hundreds of times the largest training label), so a
# diverging tower still gives finite predictions far below the contract's 1e15.
_MAX_HIGH_SPAN = 1e3
# Levels at which the training labels' distribution inside each bucket is stored (the
# quantiles interpolate linearly between them).
_N_VALUE_LEVELS = 201


def bucket_log_proba(logits: torch.Tensor) -> torch.Tensor:
    """Log bucket probabilities from the cascade logits (eq. 1), in log space.

    With ``p_k = sigmoid(z_k)`` the conditional probability of passing stage ``k``:
    ``P(b = 0) = 1 - p_1``, ``P(b = k) = (1 - p_{k+1}) * prod_{j<=k} p_j`` for the middle
    buckets and ``P(b = K - 1) = prod_j p_j`` (0-based bucket ids). The probabilities
    sum to one (a telescoping sum) and each bucket needs every earlier stage passed.

    Parameters
    ----------
    logits : Tensor of shape (n, K - 1)
        Stage logits ``z_k``.

    Returns
    -------
    Tensor of shape (n, K)
        ``log P(bucket = b | x)``.

    Examples
    --------
    >>> lp = bucket_log_proba(torch.tensor([[0.0, 0.0, 0.0]], dtype=torch.float64))
    >>> lp.exp()
    tensor([[0.5000, 0.2500, 0.1250, 0.1250]], dtype=torch.float64)
    """
    log_pass = F.logsigmoid(logits)
    log_stop = F.logsigmoid(-logits)
    # log of the probability of reaching stage k: sum of the earlier log p_j
    reach = torch.cumsum(log_pass, dim=1) - log_pass
    return torch.cat([reach + log_stop, reach[:, -1:] + log_pass[:, -1:]], dim=1)


def decide_bucket(logits: torch.Tensor, decision: str = "walk") -> torch.Tensor:
    """The bucket the cascade assigns: walk the stages, or the mode of eq. 1.

    ``"walk"`` (the paper, §3.3.1 and Appendix B.2): a sample traverses the cascade and
    passes stage ``k`` while its classifier says yes at the fixed 0.5 threshold,
    ``sigmoid(z_k) >= 0.5`` (``z_k >= 0``); its bucket is the number of stages passed
    before the first no. ``"argmax"``: the most probable bucket of eq. 1
    (:func:`bucket_log_proba`, computed in float64).

    Parameters
    ----------
    logits : Tensor of shape (n, K - 1)
        Stage logits ``z_k``.
    decision : {"walk", "argmax"}, default="walk"

    Returns
    -------
    Tensor of int64 of shape (n,)
        Bucket ids, 0 = no spend.

    Examples
    --------
    >>> z = torch.logit(torch.tensor([[0.6, 0.4, 0.9]], dtype=torch.float64))
    >>> int(decide_bucket(z, "walk")[0]), int(decide_bucket(z, "argmax")[0])
    (1, 0)
    """
    if decision == "walk":
        passed = (logits >= 0).to(torch.int64)
        return torch.cumprod(passed, dim=1).sum(dim=1)
    if decision == "argmax":
        return bucket_log_proba(logits.double()).argmax(dim=1)
    raise ValueError(f"ltvkit: decision must be one of {_DECISIONS}, got {decision!r}.")


# -- building blocks -----------------------------------------------------------------------
class _SafeBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm that falls back to its running statistics on a 1-row training batch.

    The last training batch can hold a single row (``n_train % batch_size == 1``), on
    which batch statistics are undefined; torch raises there, ltvkit must not.
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


class _Cascade(nn.Module):
    """Algorithm 1: a shared layer, then one small MLP classifier per threshold.

    ``h_shared = Dense(ReLU(Dense(h, u_1)), u_2)`` (no activation on the last layer, as
    in the paper's pseudo-code), then classifier ``k``: ``depth_k`` hidden layers of
    ``width`` units with ReLU and dropout ``dropout_k``, and a 1-unit output.
    """

    def __init__(
        self,
        in_features: int,
        shared_units: Sequence[int],
        width: int,
        depths: Sequence[int],
        dropouts: Sequence[float],
        l2: Sequence[float],
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        d = in_features
        for i, units in enumerate(shared_units):
            if i:
                layers.append(nn.ReLU())
            layers.append(nn.Linear(d, int(units)))
            d = int(units)
        self.shared = nn.Sequential(*layers)
        self.classifiers = nn.ModuleList()
        for depth, drop in zip(depths, dropouts, strict=True):
            mlp = MLP(d, [width] * int(depth), float(drop))
            self.classifiers.append(nn.Sequential(mlp, nn.Linear(mlp.out_features, 1)))
        self.l2 = tuple(float(v) for v in l2)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        shared = self.shared(h)
        # K - 1 towers of different depths: a loop over a handful of small MLPs
        return torch.cat([clf(shared) for clf in self.classifiers], dim=1)

    def l2_penalty(self) -> torch.Tensor:
        """The level-specific L2 penalty on the classifiers' kernels (Keras-style)."""
        total = self.classifiers[0][-1].weight.new_zeros(())
        for coef, clf in zip(self.l2, self.classifiers, strict=True):
            if coef > 0:
                for layer in clf.modules():
                    if isinstance(layer, nn.Linear):
                        total = total + coef * layer.weight.square().sum()
        return total


class _Alignment(nn.Module):
    """Algorithm 2: ``sigmoid(Dense_g(h_base)) * ReLU(Dense_c(h_base))``.

    ``h_base = [h, p_cascade, E(b)]``. The dense layers are split into the part that reads
    ``[h, p]`` and the part that reads the bucket embedding, which is the same linear map;
    the split lets the values of all ``K`` buckets be computed with one ``[h, p]`` product.
    """

    def __init__(self, in_features: int, embedding_dim: int, out_features: int) -> None:
        super().__init__()
        self.base = nn.Linear(in_features, 2 * out_features)  # gate and content, stacked
        self.embedding = nn.Linear(embedding_dim, 2 * out_features, bias=False)

    @staticmethod
    def _glu(pre: torch.Tensor) -> torch.Tensor:
        gate, content = pre.chunk(2, dim=-1)
        return torch.sigmoid(gate) * F.relu(content)

    def forward(self, hp: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """``hp``: (n, d) ``[h, p]``; ``emb``: (n, e), the bucket embedding of each row."""
        return self._glu(self.base(hp) + self.embedding(emb))

    def all_buckets(self, hp: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Aligned features for every bucket: ``table`` (K, e) -> (n, K, d)."""
        return self._glu(self.base(hp)[:, None, :] + self.embedding(table)[None, :, :])


class _ResidualNet(nn.Module):
    """Algorithm 3: two residual blocks, the first with batch norm; output in [-1, 1]."""

    def __init__(self, in_features: int, units: Sequence[int]) -> None:
        super().__init__()
        d_h, d_r = (int(u) for u in units)
        self.proj = nn.Linear(in_features, d_h)
        self.res1 = nn.Linear(d_h, d_h)
        self.bn1 = _SafeBatchNorm1d(d_h)
        self.res2 = nn.Linear(d_h, d_r)
        self.skip2 = nn.Linear(d_h, d_r)
        self.out = nn.Linear(d_r, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h0 = self.proj(x)
        h1 = F.relu(self.bn1(self.res1(F.relu(h0))) + h0)
        h2 = F.relu(self.res2(F.relu(h1)) + self.skip2(h1))
        return torch.tanh(self.out(h2)).squeeze(-1)


class _HighValueNet(nn.Module):
    """Algorithm 4 and eq. 5: attention-guided noise, then an MLP with two heads."""

    def __init__(
        self,
        in_features: int,
        embedding_dim: int,
        attention_units: int,
        units: Sequence[int],
        noise_std: float,
    ) -> None:
        super().__init__()
        self.attention = nn.Sequential(
            nn.Linear(in_features + 4 + embedding_dim, int(attention_units)),
            nn.ReLU(),
            nn.Linear(int(attention_units), in_features),
        )
        self.trunk = MLP(in_features, units)
        self.heads = nn.Linear(self.trunk.out_features, 2)  # value, confidence logit
        self.noise_std = float(noise_std)

    def forward(
        self, h: torch.Tensor, emb: torch.Tensor, perturb: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if perturb is not None and self.noise_std > 0:
            stats = torch.stack([h.mean(1), h.std(1, unbiased=False), h.amax(1), h.amin(1)], dim=1)
            weight = torch.sigmoid(self.attention(torch.cat([h, stats, emb], dim=1)))
            noise = torch.randn_like(h) * self.noise_std
            # only rows predicted in the top bucket are perturbed (section 3.6)
            h = h + noise * weight * perturb[:, None]
        out = self.heads(self.trunk(h))
        return out[:, 0], out[:, 1]


# -- the module ----------------------------------------------------------------------------
class CCORNetModule(nn.Module):
    """The CC-OR-Net network: shared bottom, cascade, alignment, residual and whale towers.

    ``forward(x_num, x_cat, bucket=None, value_mode="hard")``. With ``bucket`` (the
    training and validation passes; the true bucket ids) it returns what
    :class:`CCORNetLoss` needs: the stage ``logits``, ``v_norm`` (the normalized residual
    of the conditioning bucket), ``v_high``/``conf_logit`` (top-bucket tower) and, in
    training, the classifiers' L2 penalty ``l2`` (and ``distill_logits`` when the
    distillation must not train the classifiers). Without ``bucket`` (prediction) it
    returns ``logits``, the assigned bucket ``bucket`` (``decision``) and ``values``, as
    chosen by ``value_mode``: the value of the assigned bucket (``"hard"``), of every
    bucket (``"all"``, shape (n, K)) or nothing (``"none"``, no ``values`` entry).

    Parameters
    ----------
    bottom : SharedBottom
    n_buckets : int
    centers, half_widths : sequence of float
        ``c_b`` and ``r_b`` of every bucket (eq. 4).
    cascade_units, classifier_units, classifier_depths, classifier_dropouts, classifier_l2
        The cascade (Algorithm 1); see :class:`CCORNetRegressor`.
    bucket_embedding_dim, residual_units, attention_units, high_value_units, noise_std
        See :class:`CCORNetRegressor`.
    residual, augmentation, teacher_forcing : bool
        Ablation switches and the conditioning bucket of the residual branch in training.
    distillation : bool
        Whether the loss has a distillation term (it decides what ``distill_gradient``
        has to prepare).
    decision : {"walk", "argmax"}
        How the bucket is assigned (:func:`decide_bucket`): at prediction, and in
        training for the rows the augmentation perturbs (and the residual branch's
        conditioning bucket without teacher forcing).
    distill_gradient : {"cascade", "encoder"}
        What the distillation loss may train. ``"cascade"``: it is computed from
        ``logits`` and reaches the classifiers and, through them, the encoder.
        ``"encoder"``: training passes also return ``distill_logits``, the cascade applied
        to ``h`` with its parameters detached, so it reaches only the encoder.
    high_value_output : {"bounded", "unbounded"}
        ``v_high = c_top + r_top * tanh(raw)`` (inside the top bucket's training range)
        or ``tau_top + r_top * softplus(raw)`` (from the bucket's lower edge up, capped
        only for finiteness at ``1e3 * r_top``).
    init_stage_logits : sequence of float or None
        Starting biases of the classifiers' outputs.
    init_high_norm : float
        Starting normalized value (in ``(-1, 1)``, as ``v_norm``) of the top-bucket tower.

    Examples
    --------
    >>> spec = EncodedSpec(3, (), (), ("a", "b", "c"), ())
    >>> module = CCORNetModule(
    ...     SharedBottom(spec, (8,)), n_buckets=4, centers=[0, 1, 3, 10],
    ...     half_widths=[0, 1, 1, 6], cascade_units=(8, 8), residual_units=(8, 4),
    ...     high_value_units=(8,),
    ... ).eval()
    >>> x_num, x_cat = torch.zeros(5, 3), torch.zeros(5, 0, dtype=torch.long)
    >>> out = module(x_num, x_cat)
    >>> out["logits"].shape, out["values"].shape
    (torch.Size([5, 3]), torch.Size([5]))
    >>> module(x_num, x_cat, value_mode="all")["values"].shape
    torch.Size([5, 4])
    """

    def __init__(
        self,
        bottom: SharedBottom,
        *,
        n_buckets: int,
        centers: Sequence[float],
        half_widths: Sequence[float],
        cascade_units: Sequence[int] = (128, 64),
        classifier_units: int = 64,
        classifier_depths: Sequence[int] = (2, 1, 2),
        classifier_dropouts: Sequence[float] = (0.2, 0.1, 0.1),
        classifier_l2: Sequence[float] = (0.01, 0.01, 0.008),
        bucket_embedding_dim: int = 8,
        residual_units: Sequence[int] = (200, 100),
        attention_units: int = 100,
        high_value_units: Sequence[int] = (300, 200),
        noise_std: float = 0.1,
        residual: bool = True,
        augmentation: bool = True,
        teacher_forcing: bool = True,
        distillation: bool = False,
        decision: str = "walk",
        distill_gradient: str = "cascade",
        high_value_output: str = "bounded",
        init_stage_logits: Sequence[float] | None = None,
        init_high_norm: float = 0.0,
    ) -> None:
        super().__init__()
        if decision not in _DECISIONS:
            raise ValueError(f"ltvkit: decision must be one of {_DECISIONS}, got {decision!r}.")
        if distill_gradient not in ("cascade", "encoder"):
            raise ValueError(
                "ltvkit: distill_gradient must be 'cascade' or 'encoder', "
                f"got {distill_gradient!r}."
            )
        if high_value_output not in ("bounded", "unbounded"):
            raise ValueError(
                "ltvkit: high_value_output must be 'bounded' or 'unbounded', "
                f"got {high_value_output!r}."
            )
        n_stages = int(n_buckets) - 1
        self.n_buckets = int(n_buckets)
        self.bottom = bottom
        d_h = bottom.out_features
        self.cascade = _Cascade(
            d_h,
            cascade_units,
            int(classifier_units),
            _levels(classifier_depths, n_stages),
            _levels(classifier_dropouts, n_stages),
            _levels(classifier_l2, n_stages),
        )
        if init_stage_logits is not None:
            with torch.no_grad():
                for clf, b in zip(self.cascade.classifiers, init_stage_logits, strict=True):
                    clf[-1].bias.fill_(float(b))
        self.residual = bool(residual)
        self.augmentation = bool(augmentation)
        self.teacher_forcing = bool(teacher_forcing)
        self.distillation = bool(distillation)
        self.decision = str(decision)
        self.distill_gradient = str(distill_gradient)
        self.high_value_output = str(high_value_output)
        self.register_buffer("centers", torch.as_tensor(centers, dtype=torch.float32))
        self.register_buffer("half_widths", torch.as_tensor(half_widths, dtype=torch.float32))
        self.bucket_embedding = nn.Embedding(self.n_buckets, int(bucket_embedding_dim))
        if self.residual:
            self.alignment = _Alignment(
                d_h + n_stages, int(bucket_embedding_dim), int(residual_units[0])
            )
            self.residual_net = _ResidualNet(int(residual_units[0]), residual_units)
        if self.augmentation:
            self.high_value = _HighValueNet(
                d_h, int(bucket_embedding_dim), int(attention_units), high_value_units, noise_std
            )
            with torch.no_grad():  # start the whale tower at the typical whale value
                if self.high_value_output == "bounded":
                    start = math.atanh(init_high_norm)
                else:  # softplus(start) = v_norm + 1, the distance from the lower edge
                    span = max(init_high_norm + 1.0, 1e-3)
                    start = span + math.log(-math.expm1(-span))  # inverse softplus
                self.high_value.heads.bias[0] = start

    # -- pieces --------------------------------------------------------------------------
    def _residual_values(
        self, h: torch.Tensor, p: torch.Tensor, bucket: torch.Tensor | None
    ) -> torch.Tensor:
        """Normalized residual ``v_norm`` for one bucket per row, or (n, K) for all."""
        hp = torch.cat([h, p], dim=1)
        if bucket is None:
            aligned = self.alignment.all_buckets(hp, self.bucket_embedding.weight)
            n, k, d = aligned.shape
            return self.residual_net(aligned.reshape(n * k, d)).reshape(n, k)
        return self.residual_net(self.alignment(hp, self.bucket_embedding(bucket)))

    def _high_value(
        self, h: torch.Tensor, b_hat: torch.Tensor, perturb: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        top = self.n_buckets - 1
        mask = (b_hat == top).to(h.dtype) if perturb else None
        emb = self.bucket_embedding(b_hat) if perturb else h.new_zeros((h.shape[0], 0))
        raw, conf_logit = self.high_value(h, emb, mask)
        if self.high_value_output == "bounded":
            v_high = self.centers[top] + self.half_widths[top] * torch.tanh(raw)
        else:
            # the paper's unbounded MLP_reg (eq. 5), kept above the top bucket's lower
            # edge so that v_b stays ordered across buckets
            span = F.softplus(raw).clamp(max=_MAX_HIGH_SPAN)
            v_high = self.centers[top] - self.half_widths[top] + self.half_widths[top] * span
        return v_high, conf_logit

    # -- forward -------------------------------------------------------------------------
    def forward(
        self,
        x_num: torch.Tensor,
        x_cat: torch.Tensor,
        bucket: torch.Tensor | None = None,
        value_mode: str = "hard",
    ) -> dict[str, torch.Tensor]:
        h = self.bottom(x_num, x_cat)
        logits = self.cascade(h)
        with torch.no_grad():
            b_hat = decide_bucket(logits, self.decision)
        # the regression branch reads the cascade's probabilities but does not train the
        # classifiers through them (ltvkit's choice: the residual loss must not move the
        # bucket boundaries; the paper does not say where its stop-gradients are)
        p = torch.sigmoid(logits).detach()
        out: dict[str, torch.Tensor] = {"logits": logits}
        if bucket is not None:  # training / validation pass
            if self.residual:
                cond = bucket if self.teacher_forcing else b_hat
                out["v_norm"] = self._residual_values(h, p, cond)
            if self.augmentation:
                out["v_high"], out["conf_logit"] = self._high_value(h, b_hat, self.training)
            if self.training:
                out["l2"] = self.cascade.l2_penalty()
                if self.distillation and self.distill_gradient == "encoder":
                    # the same classifiers with their parameters detached: the
                    # distillation gradient reaches h (the encoder) only
                    frozen = {k: v.detach() for k, v in self.cascade.named_parameters()}
                    out["distill_logits"] = functional_call(self.cascade, frozen, (h,))
            return out

        out["bucket"] = b_hat
        if value_mode not in _VALUE_MODES:
            raise ValueError(
                f"ltvkit: value_mode must be one of {_VALUE_MODES}, got {value_mode!r}."
            )
        if value_mode == "none":
            return out
        top = self.n_buckets - 1
        if value_mode == "all":
            if self.residual:
                v = self._residual_values(h, p, None) * self.half_widths + self.centers
            else:
                v = self.centers.expand(h.shape[0], -1)
            if self.augmentation:
                v = torch.cat([v[:, :top], self._high_value(h, b_hat, False)[0][:, None]], 1)
        else:
            if self.residual:
                v = self._residual_values(h, p, b_hat) * self.half_widths[b_hat]
                v = v + self.centers[b_hat]
            else:
                v = self.centers[b_hat]
            if self.augmentation:
                v = torch.where(b_hat == top, self._high_value(h, b_hat, False)[0], v)
        # c_b - r_b is the bucket's lower edge (>= 0); clamp float rounding below 0
        out["values"] = v.clamp(min=0.0)
        return out


def _levels(values: Sequence[Any], n: int) -> list[Any]:
    """The first ``n`` per-level settings; levels beyond the list reuse its last entry."""
    vals = list(values)
    return (vals + [vals[-1]] * n)[:n]


# -- the loss ------------------------------------------------------------------------------
class CCORNetLoss(nn.Module):
    """Per-sample CC-OR-Net loss (eqs. 2, 3, 6, 7, 8).

    ``L_i = main_weight * L_main,i + (1 - main_weight) * 1[b_i = K-1] * L_high,i``
    (``main_weight`` is the paper's ``gamma``) with
    ``L_main = a_cascade * L_cascade + a_residual * L_residual + a_distill * L_distill``.

    - ``L_cascade``: stage ``k`` is a BCE with target ``1[y > tau_k]`` (negatives
      up-weighted by ``lambda_k``) times the stage weight ``w_k`` (eq. 2).
      ``cascade_training="marginal"`` (the paper's teacher forcing, §3.3.1 and Algorithm
      1): on every row, so classifier ``k`` learns ``P(y > tau_k | x)``.
      ``"conditional"``: only on the rows that passed stage ``k - 1``, divided by the
      training share of rows that reach the stage so that ``w_k`` still weights a
      per-stage mean; classifier ``k`` then learns ``P(y > tau_k | y > tau_{k-1}, x)``,
      the conditional probability eq. 1 chains.
    - ``L_distill``: ``KL(Q_true || Q_pred)`` between the batch's bucket shares and the
      batch mean of the eq. 1 bucket distributions sharpened by a temperature
      (``softmax(log P / T)``). Computed from ``distill_logits`` when the module gives
      them (the cascade run with its parameters detached: distillation then trains only
      the shared encoder), else from ``logits`` (it trains the classifiers too, the
      paper's "dual supervision" of the cascade). Added to every row.
    - ``L_residual``: ``(v_hat - v)**2 * sigmoid(beta * v)`` on the normalized residual,
      ``beta = residual_sigmoid_slope``; in training, zero-bucket targets are drawn from
      ``U(-theta, theta)``.
    - ``L_high``: focal confidence loss ``-(1 - p_conf)**g log p_conf`` plus
      ``lambda_reg * |v_high - y| / max(y, 1)``, on the rows truly in the top bucket.

    The temperature and ``theta`` decay linearly with ``progress`` (0 at the first
    epoch, 1 at the last), which :class:`TrainingProgress` sets every epoch.

    Examples
    --------
    >>> loss = CCORNetLoss(stage_weights=[1.0], negative_weights=[1.0], pass_rates=[1.0],
    ...                    residual=False, augmentation=False, distillation=False)
    >>> out = {"logits": torch.zeros(2, 1)}
    >>> target = {"bucket": torch.tensor([0, 1]), "y": torch.tensor([0.0, 2.0])}
    >>> loss(out, target).shape
    torch.Size([2])
    """

    def __init__(
        self,
        *,
        stage_weights: Sequence[float],
        negative_weights: Sequence[float],
        pass_rates: Sequence[float],
        main_weight: float = 0.8,
        cascade_weight: float = 3.0,
        residual_weight: float = 3.0,
        distill_weight: float = 0.2,
        residual_sigmoid_slope: float = 0.5,
        focal_gamma: float = 2.0,
        relative_weight: float = 0.5,
        label_smoothing: tuple[float, float] = (1.0, 0.1),
        distill_temperature: tuple[float, float] = (1.0, 0.2),
        residual: bool = True,
        augmentation: bool = True,
        distillation: bool = True,
        cascade_training: str = "conditional",
    ) -> None:
        super().__init__()
        if cascade_training not in ("marginal", "conditional"):
            raise ValueError(
                "ltvkit: cascade_training must be 'marginal' or 'conditional', "
                f"got {cascade_training!r}."
            )
        self.register_buffer("stage_weights", torch.as_tensor(stage_weights, dtype=torch.float32))
        self.register_buffer(
            "negative_weights", torch.as_tensor(negative_weights, dtype=torch.float32)
        )
        scale = torch.as_tensor(stage_weights, dtype=torch.float32)
        if cascade_training == "conditional":
            # divide by the share of rows a stage sees: its BCE becomes a per-stage mean
            scale = scale / torch.as_tensor(pass_rates, dtype=torch.float32).clamp(min=1e-6)
        self.register_buffer("stage_scale", scale)
        self.cascade_training = str(cascade_training)
        self.n_stages = len(stage_weights)
        self.main_weight = float(main_weight)
        self.cascade_weight = float(cascade_weight)
        self.residual_weight = float(residual_weight)
        self.distill_weight = float(distill_weight)
        self.residual_sigmoid_slope = float(residual_sigmoid_slope)
        self.focal_gamma = float(focal_gamma)
        self.relative_weight = float(relative_weight)
        self.label_smoothing = (float(label_smoothing[0]), float(label_smoothing[1]))
        self.distill_temperature = (float(distill_temperature[0]), float(distill_temperature[1]))
        self.residual = bool(residual)
        self.augmentation = bool(augmentation)
        self.distillation = bool(distillation)
        #: training progress in [0, 1], set each epoch by TrainingProgress
        self.progress = 0.0

    def _schedule(self, bounds: tuple[float, float]) -> float:
        start, end = bounds
        return start + (end - start) * min(max(float(self.progress), 0.0), 1.0)

    @property
    def theta(self) -> float:
        """Current half-width of the zero-bucket label smoothing."""
        return self._schedule(self.label_smoothing)

    @property
    def temperature(self) -> float:
        """Current distillation temperature."""
        return self._schedule(self.distill_temperature)

    def _distill(
        self, logits: torch.Tensor, bucket: torch.Tensor, weight: torch.Tensor | None
    ) -> torch.Tensor:
        # the temperature is a training device: the validation loss (early stopping)
        # measures the model's own distribution, so it does not drift with the schedule
        temperature = self.temperature if self.training else 1.0
        q = torch.softmax(bucket_log_proba(logits) / temperature, dim=1)
        onehot = F.one_hot(bucket, q.shape[1]).to(q.dtype)
        if weight is None:
            q_pred, q_true = q.mean(0), onehot.mean(0)
        else:
            w = (weight / weight.sum().clamp(min=1e-12)).to(q.dtype)
            q_pred, q_true = w @ q, w @ onehot
        present = q_true > 0  # 0 * log 0 = 0
        kl = q_true[present] * (q_true[present].log() - q_pred[present].clamp(min=1e-12).log())
        return kl.sum()

    def forward(
        self, output: dict[str, torch.Tensor], target: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        logits = output["logits"]
        bucket = target["bucket"]
        stages = torch.arange(self.n_stages, device=logits.device)
        passed = (bucket[:, None] > stages).to(logits.dtype)
        # negatives up-weighted by lambda_k: weight 1 for positives, lambda_k for negatives
        elem_w = passed + (1.0 - passed) * self.negative_weights
        bce = F.binary_cross_entropy_with_logits(logits, passed, weight=elem_w, reduction="none")
        if self.cascade_training == "conditional":
            # stage k sees only the rows that passed stage k - 1
            bce = bce * (bucket[:, None] >= stages).to(logits.dtype)
        main = self.cascade_weight * (bce * self.stage_scale).sum(dim=1)

        if self.residual:
            v_true = target["v_norm"]
            if self.training and self.theta > 0:
                noise = (torch.rand_like(v_true) * 2.0 - 1.0) * self.theta
                v_true = torch.where(bucket == 0, noise, v_true)
            v_hat = output["v_norm"]
            weighted = (v_hat - v_true).square() * torch.sigmoid(
                self.residual_sigmoid_slope * v_true
            )
            main = main + self.residual_weight * weighted
        if self.distillation:
            distill_logits = output.get("distill_logits", logits)
            distill = self._distill(distill_logits, bucket, target.get("w"))
            main = main + self.distill_weight * distill
        loss = self.main_weight * main
        if self.augmentation:
            in_top = (bucket == self.n_stages).to(logits.dtype)
            conf_logit = output["conf_logit"]
            p_conf = torch.sigmoid(conf_logit)
            focal = -((1.0 - p_conf) ** self.focal_gamma) * F.logsigmoid(conf_logit)
            y = target["y"]
            relative = (output["v_high"] - y).abs() / y.clamp(min=1.0)
            top_weight = 1.0 - self.main_weight
            loss = loss + top_weight * in_top * (focal + self.relative_weight * relative)
        if "l2" in output:
            loss = loss + output["l2"]
        return loss


class TrainingProgress(Callback):
    """Set ``criterion_.progress`` to the share of training done, at each epoch start.

    ``(epoch - 1) / (max_epochs - 1)``: 0 in the first epoch, 1 in the last, so the
    linear schedules of :class:`CCORNetLoss` (distillation temperature, label smoothing)
    run from their start to their end value over ``max_epochs``, like the cosine
    learning-rate schedule. Stateless, hence deterministic and picklable.

    Examples
    --------
    >>> TrainingProgress()
    TrainingProgress()
    """

    def on_epoch_begin(self, net: Any, **kwargs: Any) -> None:
        epoch = len(net.history)  # skorch has already opened this epoch's history row
        net.criterion_.progress = (epoch - 1) / max(int(net.max_epochs) - 1, 1)

    def __repr__(self) -> str:
        return "TrainingProgress()"


# -- the estimator -------------------------------------------------------------------------
#: Per-level hyperparameters: one entry per cascade level, at most ``n_buckets - 1``.
_PER_LEVEL_PARAMS = (
    "classifier_depths",
    "classifier_dropouts",
    "classifier_l2",
    "stage_weights",
    "negative_weights",
)


@dataclass(frozen=True)
class _BucketInfo:
    """What ``_prepare_targets`` derives from the labels for the module and the loss.

    ``n_buckets`` after merging tied quantiles; bucket ``centers`` and ``half_widths``
    (``c_b``, ``r_b``); the share of training rows reaching each stage (``pass_rates``);
    the starting biases of the classifiers (``init_stage_logits``) and the starting
    normalized value of the top-bucket tower (``init_high_norm``).
    """

    n_buckets: int
    centers: list[float]
    half_widths: list[float]
    pass_rates: list[float]
    init_stage_logits: list[float]
    init_high_norm: float


class CCORNetRegressor(BaseDeepRegressor):
    """Conditional Cascaded Ordinal-Residual Network for customer lifetime value.

    Zhao et al. (WWW 2026), "CC-OR-Net". The customer's value bucket (zero, then the
    positives cut at their 50th and 75th percentiles for ``n_buckets=4``) is predicted by
    a cascade of binary classifiers whose probabilities ``p_k`` are chained into an
    ordinal bucket distribution (eq. 1); a residual network conditioned on the bucket
    places the customer inside it (``v = v_norm * r_b + c_b``); a dedicated tower refines
    the top bucket, trained with attention-guided feature noise. The defaults were chosen
    by measurement for ranking customers (``docs/models/ccornet.md``); the paper's
    configuration (Appendix B.2, §3.3) is one call away::

        CCORNetRegressor(prediction="hard", decision="walk", cascade_training="marginal",
                         distill_gradient="cascade", high_value_output="unbounded",
                         negative_weights=(3.0, 5.0, 8.0))

    ``sample_weight`` holds frequency weights: they weight the bucket quantiles, the stage
    shares and the losses.

    Parameters
    ----------
    n_buckets : int, default=4
        Buckets including the zero bucket (``LTVBucketizer``); tied quantiles are merged
        (fewer buckets, ``n_buckets_``).
    prediction : {"hard", "expected"}, default="expected"
        ``"expected"`` (ltvkit; ranks customers far better): the mean of the predictive
        distribution of :meth:`predict_quantiles`, ``sum_b P(b | x) * bucket_means_[b]``
        (the bucket distribution of eq. 1 and the training labels' mean inside each
        bucket). The network's bucket values ``v_b`` are not means (the top bucket's
        relative-error tower predicts about half of it on a long tail) and rank no
        better (``docs/models/ccornet.md``); ``predict_bucket_proba(X) @
        predict_bucket_values(X)`` gives their mixture. ``"hard"`` (the paper's output):
        the value of the bucket the cascade assigns (``decision``): 0 for the zero
        bucket, the top-bucket tower's value for the top bucket, else the residual value.
        Not a mean.
    decision : {"walk", "argmax"}, default="walk"
        How the cascade assigns a bucket (``predict_bucket`` and the hard output; in
        training, the rows the augmentation perturbs). ``"walk"`` (the paper's: §3.3.1
        "samples traverse the cascade sequentially", Appendix B.2 "decision thresholds
        are fixed at 0.5"): pass stage ``k`` while ``p_k >= 0.5``. ``"argmax"``: the most
        probable bucket of eq. 1 (``predict_bucket_proba``).
    cascade_training : {"marginal", "conditional"}, default="conditional"
        ``"marginal"`` (the paper's teacher forcing, §3.3.1, Algorithm 1 line 6, eq. 2):
        every classifier is trained on the full batch with target ``1[y > tau_k]``, so
        ``p_k`` estimates ``P(y > tau_k | x)``, and eq. 1 chains these outputs as if they
        were conditional (the paper's training-inference gap, which ``L_distill`` is
        meant to narrow). ``"conditional"``: classifier ``k`` is trained only on the rows
        with ``y > tau_{k-1}``, so ``p_k`` estimates ``P(y > tau_k | y > tau_{k-1}, x)``,
        what eq. 1 chains: no gap, and a calibrated bucket distribution with
        ``negative_weights=1``.
    distillation, residual, augmentation : bool, default=True
        The paper's ablation switches (Table 3). Without ``residual`` a bucket's value is
        its center ``c_b``; without ``augmentation`` the top bucket uses the residual
        network like the others.
    distill_gradient : {"cascade", "encoder"}, default="cascade"
        What ``L_distill`` trains. ``"cascade"`` (the paper: "the cascade is trained
        with dual supervision", ``L_cascade`` and ``L_distill``, §3.3.1): the
        classifiers and, through them, the encoder. ``"encoder"``: the classifiers'
        parameters are behind a stop-gradient for this loss only, so it trains only the
        encoder (ltvkit's earlier reading).
    high_value_output : {"bounded", "unbounded"}, default="bounded"
        The top-bucket tower's value. ``"unbounded"`` (the paper's ``MLP_reg``, eq. 5):
        ``tau_top + r_top * softplus(.)``, any value above the top bucket's lower edge
        (capped at ``1e3 * r_top`` above it, for finiteness only). ``"bounded"``
        (ltvkit): ``c_top + r_top * tanh(.)``, inside the top bucket's training range,
        so no prediction exceeds the largest training label.
    teacher_forcing : bool, default=True
        Condition the residual branch on the true bucket in training (its target is
        normalized by that bucket) and on the assigned one at prediction. False: on the
        assigned bucket in training too (Algorithm 2 read literally). Not the paper's
        "teacher-forcing" of the cascade, which is ``cascade_training="marginal"``.
    cascade_units : tuple of int, default=(128, 64)
        The cascade's shared layer (Algorithm 1; widths not given in the paper).
    classifier_units : int, default=64
        Width of each classifier's hidden layers (not given in the paper).
    classifier_depths : tuple of int, default=(2, 1, 2)
        Hidden layers per level (Appendix B.2). Every per-level tuple (this one and the
        four below) has at most ``n_buckets - 1`` entries; levels beyond the tuple reuse
        its last entry, entries beyond ``n_buckets_ - 1`` (merged buckets) are unused.
    classifier_dropouts : tuple of float, default=(0.2, 0.1, 0.1)
    classifier_l2 : tuple of float, default=(0.01, 0.01, 0.008)
        L2 penalty on each classifier's weights, added to the loss.
    stage_weights : tuple of float, default=(5.0, 2.5, 3.0)
        ``w_k`` of eq. 2.
    negative_weights : tuple of float, default=(1.0, 1.0, 1.0)
        ``lambda_k``: BCE weight of a stage's negatives (the paper's: (3.0, 5.0, 8.0)).
        Values above 1 make ``p_k`` (and ``predict_nonzero_proba``, the bucket
        distribution and the quantiles) conservative, i.e. lower than calibrated.
    bucket_embedding_dim : int, default=8
        Width of the learned bucket embedding ``E(b)`` (not given in the paper).
    residual_units : tuple of 2 ints, default=(200, 100)
        Widths of the two residual blocks (the alignment outputs the first).
    attention_units : int, default=100
        Hidden width of the augmentation's attention MLP.
    high_value_units : tuple of int, default=(300, 200)
        The top-bucket tower.
    noise_std : float, default=0.1
        ``sigma_noise`` of the feature perturbation (training only).
    main_weight : float, default=0.8
        The paper's ``gamma``: weight of the main loss; ``1 - main_weight`` weighs the
        top-bucket loss (eq. 6).
    cascade_weight, residual_weight, distill_weight : float, default=3.0, 3.0, 0.2
        ``alpha_1, alpha_2, alpha_3``.
    residual_sigmoid_slope : float, default=0.5
        The paper's ``beta``: slope of the sigmoid weighting ``sigmoid(beta * v_norm)``
        of the value-weighted MSE of the residual (eq. 7).
    focal_gamma : float, default=2.0
        ``beta_focal`` of the confidence loss (eq. 8b).
    relative_weight : float, default=0.5
        ``lambda_reg`` of eq. 8a.
    label_smoothing : tuple of 2 floats, default=(1.0, 0.1)
        ``theta`` at the first and the last epoch (linear decay).
    distill_temperature : tuple of 2 floats, default=(1.0, 0.2)
        Distillation temperature at the first and the last epoch (linear decay; the
        paper gives no values).
    hidden_units : tuple of int, default=(400, 300, 200)
        Shared encoder (Appendix B.2).
    embedding_dim : int or None, default=None
        None: ``min(50, ceil(cardinality / 2))`` per categorical column (the paper's rule).
    batch_size : int, default=1024
        The paper used 100,000 on 14 cores and hundreds of millions of rows; on data of
        ltvkit's size that gives a handful of steps per epoch (see the model page).
    learning_rate : float, default=5e-4
        The paper's, with its AdamW optimizer, weight decay 1e-4 and cosine schedule.
    early_stopping : bool, default=True
        Stops on the validation loss; the split is stratified on the buckets.
    {shared_params}

    Attributes
    ----------
    bucketizer_ : LTVBucketizer
        Fitted on the training labels.
    n_buckets_ : int
        Buckets after merging tied quantiles.
    thresholds_ : ndarray of shape (n_buckets_ - 1,)
        ``tau_k``: ``[zero_tol, *bucketizer_.boundaries_]``; stage ``k`` asks ``y > tau_k``.
    bucket_centers_, bucket_half_widths_ : ndarray of shape (n_buckets_,)
        ``c_b`` and ``r_b`` (eq. 4).
    stage_pass_rates_ : ndarray of shape (n_buckets_ - 1,)
        Share of training rows that reach each stage (``y > tau_{k-1}``).
    bucket_means_ : ndarray of shape (n_buckets_,)
        Weighted mean of the training labels in each bucket (0 for bucket 0 and empty
        buckets): the expected value's bucket values.
    bucket_value_quantiles_ : ndarray of shape (n_buckets_, 201)
        Quantiles of the training labels inside each bucket at levels
        ``0, 0.005, ..., 1`` (weighted; row 0 is zeros): the within-bucket distribution
        of :meth:`predict_quantiles`.
    net_, encoder_, n_iter_, best_epoch_, target_ndim_
        See :class:`~ltvkit.nn.BaseDeepRegressor`.

    Examples
    --------
    >>> import numpy as np
    >>> from ltvkit.nn import CCORNetRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(600, 3))
    >>> y = (rng.random(600) < 0.4) * np.exp(1 + X[:, 0] + 0.5 * rng.normal(size=600))
    >>> model = CCORNetRegressor(hidden_units=(16,), residual_units=(16, 8),
    ...                          high_value_units=(16,), max_epochs=3, random_state=0)
    >>> model.fit(X, y).predict_bucket_proba(X[:2]).shape
    (2, 4)
    >>> bool(np.allclose(model.predict_bucket_proba(X).sum(axis=1), 1.0))
    True
    """

    #: the training and validation steps pass the batch's true bucket to ``forward``
    _target_inputs: ClassVar[tuple[str, ...]] = ("bucket",)

    def __init__(
        self,
        *,
        n_buckets: int = 4,
        prediction: str = "expected",
        decision: str = "walk",
        cascade_training: str = "conditional",
        distillation: bool = True,
        residual: bool = True,
        augmentation: bool = True,
        distill_gradient: str = "cascade",
        high_value_output: str = "bounded",
        teacher_forcing: bool = True,
        cascade_units: Sequence[int] = (128, 64),
        classifier_units: int = 64,
        classifier_depths: Sequence[int] = (2, 1, 2),
        classifier_dropouts: Sequence[float] = (0.2, 0.1, 0.1),
        classifier_l2: Sequence[float] = (0.01, 0.01, 0.008),
        stage_weights: Sequence[float] = (5.0, 2.5, 3.0),
        negative_weights: Sequence[float] = (1.0, 1.0, 1.0),
        bucket_embedding_dim: int = 8,
        residual_units: Sequence[int] = (200, 100),
        attention_units: int = 100,
        high_value_units: Sequence[int] = (300, 200),
        noise_std: float = 0.1,
        main_weight: float = 0.8,
        cascade_weight: float = 3.0,
        residual_weight: float = 3.0,
        distill_weight: float = 0.2,
        residual_sigmoid_slope: float = 0.5,
        focal_gamma: float = 2.0,
        relative_weight: float = 0.5,
        label_smoothing: tuple[float, float] = (1.0, 0.1),
        distill_temperature: tuple[float, float] = (1.0, 0.2),
        hidden_units: Sequence[int] = (400, 300, 200),
        dropout: float = 0.0,
        embedding_dim: int | None = None,
        log_transform: bool | str = "auto",
        min_category_frequency: int = 5,
        batch_size: int = 1024,
        max_epochs: int = 100,
        learning_rate: float = 5e-4,
        weight_decay: float = 1e-4,
        optimizer: str | type = "adamw",
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
        "prediction": [Options("hard", "expected")],
        "decision": [Options(*_DECISIONS)],
        "cascade_training": [Options("marginal", "conditional")],
        "distillation": [Boolean()],
        "residual": [Boolean()],
        "augmentation": [Boolean()],
        "distill_gradient": [Options("cascade", "encoder")],
        "high_value_output": [Options("bounded", "unbounded")],
        "teacher_forcing": [Boolean()],
        "cascade_units": [Units()],
        "classifier_units": [Int(1)],
        "classifier_depths": [PerLevel(Int(0))],
        "classifier_dropouts": [PerLevel(Real(0.0, 1.0, closed="left"))],
        "classifier_l2": [PerLevel(Real(0.0))],
        "stage_weights": [PerLevel(Real(0.0))],
        "negative_weights": [PerLevel(Real(0.0))],
        "bucket_embedding_dim": [Int(1)],
        "residual_units": [Units(length=2)],
        "attention_units": [Int(1)],
        "high_value_units": [Units()],
        "noise_std": [Real(0.0)],
        "main_weight": [Real(0.0, 1.0)],
        "cascade_weight": [Real(0.0)],
        "residual_weight": [Real(0.0)],
        "distill_weight": [Real(0.0)],
        "residual_sigmoid_slope": [Real()],
        "focal_gamma": [Real(0.0)],
        "relative_weight": [Real(0.0)],
        "label_smoothing": [PerLevel(Real(0.0, 1.0), length=2, what="a pair (start, end)")],
        "distill_temperature": [
            PerLevel(Real(0.0, None, closed="neither"), length=2, what="a pair (start, end)")
        ],
    }

    def _check_param_combinations(self) -> None:
        # a per-level tuple may be shorter than the cascade (its last entry is reused),
        # never longer
        n_stages = int(self.n_buckets) - 1
        for name in _PER_LEVEL_PARAMS:
            value = getattr(self, name)
            if len(value) > n_stages:
                raise ValueError(
                    f"ltvkit: {type(self).__name__}: {name} has {len(value)} entries but "
                    f"n_buckets={self.n_buckets} has only {n_stages} cascade levels; give "
                    f"at most n_buckets - 1 = {n_stages}."
                )

    # -- hooks ---------------------------------------------------------------------------
    def _prepare_targets(self, y: np.ndarray, sample_weight: np.ndarray | None) -> PreparedTargets:
        weighted = sample_weight is not None and not np.all(sample_weight == sample_weight[0])
        # weighted quantiles (frequency weights: integer weights give the buckets of the
        # repeated rows, rows of weight 0 do not count; equal weights are unweighted)
        bk = LTVBucketizer(n_buckets=int(self.n_buckets))
        self.bucketizer_ = bk.fit(y.reshape(-1, 1), sample_weight=sample_weight)
        self.n_buckets_ = int(bk.n_buckets_)
        self.thresholds_ = np.concatenate(([float(bk.zero_tol)], bk.boundaries_))
        self.bucket_centers_ = np.asarray(bk.centers_, dtype=np.float64)
        self.bucket_half_widths_ = np.asarray(bk.half_widths_, dtype=np.float64)
        bucket = bk.transform(y.reshape(-1, 1)).ravel().astype(np.int64)
        w = sample_weight if weighted else np.ones_like(y)
        n_stages = self.n_buckets_ - 1
        share = np.bincount(bucket, weights=w, minlength=self.n_buckets_) / w.sum()
        reach = share[::-1].cumsum()[::-1]  # reach[s] = P(bucket >= s)
        self.stage_pass_rates_ = reach[:n_stages].copy()
        # starting logits: the optimum of the lambda-weighted BCE for a constant p_k
        negw = np.asarray(_levels(self.negative_weights, n_stages), dtype=np.float64)
        if self.cascade_training == "marginal":
            rate = reach[1:]  # P(y > tau_k) over all rows
        else:
            rate = reach[1:] / np.maximum(reach[:-1], 1e-12)  # P(y > tau_k | y > tau_{k-1})
        opt = rate / np.maximum(rate + negw * (1.0 - rate), 1e-12)
        opt = np.clip(opt, 1e-6, 1 - 1e-6)
        init_stage_logits = np.clip(
            np.log(opt / (1 - opt)), -_MAX_INIT_LOGIT, _MAX_INIT_LOGIT
        ).tolist()
        # normalized residual target v = (y - c_b) / r_b, 0 in the zero bucket
        c = self.bucket_centers_[bucket]
        r = self.bucket_half_widths_[bucket]
        v_norm = np.where(r > 0, (y - c) / np.where(r > 0, r, 1.0), 0.0)
        v_norm = np.clip(v_norm, -1.0, 1.0)
        top = self.n_buckets_ - 1
        in_top = bucket == top
        init_high_norm = float(
            np.clip(
                np.median(v_norm[in_top]) if in_top.any() else 0.0, -_MAX_INIT_TANH, _MAX_INIT_TANH
            )
        )
        # the training labels' distribution inside each bucket, for predict_quantiles
        levels = np.linspace(0.0, 1.0, _N_VALUE_LEVELS)
        table = np.zeros((self.n_buckets_, _N_VALUE_LEVELS))
        for b in range(1, self.n_buckets_):
            rows = (bucket == b) & (w > 0)
            if rows.any():
                table[b] = inverted_cdf_quantile(y[rows], levels, w[rows] if weighted else None)
            else:  # an empty bucket: its lower edge
                table[b] = self.bucketizer_.lower_[b]
        self.bucket_value_quantiles_ = table
        self.bucket_means_ = np.array(
            [
                np.average(y[bucket == b], weights=w[bucket == b])
                if b and w[bucket == b].sum() > 0
                else 0.0
                for b in range(self.n_buckets_)
            ]
        )
        targets = {"bucket": bucket, "v_norm": v_norm, "y": y}
        if weighted:
            targets["w"] = sample_weight / sample_weight.mean()
        info = _BucketInfo(
            n_buckets=self.n_buckets_,
            centers=self.bucket_centers_.tolist(),
            half_widths=self.bucket_half_widths_.tolist(),
            pass_rates=self.stage_pass_rates_.tolist(),
            init_stage_logits=init_stage_logits,
            init_high_norm=init_high_norm,
        )
        return PreparedTargets(targets, info=info)

    def _validation_strata(
        self, y: np.ndarray, targets: dict[str, np.ndarray]
    ) -> np.ndarray | None:
        return targets["bucket"]

    def _build_module(self, spec: EncodedSpec, info: _BucketInfo) -> CCORNetModule:
        return CCORNetModule(
            self._make_bottom(spec),
            n_buckets=info.n_buckets,
            centers=info.centers,
            half_widths=info.half_widths,
            cascade_units=tuple(int(u) for u in self.cascade_units),
            classifier_units=int(self.classifier_units),
            classifier_depths=list(self.classifier_depths),
            classifier_dropouts=list(self.classifier_dropouts),
            classifier_l2=list(self.classifier_l2),
            bucket_embedding_dim=int(self.bucket_embedding_dim),
            residual_units=tuple(int(u) for u in self.residual_units),
            attention_units=int(self.attention_units),
            high_value_units=tuple(int(u) for u in self.high_value_units),
            noise_std=float(self.noise_std),
            residual=bool(self.residual),
            augmentation=bool(self.augmentation),
            teacher_forcing=bool(self.teacher_forcing),
            distillation=bool(self.distillation),
            decision=str(self.decision),
            distill_gradient=str(self.distill_gradient),
            high_value_output=str(self.high_value_output),
            init_stage_logits=info.init_stage_logits,
            init_high_norm=info.init_high_norm,
        )

    def _build_criterion(self, info: _BucketInfo) -> CCORNetLoss:
        n_stages = info.n_buckets - 1
        return CCORNetLoss(
            stage_weights=_levels(self.stage_weights, n_stages),
            negative_weights=_levels(self.negative_weights, n_stages),
            pass_rates=info.pass_rates,
            main_weight=float(self.main_weight),
            cascade_weight=float(self.cascade_weight),
            residual_weight=float(self.residual_weight),
            distill_weight=float(self.distill_weight),
            residual_sigmoid_slope=float(self.residual_sigmoid_slope),
            focal_gamma=float(self.focal_gamma),
            relative_weight=float(self.relative_weight),
            label_smoothing=tuple(self.label_smoothing),
            distill_temperature=tuple(self.distill_temperature),
            residual=bool(self.residual),
            augmentation=bool(self.augmentation),
            distillation=bool(self.distillation),
            cascade_training=str(self.cascade_training),
        )

    def _model_callbacks(self) -> list[tuple[str, Callback]]:
        return [("training_progress", TrainingProgress())]

    def _predict_forward_kwargs(self) -> dict[str, Any]:
        # the expected value needs only the cascade logits; the hard output the value of
        # the assigned bucket. The net's own predict (skorch's scoring callbacks during
        # training) passes the same, so it scores what ``predict`` returns.
        return {"value_mode": "none" if self.prediction == "expected" else "hard"}

    def _output_to_prediction(self, output: dict[str, torch.Tensor]) -> torch.Tensor:
        if "values" in output:  # hard: the value of the assigned bucket
            return output["values"].double()
        return self._expected_value(output)

    def _expected_value(self, output: dict[str, torch.Tensor]) -> torch.Tensor:
        """The mean of the predictive distribution: ``sum_b P(b | x) * bucket_means_[b]``."""
        proba = bucket_log_proba(output["logits"].double()).exp()
        means = torch.from_numpy(np.asarray(self.bucket_means_, dtype=np.float64))
        return proba @ means.to(proba.device)

    # -- public API ----------------------------------------------------------------------
    def predict(self, X: object) -> np.ndarray:
        """Customer value: the expected value or the paper's hard output (``prediction``).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            Finite, non-negative float64. ``prediction="expected"``:
            ``sum_b P(b) * bucket_means_[b]``;
            ``"hard"``: the value of the bucket :meth:`predict_bucket` assigns (0 for
            the zero bucket).

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(80.0).reshape(-1, 1); y = np.r_[np.zeros(40), np.arange(1.0, 41)]
        >>> model = CCORNetRegressor(hidden_units=(8,), max_epochs=2, random_state=0)
        >>> model.fit(X, y).predict(X).shape
        (80,)
        """
        pred = self._forward_outputs(
            X, self._output_to_prediction, **self._predict_forward_kwargs()
        )
        return check_predictions(pred, type(self).__name__)

    def predict_stage_proba(self, X: object) -> np.ndarray:
        """The classifiers' outputs ``p_k = sigmoid(z_k)``, the stage probabilities eq. 1 chains.

        With ``cascade_training="conditional"`` they estimate
        ``P(y > tau_k | y > tau_{k-1}, x)``; with ``"marginal"`` (the paper's training)
        ``P(y > tau_k | x)``. Both shifted down by ``negative_weights > 1``. The walk
        (``decision="walk"``) compares them with 0.5.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_buckets_ - 1)

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(80.0).reshape(-1, 1); y = np.r_[np.zeros(40), np.arange(1.0, 41)]
        >>> model = CCORNetRegressor(hidden_units=(8,), max_epochs=2, random_state=0).fit(X, y)
        >>> model.predict_stage_proba(X).shape
        (80, 3)
        """
        return self._forward_outputs(
            X, lambda out: torch.sigmoid(out["logits"].double()), value_mode="none"
        )

    def predict_bucket_proba(self, X: object) -> np.ndarray:
        """Bucket distribution ``P(bucket = b | x)``: eq. 1 applied to the stage probabilities.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_buckets_)
            Rows sum to 1; column 0 is the zero bucket.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(80.0).reshape(-1, 1); y = np.r_[np.zeros(40), np.arange(1.0, 41)]
        >>> model = CCORNetRegressor(hidden_units=(8,), max_epochs=2, random_state=0).fit(X, y)
        >>> model.predict_bucket_proba(X).sum(axis=1).round(12).min()
        np.float64(1.0)
        """
        return self._forward_outputs(
            X, lambda out: bucket_log_proba(out["logits"].double()).exp(), value_mode="none"
        )

    def predict_bucket(self, X: object) -> np.ndarray:
        """The bucket the cascade assigns (0 = no spend), by ``decision``.

        ``"walk"``: the number of stages passed before the first ``p_k < 0.5``;
        ``"argmax"``: the most probable bucket of :meth:`predict_bucket_proba`. The hard
        output is this bucket's value.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of int64 of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(80.0).reshape(-1, 1); y = np.r_[np.zeros(40), np.arange(1.0, 41)]
        >>> model = CCORNetRegressor(hidden_units=(8,), max_epochs=2, random_state=0).fit(X, y)
        >>> set(model.predict_bucket(X)) <= {0, 1, 2, 3}
        True
        """
        return self._forward_outputs(X, lambda out: out["bucket"], value_mode="none")

    def predict_bucket_values(self, X: object) -> np.ndarray:
        """The value ``v_b`` the network predicts for each bucket ``b``, in original units.

        Column ``b`` is the customer's value if the customer is in bucket ``b``: 0 for
        bucket 0, the residual value ``v_norm * r_b + c_b`` (eq. 4, the residual branch
        conditioned on ``b``) for the middle buckets, ``v_high`` for the top bucket
        (with augmentation). The hard ``predict`` is column ``predict_bucket(X)`` of
        it; other decision rules and mixtures can be built from it,
        ``predict_stage_proba`` and ``predict_bucket_proba``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_buckets_)
            Non-negative; column ``b`` lies in bucket ``b``'s value range (the top
            column at or above the top bucket's lower edge with
            ``high_value_output="unbounded"``).

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(80.0).reshape(-1, 1); y = np.r_[np.zeros(40), np.arange(1.0, 41)]
        >>> model = CCORNetRegressor(hidden_units=(8,), max_epochs=2, random_state=0).fit(X, y)
        >>> model.predict_bucket_values(X).shape
        (80, 4)
        """
        values = self._forward_outputs(X, lambda out: out["values"].double(), value_mode="all")
        return check_predictions(values, type(self).__name__)

    def predict_nonzero_proba(self, X: object) -> np.ndarray:
        """Probability of spending anything: ``1 - P(bucket = 0 | x)`` (= ``p_1``).

        With ``negative_weights[0] > 1`` (the paper's 3.0) this is deliberately lower
        than a calibrated probability.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(80.0).reshape(-1, 1); y = np.r_[np.zeros(40), np.arange(1.0, 41)]
        >>> model = CCORNetRegressor(hidden_units=(8,), max_epochs=2, random_state=0).fit(X, y)
        >>> p = model.predict_nonzero_proba(X)
        >>> bool(((p >= 0) & (p <= 1)).all())
        True
        """
        return self._forward_outputs(
            X,
            lambda out: -torch.expm1(bucket_log_proba(out["logits"].double())[:, 0]),
            value_mode="none",
        )

    def predict_quantiles(self, X: object, quantiles: float | Sequence[float]) -> np.ndarray:
        """Quantiles of the bucket mixture: ``P(b | x)`` times the labels inside each bucket.

        The predictive distribution is the bucket distribution of eq. 1
        (:meth:`predict_bucket_proba`) with, inside bucket ``b``, the distribution of the
        training labels that fell in ``b`` (``bucket_value_quantiles_``; a point mass at
        0 for bucket 0). For level ``q`` the bucket ``b*`` holding it is the first with
        ``P(bucket <= b*) >= q``, and the quantile is bucket ``b*``'s label quantile at
        the level ``(q - P(bucket < b*)) / P(b*)``, interpolated linearly between the
        stored levels. So ``Q(q) = 0`` exactly for ``q <= P(y = 0 | x)``, ``Q`` is
        non-decreasing in ``q`` (the buckets are ordered), and level 1 is the top of the
        support: the largest training label of the highest bucket with probability.

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
        >>> X = np.arange(80.0).reshape(-1, 1); y = np.r_[np.zeros(40), np.arange(1.0, 41)]
        >>> model = CCORNetRegressor(hidden_units=(8,), max_epochs=2, random_state=0).fit(X, y)
        >>> model.predict_quantiles(X, [0.1, 0.5, 0.9]).shape
        (80, 3)
        """
        if isinstance(quantiles, (str, bytes)):  # numpy would parse "0.5" as a number
            raise ValueError(
                f"ltvkit: quantiles must be a number or a sequence of numbers in [0, 1], "
                f"got {quantiles!r}."
            )
        scalar, levels = check_quantile_levels(quantiles)
        q = torch.from_numpy(levels)
        table = torch.from_numpy(np.asarray(self.bucket_value_quantiles_, dtype=np.float64))

        def fn(out: dict[str, torch.Tensor]) -> torch.Tensor:
            proba = bucket_log_proba(out["logits"].double()).exp()
            return _mixture_quantiles(proba, table, q)

        result = check_predictions(
            self._forward_outputs(X, fn, value_mode="none"), type(self).__name__
        )
        return result[:, 0] if scalar else result


def _mixture_quantiles(proba: torch.Tensor, table: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Quantiles ``(n, m)`` of a bucket mixture: ``proba`` (n, K), ``table`` (K, G), ``q`` (m,).

    ``table[b]``: bucket ``b``'s value quantiles at ``G`` evenly spaced levels of [0, 1].
    """
    # sorted levels and a running maximum: non-decreasing in the level to the last bit,
    # whatever the rounding of the interpolation
    order = torch.argsort(q)
    q = q[order]
    k = proba.shape[1]
    cdf = proba.cumsum(dim=1)
    # the first bucket whose cumulative probability reaches q (q <= P(b = 0): bucket 0)
    b = (cdf[:, None, :] < q[None, :, None]).sum(dim=2).clamp(max=k - 1)  # (n, m)
    before = torch.cat([cdf.new_zeros(cdf.shape[0], 1), cdf[:, :-1]], dim=1).gather(1, b)
    mass = proba.gather(1, b)
    inner = torch.where(mass > 0, (q[None, :] - before) / mass.clamp(min=1e-300), 1.0)
    pos = inner.clamp(0.0, 1.0) * (table.shape[1] - 1)
    lo = pos.floor().long().clamp(max=table.shape[1] - 2)
    frac = pos - lo
    flat = table.reshape(-1)
    base = b * table.shape[1] + lo
    values = torch.lerp(flat[base], flat[base + 1], frac)  # exact at both ends
    values = torch.cummax(values, dim=1).values
    return torch.empty_like(values).index_copy_(1, order, values)
