"""OptDist: a learned choice among several ZILN components (Weng et al., CIKM 2024).

Weng et al., "OptDist: Learning Optimal Distribution for Customer Lifetime Value
Prediction", CIKM 2024. A shared bottom produces ``h``; the *distribution learning
module* maps ``h`` through ``L`` component networks (the paper's sub-distribution
networks, SDNs), each giving zero-inflated lognormal parameters ``(p_i, mu_i,
sigma_i)``; the *selection network* (the paper's distribution selection module, DSM)
maps ``h`` to ``alpha = softmax(MLP(h))`` over the components. In training a
straight-through Gumbel-softmax sample ``pi`` of ``alpha`` picks the component whose
ZILN loss counts for each customer (eqs. 6-9; ``gumbel_hard=False``: the soft sample
weights them all), and an *alignment mechanism* trains
``alpha`` towards the component that fits the customer best: a focal cross-entropy on
the hard pseudo-label ``argmin_i L[u, i]`` and ``KL(softmax(-L[u]) || alpha)`` (eqs.
10-15). At inference the argmax-``alpha`` component gives the prediction
``p_s * exp(mu_s + sigma_s**2 / 2)`` (eqs. 18-19).

The ``L`` components are one :class:`~ltvkit.nn._layers.MLPBank` with stacked weights
``(L, in, out)``, evaluated by batched matrix products (``torch.baddbmm``), never a
Python loop over networks per batch; each component's slice is initialised from its own
seed, and component ``i`` starts at the ``(i + 0.5) / L`` quantile of the positive log
labels (``component_init``): started all at the marginal distribution, the components
gave the pseudo-labels nothing to sort on and the selection did not find planted
groups. ``docs/models/optdist.md`` has the details and the measured results.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from skorch.callbacks import Callback
from torch import nn

from ltvkit._utils import (
    Boolean,
    Int,
    Options,
    Real,
    Units,
    check_quantile_levels,
    inverted_cdf_quantile,
)
from ltvkit.nn._base import BaseDeepRegressor, PreparedTargets
from ltvkit.nn._encoder import EncodedSpec
from ltvkit.nn._layers import MLP, MLPBank, SharedBottom
from ltvkit.nn._losses import (
    ZILNLabelStats,
    bounded_mu,
    bounded_sigma,
    inverse_bounded_sigma,
    ziln_log_mean,
    ziln_nll,
    ziln_quantile,
)

__all__ = ["OptDistLoss", "OptDistModule", "OptDistRegressor"]

# mu is bounded to [log(min y+) - 1, log(max y+)] of the positive training labels, the
# same bounds as ZILNRegressor (ZILNLabelStats): no component's median spend may exceed
# the largest training spend, so every prediction is finite by construction.
_PREDICTIONS = ("hard", "expected")
_COMPONENT_INITS = ("quantiles", "marginal")
# Bisection steps of the mixture quantile (prediction="expected"): the bracket is at most
# ~2 * (log-range + 6 sigma_max) wide, so 60 halvings reach float64 resolution.
_QUANTILE_BISECTION_STEPS = 60


# ----------------------------------------------------------------------------- module
class OptDistModule(nn.Module):
    """Shared bottom -> (``L`` ZILN component networks, selection logits).

    ``forward`` returns a dict of ``(L, n)`` tensors, component-major: ``"logit"``
    (logit of ``p_i = P(y > 0)``), ``"mu"``, ``"sigma"`` (bounded like ZILNRegressor's)
    and ``"selection_logits"`` (``alpha = softmax(selection_logits, dim=0)``, eq. 7).
    Component-major because the loss reduces over the ``L`` components (softmax,
    argmin, sums): along dim 0 the CPU kernels vectorise over the customers, while a
    softmax over a 4-wide last dim is ~10x slower (microbenchmark, 1024 x 4), which
    was a fifth of a training step.

    The components (the paper's SDNs) are one
    :class:`~ltvkit.nn._layers.MLPBank` in network-major layout (``components``,
    output ``(L, n, 3)``); the selection network (the paper's DSM) is an
    :class:`~ltvkit.nn._layers.MLP` (``selection``) and a linear layer
    (``selection_head``).

    Parameters
    ----------
    bottom : SharedBottom
        Produces ``h``, read by the components and the selection network (paper
        sec. 3.2).
    n_components : int
        ``L``.
    component_units, selection_units : sequence of int
        Hidden widths of every component network and of the selection network.
    component_seeds : sequence of int
        One initialisation seed per component.
    mu_low, mu_high, sigma_max : float
        Bounds of ``mu`` and ``sigma``.
    init_logit, init_sigma : float
        Starting values of every component's ``logit p`` and ``sigma`` (output-layer
        biases).
    init_mu : float, sequence of float or None
        Starting ``mu`` of every component (one value for all, or one per component;
        None: the middle of the bounds).

    Examples
    --------
    >>> from ltvkit.nn._encoder import EncodedSpec
    >>> spec = EncodedSpec(3, (), (), ("a", "b", "c"), ())
    >>> module = OptDistModule(
    ...     SharedBottom(spec, (8,)), n_components=4, component_units=(8,),
    ...     selection_units=(8,), component_seeds=[0, 1, 2, 3], mu_low=0.0, mu_high=5.0,
    ...     sigma_max=2.0)
    >>> out = module(torch.zeros(6, 3), torch.zeros(6, 0, dtype=torch.long))
    >>> out["mu"].shape, out["selection_logits"].shape
    (torch.Size([4, 6]), torch.Size([4, 6]))
    """

    def __init__(
        self,
        bottom: SharedBottom,
        *,
        n_components: int,
        component_units: Sequence[int],
        selection_units: Sequence[int],
        component_seeds: Sequence[int],
        mu_low: float,
        mu_high: float,
        sigma_max: float,
        init_logit: float = 0.0,
        init_mu: float | Sequence[float] | None = None,
        init_sigma: float = 1.0,
    ) -> None:
        super().__init__()
        self.bottom = bottom
        width = bottom.out_features
        self.components = MLPBank(
            n_components, width, component_units, 3, seeds=component_seeds, network_major=True
        )
        self.selection = MLP(width, selection_units)
        self.selection_head = nn.Linear(self.selection.out_features, n_components)
        self.mu_center = 0.5 * (mu_low + mu_high)
        self.mu_half_width = max(0.5 * (mu_high - mu_low), 1e-3)
        self.sigma_max = float(sigma_max)
        mus = np.broadcast_to(
            np.asarray(self.mu_center if init_mu is None else init_mu, dtype=np.float64),
            (n_components,),
        )
        rel = np.clip((mus - self.mu_center) / self.mu_half_width, -0.99, 0.99)
        start = torch.tensor(
            [
                [
                    init_logit,
                    self.mu_half_width * math.atanh(r),
                    inverse_bounded_sigma(init_sigma, self.sigma_max),
                ]
                for r in rel
            ]
        )
        with torch.no_grad():  # component i starts at (p, mu_i, sigma)
            self.components.biases[-1].copy_(start)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.bottom(x_num, x_cat)
        out = self.components(h)  # (L, n, 3)
        return {
            "logit": out[:, :, 0],
            "mu": bounded_mu(out[:, :, 1], self.mu_center, self.mu_half_width),
            "sigma": bounded_sigma(out[:, :, 2], self.sigma_max),
            "selection_logits": self.selection_head(self.selection(h)).T.contiguous(),
        }


# ----------------------------------------------------------------------------- loss
class OptDistLoss(nn.Module):
    """Per-customer OptDist loss, eq. 15: ``L_u + ce_weight * CE_u + kl_weight * KL_u``.

    - ``L[u, i]``: ZILN negative log-likelihood of customer ``u`` under component ``i``
      (eq. 5, :func:`~ltvkit.nn._losses.ziln_nll` broadcast over the components).
    - ``L_u = sum_i pi[u, i] * L[u, i]`` (eq. 6). In training ``pi`` is a
      Gumbel-softmax sample of ``log alpha`` at temperature ``gumbel_temperature``
      (eqs. 8-9): with ``gumbel_hard=True`` straight-through, one-hot in the forward
      pass and the softmax gradient in the backward pass; with ``gumbel_hard=False``
      the soft weights ``softmax((log alpha + g) / tau)`` of eq. 9 in both passes.
      ``gumbel=False`` (ablation) uses ``pi = alpha``.
      In evaluation (validation loss) ``pi`` is the inference rule: one-hot argmax
      ``alpha`` for ``prediction="hard"``, ``alpha`` for ``"expected"``, no noise, and
      the loss returned in evaluation is ``L_u`` alone (the predictive NLL that early
      stopping monitors); the alignment terms are still computed and logged.
    - ``CE_u = -(1 - alpha[u, k])**2 log alpha[u, k]`` with ``k = argmin_i L[u, i]``
      (eqs. 10-11, focal-weighted cross-entropy on the hard pseudo-label).
    - ``KL_u = KL(omega_u || alpha_u)``, ``omega_u = softmax(-L[u])`` (eqs. 12-14).

    The inputs are the module's component-major ``(L, n)`` tensors (see
    :class:`OptDistModule`), the target has shape ``(n,)`` and so has the result.
    The pseudo-labels ``k`` and ``omega`` are computed from detached losses: they
    supervise the selection network only (``align_components=True`` lets the KL term's
    gradient reach the components through ``omega``, the other reading of eqs. 15 and
    17, which do not say where gradients stop; measured in ``docs/models/optdist.md``,
    not exposed on the estimator). After each call, ``last_terms_`` holds the
    batch sums of ``L_u``, ``CE_u``, ``KL_u`` and the count of customers per
    argmax-``alpha`` component (detached), which :class:`_AlignmentHistory` turns into
    per-epoch history columns.

    Examples
    --------
    >>> loss = OptDistLoss()
    >>> out = {k: torch.zeros(4, 3) for k in ("logit", "mu", "selection_logits")}  # (L, n)
    >>> out["sigma"] = torch.ones(4, 3)
    >>> loss(out, torch.tensor([0.0, 1.0, 5.0])).shape
    torch.Size([3])
    """

    def __init__(
        self,
        *,
        gumbel_temperature: float = 0.1,
        gumbel: bool = True,
        gumbel_hard: bool = True,
        ce_weight: float = 1.0,
        kl_weight: float = 1.0,
        prediction: str = "hard",
        align_components: bool = False,
    ) -> None:
        super().__init__()
        self.gumbel_temperature = float(gumbel_temperature)
        self.gumbel = bool(gumbel)
        self.gumbel_hard = bool(gumbel_hard)
        self.ce_weight = float(ce_weight)
        self.kl_weight = float(kl_weight)
        self.prediction = prediction
        self.align_components = bool(align_components)
        self.last_terms_: torch.Tensor | None = None

    def forward(self, output: dict[str, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        # everything is component-major, (L, n): reductions over the components run
        # along dim 0
        losses = ziln_nll(target[None, :], output["logit"], output["mu"], output["sigma"])
        log_alpha = F.log_softmax(output["selection_logits"], dim=0)
        if self.training:
            if self.gumbel:
                pi = _gumbel_softmax(log_alpha, self.gumbel_temperature, self.gumbel_hard)
            else:
                pi = log_alpha.exp()
        elif self.prediction == "hard":
            pi = _one_hot_argmax(log_alpha)
        else:
            pi = log_alpha.exp()
        nll = (pi * losses).sum(dim=0)

        # alignment (eqs. 10-14): pseudo-labels from the component losses, no gradient
        detached = losses.detach()
        best = detached.min(dim=0, keepdim=True).indices
        log_alpha_best = log_alpha.gather(0, best).squeeze(0)
        ce = -((1.0 - log_alpha_best.exp()) ** 2) * log_alpha_best
        log_omega = F.log_softmax(-(losses if self.align_components else detached), dim=0)
        kl = (log_omega.exp() * (log_omega - log_alpha)).sum(dim=0)
        # In evaluation the loss is the ZILN NLL of the inference-time rule only: early
        # stopping then keeps the epoch that predicts best. The alignment terms are
        # training signals for the selection network, and they rise while the
        # components specialise, which would stop training too early (measured on
        # CDNOW, see the docs).
        total = nll + self.ce_weight * ce + self.kl_weight * kl if self.training else nll

        with torch.no_grad():
            selected = log_alpha.max(dim=0).indices
            counts = torch.bincount(selected, minlength=log_alpha.shape[0])
            self.last_terms_ = torch.cat(
                [torch.stack([nll.sum(), ce.sum(), kl.sum()]), counts.to(nll.dtype)]
            ).detach()
        return total


class _AlignmentHistory(Callback):
    """Record per-epoch means of the loss terms and the component shares in the history.

    Columns (``train_`` and, with a validation split, ``valid_``): ``*_nll`` (the
    selected component's ZILN loss ``L_u``; in training the Gumbel-sampled one),
    ``*_ce`` and ``*_kl`` (the alignment terms, unweighted) and ``*_component_share``
    (share of customers whose argmax-``alpha`` component is ``i``, a list of length
    ``L``). Batch sums are accumulated as tensors and turned into floats once per
    epoch, in ``on_epoch_end`` (a model callback runs before early stopping, so also in
    the last epoch).
    """

    def on_epoch_begin(self, net: Any, **kwargs: Any) -> None:
        self._sums: dict[bool, torch.Tensor | None] = {True: None, False: None}

    def on_batch_end(
        self, net: Any, batch: Any = None, training: bool | None = None, **kwargs: Any
    ) -> None:
        terms = getattr(net.criterion_, "last_terms_", None)
        if terms is None:
            return
        acc = self._sums[bool(training)]
        self._sums[bool(training)] = terms.clone() if acc is None else acc + terms

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        self._flush(net)

    def on_train_end(self, net: Any, **kwargs: Any) -> None:
        # nothing of the last batch should be pickled with the fitted model
        self._sums = {True: None, False: None}
        net.criterion_.last_terms_ = None

    def _flush(self, net: Any) -> None:
        for training, prefix in ((True, "train"), (False, "valid")):
            sums = self._sums[training]
            if sums is None:
                continue
            values = sums.double().tolist()
            n = sum(values[3:])
            net.history.record(f"{prefix}_nll", values[0] / n)
            net.history.record(f"{prefix}_ce", values[1] / n)
            net.history.record(f"{prefix}_kl", values[2] / n)
            net.history.record(f"{prefix}_component_share", [c / n for c in values[3:]])
        self._sums = {True: None, False: None}


# ----------------------------------------------------------------------------- estimator
class OptDistRegressor(BaseDeepRegressor):
    """OptDist: several ZILN mixture components and a learned choice among them.

    Weng et al. (CIKM 2024), "OptDist: Learning Optimal Distribution for Customer
    Lifetime Value Prediction". ``L`` component networks (the paper's sub-distribution
    networks, SDNs) on a shared bottom each output zero-inflated lognormal parameters;
    a selection network (the paper's distribution selection module, DSM) outputs
    ``alpha``, the probability that each component suits the customer. Training uses a
    straight-through Gumbel-softmax sample of ``alpha`` to pick the component whose
    ZILN loss counts (eqs. 6-9) plus two alignment terms that pull ``alpha`` towards
    the component with the lowest loss: a focal cross-entropy on the hard pseudo-label
    and a KL divergence to ``softmax(-losses)`` (eqs. 10-15). The components start at
    different quantiles of the spend distribution, so the pseudo-labels sort customers
    by value from the first step. ``predict`` returns the
    mean of the argmax-``alpha`` component, ``p_s * exp(mu_s + sigma_s**2 / 2)`` (eqs.
    18-19), computed in log space with ZILNRegressor's bounds on ``mu`` and ``sigma``.

    Parameters
    ----------
    n_components : int, default=4
        Number of mixture components ``L``: the paper's sub-distribution networks
        (SDNs), each a ZILN network on the shared bottom. 4 is the paper's best value
        on its public datasets (Fig. 4a).
    gumbel_temperature : float, default=0.1
        Temperature ``tau`` of the Gumbel-softmax (eq. 9). The paper varies it (Fig.
        4b: a high ``tau`` hurts) but does not state the value it uses. With
        ``gumbel_hard=True`` the forward pass is a one-hot sample of ``alpha`` whatever
        ``tau`` (the Gumbel-max property), and ``tau`` only shapes the gradient that
        reaches the selection network through ``L_u``,
        ``(1 / tau) * pi_soft_i * (L[u, i] - sum_j pi_soft_j L[u, j])``; with
        ``gumbel_hard=False`` it also sets how evenly the soft weights ``pi`` spread
        over the components. 0.1 rather than 1.0 (Jang et al.'s and torch's default):
        on data with planted groups the selection agrees with them at ARI 0.42 against
        0.24 with ``tau = 1`` (10 seeds); on CDNOW the ranking is the same (normalized
        Gini 0.7368 at both; ``docs/models/optdist.md``).
    gumbel_hard : bool, default=True
        The training mask ``pi`` of eq. 6. ``True``: straight-through Gumbel-softmax
        (sec. 3.4, "we employ the straight-through Gumbel-softmax"): one component per
        customer in the forward pass (the constraint ``pi_{u,l} in {0, 1}`` of eq. 3).
        ``False``: the soft Gumbel-softmax sample ``pi = softmax((log alpha + g) /
        tau)`` of eq. 9 as weights in the forward pass, so every component learns from
        every customer in proportion to ``pi``: the reading under which the paper's
        Fig. 4(b) explanation ("the sampling probability becomes smoother" as ``tau``
        grows) describes the forward pass. Ignored with ``gumbel=False``.
    component_init : {"quantiles", "marginal"}, default="quantiles"
        Where the components' distributions start (the output-layer biases; the hidden
        weights always come from each component's own seed, sec. 3.1.2).
        ``"quantiles"``: component ``i`` starts with ``mu_i`` at the ``(i + 0.5) / L``
        quantile of ``log y`` over the positive training labels (the same ``p`` and
        ``sigma`` for all), so the components start as different sub-distributions and
        the pseudo-labels of eq. 10 sort customers by value from the first step.
        ``"marginal"``: every component starts at the marginal distribution (ltvkit's
        earlier default); the components then differ only through their random
        hidden weights, the pseudo-labels carry no signal, and on data with planted
        groups the selection agrees with them at ARI 0.16 (0.42 with ``"quantiles"``;
        ``docs/models/optdist.md``).
    component_units : tuple of int, default=(64, 32, 32)
        Hidden widths of every component network (the paper's SDN size on its public
        data), followed by a linear output of ``(logit p, mu, sigma)``.
    selection_units : tuple of int, default=(64,)
        Hidden widths of the selection network (the paper's DSM; the paper does not give
        them, one hidden layer is enough to map ``h`` to ``L`` logits), followed by a
        linear layer.
    ce_weight : float, default=1.0
        Weight of the focal cross-entropy alignment term (eq. 11); 0 removes it.
    kl_weight : float, default=1.0
        Weight of the KL alignment term (eq. 14); 0 removes it.
    gumbel : bool, default=True
        Straight-through Gumbel-softmax selection in training; ``False`` is the paper's
        "(w/o) Gumbel-softmax" ablation (the mask is ``alpha`` itself).
    prediction : {"hard", "expected"}, default="hard"
        Inference rule. ``"hard"`` (the paper, eqs. 18-19): the argmax-``alpha``
        component. ``"expected"``: the ``alpha``-weighted mixture of the components,
        whose mean is ``sum_i alpha_i p_i exp(mu_i + sigma_i**2 / 2)`` (an ltvkit option,
        not in the paper; see ``docs/models/optdist.md`` for whether it helps).
        ``predict_nonzero_proba``, ``predict_quantiles`` and the validation loss follow
        the same rule.
    sigma_max : float, default=2.0
        Upper bound of every component's ``sigma`` (as ZILNRegressor; ``mu`` is kept
        within ``[log(min y+) - 1, log(max y+)]``), so predictions stay finite.
    hidden_units : tuple of int, default=(64, 32)
        Widths of the shared bottom MLP (the same as ZILNRegressor, so the two compare
        on one bottom; the paper does not give its size).
    dropout : float, default=0.0
        Dropout of the shared bottom (the components and the selection network have
        none).
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the rows (stratified on ``y > 0``), stop
        after ``patience`` epochs without improvement of the validation loss and
        restore the best weights. The validation loss is the ZILN loss of the
        ``prediction`` rule (no Gumbel noise, without the alignment terms, which are
        training signals for the selection network: they rise while the components
        specialise and would stop training too early).
    patience : int, default=20
        Epochs without improvement of the validation loss before early stopping ends
        training (ltvkit's shared default is 10). The components start at different
        spend levels (``component_init="quantiles"``), and while the selection
        network sorts the customers among them the validation loss of the argmax rule
        can stay above its first-epoch value for more than 10 epochs on small tables
        (Online Retail: 2-3 batches per epoch); with ``patience=10``, 2 of 10 seeds
        kept epoch 1 or 3 there (normalized Gini -0.04 and 0.68), with 20 none did
        (``docs/models/optdist.md``).
    {shared_params}

    Attributes
    ----------
    net_ : skorch NeuralNet
        Trained net. Besides the losses, ``net_.history`` has per-epoch columns
        ``train_nll``, ``train_ce``, ``train_kl`` and ``train_component_share`` (and
        the ``valid_`` ones with a validation split).
    encoder_ : TabularEncoder
    n_iter_ : int
    best_epoch_ : int
    positive_rate_ : float
        Share of training customers with ``y > 0``.
    log_y_range_ : tuple of float
        ``(min, max)`` of ``log(y)`` over positive training labels.
    component_seeds_ : tuple of int
        Initialisation seed of each component network (drawn from ``random_state``).
    component_init_mu_ : ndarray of shape (n_components,)
        Starting ``mu`` of each component (``component_init``).

    Examples
    --------
    >>> import numpy as np
    >>> from ltvkit.nn import OptDistRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3))
    >>> y = (rng.random(500) < 0.4) * np.exp(1 + X[:, 0] + 0.5 * rng.normal(size=500))
    >>> model = OptDistRegressor(max_epochs=5, random_state=0).fit(X, y)
    >>> model.predict(X[:2]).shape
    (2,)
    >>> model.predict_component_proba(X[:2]).shape
    (2, 4)
    """

    def __init__(
        self,
        *,
        n_components: int = 4,
        gumbel_temperature: float = 0.1,
        gumbel_hard: bool = True,
        component_init: str = "quantiles",
        component_units: Sequence[int] = (64, 32, 32),
        selection_units: Sequence[int] = (64,),
        ce_weight: float = 1.0,
        kl_weight: float = 1.0,
        gumbel: bool = True,
        prediction: str = "hard",
        sigma_max: float = 2.0,
        hidden_units: Sequence[int] = (64, 32),
        dropout: float = 0.0,
        embedding_dim: int | None = None,
        log_transform: bool | str = "auto",
        min_category_frequency: int = 5,
        batch_size: int = 1024,
        max_epochs: int = 100,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: str | type = "adam",
        learning_rate_schedule: str | None = "cosine",
        early_stopping: bool = True,
        validation_fraction: float = 0.1,
        patience: int = 20,
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
        "n_components": [Int(1)],
        "gumbel_temperature": [Real(0.0, None, closed="neither")],
        "gumbel_hard": [Boolean()],
        "component_init": [Options(*_COMPONENT_INITS)],
        "component_units": [Units()],
        "selection_units": [Units()],
        "ce_weight": [Real(0.0)],
        "kl_weight": [Real(0.0)],
        "gumbel": [Boolean()],
        "prediction": [Options(*_PREDICTIONS)],
        "sigma_max": [Real(0.01, None, closed="neither")],
    }

    # -- hooks ------------------------------------------------------------------------
    def _prepare_targets(self, y: np.ndarray, sample_weight: np.ndarray | None) -> PreparedTargets:
        # starting values and mu bounds of every component's head (shared with ZILN)
        stats = ZILNLabelStats.from_labels(y, sample_weight)
        self.positive_rate_ = stats.positive_rate
        self.log_y_range_ = stats.log_range
        init = stats.head_init(float(self.sigma_max))
        if self.component_init == "quantiles":
            # component i starts at the (i + 0.5) / L quantile of the positive log labels
            positive = y > 0
            levels = (np.arange(int(self.n_components)) + 0.5) / int(self.n_components)
            weights = None if sample_weight is None else sample_weight[positive]
            init["init_mu"] = tuple(
                float(v) for v in inverted_cdf_quantile(np.log(y[positive]), levels, weights)
            )
        self.component_init_mu_ = np.broadcast_to(
            np.asarray(init["init_mu"], dtype=np.float64), (int(self.n_components),)
        ).copy()
        return PreparedTargets(y, info=init)

    def _build_module(self, spec: EncodedSpec, info: dict[str, Any]) -> OptDistModule:
        # _build_module runs under the seeded (forked) torch RNG of fit(): the component
        # seeds drawn here, before the bottom's weights, are a deterministic function of
        # random_state
        L = int(self.n_components)
        self.component_seeds_ = tuple(int(s) for s in torch.randint(0, 2**31 - 1, (L,)).tolist())
        return OptDistModule(
            self._make_bottom(spec),
            n_components=L,
            component_units=tuple(int(u) for u in self.component_units),
            selection_units=tuple(int(u) for u in self.selection_units),
            component_seeds=self.component_seeds_,
            **info,
        )

    def _build_criterion(self, info: dict[str, Any]) -> OptDistLoss:
        return OptDistLoss(
            gumbel_temperature=float(self.gumbel_temperature),
            gumbel=bool(self.gumbel),
            gumbel_hard=bool(self.gumbel_hard),
            ce_weight=float(self.ce_weight),
            kl_weight=float(self.kl_weight),
            prediction=self.prediction,
        )

    def _model_callbacks(self) -> list[tuple[str, Callback]]:
        return [("alignment_history", _AlignmentHistory())]

    def _output_to_prediction(self, output: dict[str, torch.Tensor]) -> torch.Tensor:
        logit, mu, sigma, selection_logits = _per_customer(output)
        log_mean = ziln_log_mean(logit, mu, sigma)  # (n, L), log space: no overflow
        log_alpha = F.log_softmax(selection_logits, dim=1)
        if self.prediction == "hard":
            return torch.exp(log_mean.gather(1, log_alpha.argmax(dim=1, keepdim=True))[:, 0])
        return torch.exp(torch.logsumexp(log_alpha + log_mean, dim=1))

    # -- public API -------------------------------------------------------------------
    def predict_component_proba(self, X: object) -> np.ndarray:
        """The selection network's probability ``alpha`` of each component (eq. 7).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_components)
            Rows sum to 1.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(40.0).reshape(-1, 1); y = np.r_[np.zeros(20), np.ones(20)]
        >>> model = OptDistRegressor(n_components=3, max_epochs=2, random_state=0)
        >>> model.fit(X, y).predict_component_proba(X).shape
        (40, 3)
        """
        return self._forward_outputs(
            X, lambda out: torch.softmax(out["selection_logits"].double().T, 1)
        )

    def predict_component(self, X: object) -> np.ndarray:
        """Index of the selected component, ``argmax alpha`` (eq. 18).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of int64 of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(40.0).reshape(-1, 1); y = np.r_[np.zeros(20), np.ones(20)]
        >>> s = OptDistRegressor(max_epochs=2, random_state=0).fit(X, y).predict_component(X)
        >>> bool(((s >= 0) & (s < 4)).all())
        True
        """
        return self._forward_outputs(X, lambda out: out["selection_logits"].argmax(dim=0))

    def predict_nonzero_proba(self, X: object) -> np.ndarray:
        """Probability that each customer spends anything, ``P(y > 0 | x)``.

        ``p_s`` of the selected component (``prediction="hard"``) or
        ``sum_i alpha_i p_i`` (``"expected"``).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(40.0).reshape(-1, 1); y = np.r_[np.zeros(20), np.ones(20)]
        >>> p = OptDistRegressor(max_epochs=2, random_state=0).fit(X, y).predict_nonzero_proba(X)
        >>> bool(((p > 0) & (p < 1)).all())
        True
        """

        def proba(out: dict[str, torch.Tensor]) -> torch.Tensor:
            p = torch.sigmoid(_per_customer(out)[0])
            alpha = self._mask(out)
            return (alpha * p).sum(dim=1)

        return self._forward_outputs(X, proba)

    def predict_params(self, X: object) -> dict[str, np.ndarray]:
        """The selected component and its ZILN parameters for each customer.

        ``y = 0`` with probability ``1 - p``, else ``log(y) ~ Normal(mu, sigma)``, with
        the parameters of component ``argmax alpha`` (whatever ``prediction``; the
        mixture of ``prediction="expected"`` is not one ZILN).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        dict of str to ndarray of shape (n_samples,)
            ``"component"`` (int64, as :meth:`predict_component`), ``"p"``, ``"mu"``,
            ``"sigma"`` (``pd.DataFrame(params, index=X.index)`` makes a table of it).

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(40.0).reshape(-1, 1); y = np.r_[np.zeros(20), np.ones(20)]
        >>> params = OptDistRegressor(max_epochs=2, random_state=0).fit(X, y).predict_params(X)
        >>> list(params), params["component"].dtype, params["mu"].shape
        (['component', 'p', 'mu', 'sigma'], dtype('int64'), (40,))
        """

        def params(out: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
            logit, mu, sigma, selection_logits = _per_customer(out)
            s = selection_logits.argmax(dim=1, keepdim=True)
            logit, mu, sigma = (t.gather(1, s)[:, 0] for t in (logit, mu, sigma))
            return s[:, 0], torch.sigmoid(logit), mu, sigma

        s, p, mu, sigma = self._forward_outputs(X, params)
        return {"component": s, "p": p, "mu": mu, "sigma": sigma}

    def predict_quantiles(self, X: object, quantiles: float | Sequence[float]) -> np.ndarray:
        """Quantiles of each customer's predicted distribution.

        ``prediction="hard"``: exact quantiles of the selected component's
        zero-inflated lognormal, ``0`` if ``q <= 1 - p`` else
        ``exp(mu + sigma * Phi^-1((q - 1 + p) / p))``. ``prediction="expected"``:
        quantiles of the ``alpha``-weighted mixture, by bisection on its CDF in log
        space (60 steps, float64), bracketed by the components' own quantiles.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        quantiles : float or sequence of float in [0, 1]
            Level 1 is refused: the lognormal part has unbounded support.

        Returns
        -------
        ndarray of shape (n_samples,) for a float, (n_samples, n_quantiles) otherwise

        Raises
        ------
        ValueError
            Levels outside [0, 1] (the message names ``quantiles``), or a level of 1
            (the top of an unbounded support).

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(40.0).reshape(-1, 1); y = np.r_[np.zeros(20), np.ones(20)]
        >>> model = OptDistRegressor(max_epochs=2, random_state=0).fit(X, y)
        >>> model.predict_quantiles(X, [0.1, 0.5, 0.9]).shape
        (40, 3)
        """
        scalar, q = check_quantile_levels(quantiles)
        if np.any(q >= 1.0):
            raise ValueError(
                "ltvkit: OptDistRegressor: quantile level 1 is the top of an unbounded "
                "support (every component's positive part is lognormal); use a level "
                "below 1."
            )
        q_t = torch.from_numpy(q)
        expected = self.prediction == "expected"

        def quantile_fn(out: dict[str, torch.Tensor]) -> torch.Tensor:
            logit, mu, sigma, selection_logits = _per_customer(out)
            if not expected:
                s = selection_logits.argmax(dim=1, keepdim=True)
                logit, mu, sigma = (t.gather(1, s) for t in (logit, mu, sigma))
                return ziln_quantile(logit, mu, sigma, q_t[None, :])
            alpha = torch.softmax(selection_logits, dim=1)
            return _mixture_quantile(alpha, logit, mu, sigma, q_t)

        result = self._forward_outputs(X, quantile_fn)
        return result[:, 0] if scalar else result

    # -- internals --------------------------------------------------------------------
    def _mask(self, out: dict[str, torch.Tensor]) -> torch.Tensor:
        """Inference weights ``(n, L)`` of the components: one-hot argmax alpha, or alpha."""
        alpha = torch.softmax(_per_customer(out)[3], dim=1)
        if self.prediction == "expected":
            return alpha
        return F.one_hot(alpha.argmax(dim=1), alpha.shape[1]).double()


def _per_customer(out: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """``(logit, mu, sigma, selection_logits)`` as float64 ``(n, L)`` views, for inference."""
    return tuple(out[k].double().T for k in ("logit", "mu", "sigma", "selection_logits"))


def _one_hot_argmax(log_alpha: torch.Tensor) -> torch.Tensor:
    """One-hot ``(L, n)`` mask of the argmax over the components (dim 0).

    ``max(dim=0).indices`` rather than ``argmax(dim=0)``: the same indices, but the
    latter has no vectorised CPU kernel over a short outer dim (~10x slower for 4 x 1024).
    """
    best = log_alpha.max(dim=0, keepdim=True).indices
    return torch.zeros_like(log_alpha).scatter_(0, best, 1.0)


def _gumbel_softmax(log_alpha: torch.Tensor, temperature: float, hard: bool) -> torch.Tensor:
    """Gumbel-softmax over dim 0 of ``(L, n)`` log-probabilities (eqs. 8-9).

    ``soft = softmax((log alpha + g) / temperature)`` with ``g = -log(-log U)`` (eq. 8).
    ``hard=True`` (straight-through): the forward value is the one-hot of
    ``argmax_i(log alpha_i + g_i)``, a sample from ``alpha`` whatever the temperature,
    and the backward pass is the gradient of ``soft``. ``hard=False``: ``soft`` itself
    (eq. 9), whose weights spread over the components as the temperature grows. The
    same estimators as ``torch.nn.functional.gumbel_softmax``, written for dim 0
    (which that function's softmax over a short last dim makes ~10x slower here) and
    with the uniform-to-Gumbel transform of eq. 8 (``exponential_`` is slower still on
    CPU).
    """
    u = torch.rand_like(log_alpha).clamp_min_(torch.finfo(log_alpha.dtype).tiny)
    gumbel = -torch.log(-torch.log(u))
    soft = torch.softmax((log_alpha + gumbel) / temperature, dim=0)
    if not hard:
        return soft
    return _one_hot_argmax(soft) - soft.detach() + soft


def _mixture_quantile(
    alpha: torch.Tensor,
    logit: torch.Tensor,
    mu: torch.Tensor,
    sigma: torch.Tensor,
    q: torch.Tensor,
) -> torch.Tensor:
    """Quantiles ``(n, Q)`` of ``sum_i alpha_i ZILN(p_i, mu_i, sigma_i)`` (all ``(n, L)``).

    The CDF at ``x > 0`` is ``sum_i alpha_i (1 - p_i + p_i Phi((log x - mu_i) / sigma_i))``.
    Where ``q`` is at most the mixture's mass at zero the quantile is 0; elsewhere it is
    found by bisection on ``log x``, between the smallest and largest of the components' own
    quantiles at level ``q`` (the mixture CDF lies between the components' CDFs there).
    """
    p = torch.sigmoid(logit)[:, :, None]  # (n, L, 1)
    a, m, s = alpha[:, :, None], mu[:, :, None], sigma[:, :, None]
    qq = q[None, None, :]
    zero_mass = (a * (1.0 - p)).sum(dim=1)  # (n, 1)
    # per-component quantiles at each level: (n, L, Q), 0 where the level falls in the zero part
    comp = ziln_quantile(logit[:, :, None], m, s, qq)
    positive = comp > 0
    tiny = torch.finfo(torch.float64).tiny
    # bracket in log space; components at 0 give no lower bound, so fall back to the
    # smallest plausible log value (6 sigma below the lowest location)
    floor = (m - 6.0 * s).amin(dim=1)  # (n, 1)
    log_comp = torch.log(comp.clamp_min(tiny))
    lo = torch.where(positive, log_comp, torch.full_like(log_comp, math.inf)).amin(dim=1)
    lo = torch.minimum(torch.where(torch.isfinite(lo), lo, floor), floor.expand_as(lo))
    hi = torch.where(positive, log_comp, torch.full_like(log_comp, -math.inf)).amax(dim=1)
    hi = torch.where(torch.isfinite(hi), hi, (m + 6.0 * s).amax(dim=1).expand_as(hi))
    target = q[None, :]
    for _ in range(_QUANTILE_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        z = (mid[:, None, :] - m) / s
        cdf = (a * (1.0 - p + p * torch.special.ndtr(z))).sum(dim=1)
        below = cdf < target
        lo = torch.where(below, mid, lo)
        hi = torch.where(below, hi, mid)
    result = torch.exp(hi)
    return torch.where(target > zero_mass, result, torch.zeros_like(result))
