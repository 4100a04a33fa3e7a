"""HybridRegressor: boosted trees and a ZILN network combined (issue 21).

Two ways of combining them, chosen by ``combine`` (measured in ``docs/models/hybrid.md``):

- ``"mixture"``: a mixture, in distribution space, of the two-stage booster's predictive
  distribution and the ZILN network's; the booster's share is learned out of fold by
  maximum likelihood. The mean is the same mixture of the two means.
- ``"stack"``: the booster's out-of-fold outputs (log expected value, P(y > 0)) become
  two extra input columns of the ZILN network, whose distribution is the model's.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from scipy.special import ndtr
from sklearn.base import BaseEstimator
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ltvkit._utils import Instance, Int, Options, Real, Units, check_quantile_levels
from ltvkit.base import (
    DataQualityWarning,
    LTVRegressorMixin,
    check_predictions,
    zero_inflated_quantiles,
)
from ltvkit.boosting import TwoStageRegressor
from ltvkit.nn._ziln import ZILNRegressor

__all__ = ["HybridRegressor"]

_COMBINE = ("mixture", "stack")
# Cross-fitting below this many rows is noise: the share falls back to 1/2 and the
# stacked features to the booster's in-sample outputs.
_MIN_CROSS_FIT_ROWS = 200
# Grid of the booster's share in the mixture (a 1-D likelihood, so a grid is exact enough).
_SHARE_GRID = np.linspace(0.0, 1.0, 101)
# Bisection steps of the mixture quantiles in log-spend (the bracket is < 2**8 wide).
_BISECTION_STEPS = 80
_P_CLIP = 1e-9


def _take(a: np.ndarray | None, idx: np.ndarray) -> np.ndarray | None:
    """``a[idx]``, or None for no sample weights."""
    return None if a is None else a[idx]


def _lognormal_logpdf(log_y: np.ndarray, mu: np.ndarray, sigma: np.ndarray | float) -> np.ndarray:
    """Log density of ``log(y)`` under Normal(mu, sigma) (the 1/y Jacobian is left out)."""
    z = (log_y - mu) / sigma
    return -0.5 * z * z - np.log(sigma) - 0.5 * math.log(2 * math.pi)


def _zero_inflated_loglik(
    y: np.ndarray, p: np.ndarray, mu: np.ndarray, sigma: np.ndarray | float
) -> np.ndarray:
    """Per-row log likelihood of a zero-inflated lognormal (without the 1/y Jacobian)."""
    p = np.clip(p, _P_CLIP, 1 - _P_CLIP)
    pos = y > 0
    out = np.log1p(-p)
    log_y = np.log(np.where(pos, y, 1.0))
    sig = np.broadcast_to(sigma, y.shape)
    out[pos] = np.log(p[pos]) + _lognormal_logpdf(log_y[pos], mu[pos], sig[pos])
    return out


class HybridRegressor(LTVRegressorMixin, BaseEstimator):
    """Boosted trees plus a ZILN network: a mixture of their distributions, or a stack.

    Fits a :class:`~ltvkit.boosting.TwoStageRegressor` (XGBoost hurdle model) and a
    :class:`~ltvkit.nn.ZILNRegressor` (zero-inflated lognormal network) and combines
    them (``combine``):

    - ``"mixture"`` (default): the predictive distribution is ``s * D_trees + (1 - s) *
      D_net``. ``D_net`` is the network's ZILN; ``D_trees`` is the booster's: its
      ``P(y > 0)`` and a lognormal spend whose mean is the booster's
      E[y | y > 0, x] and whose log-scale spread is that of its cross-fitted residuals.
      The share ``s`` is ``tree_share`` (1/2 by default); ``tree_share=None`` learns it
      by maximizing the likelihood of out-of-fold predictions (``n_folds`` folds of
      the training rows). ``predict`` is the mixture's mean ``s * trees.predict +
      (1 - s) * net.predict``.
    - ``"stack"``: the booster's out-of-fold ``log1p`` expected value and ``P(y > 0)``
      are two more inputs of the network, whose ZILN is the predictive distribution.

    Parameters
    ----------
    combine : {"mixture", "stack"}, default="mixture"
        How the two models are combined (see above; measured in
        ``docs/models/hybrid.md``).
    tree_share : float in [0, 1] or None, default=0.5
        The booster's share ``s`` (``"stack"`` ignores it). None learns it out of fold
        by maximum likelihood (a fit of both models per fold: 2-3 times the cost of a
        fixed share, and no better on the three measured tables, see
        ``docs/models/hybrid.md``; so the default is an equal mixture).
    n_networks : int, default=1
        Networks in a bag (seeds differ); the network component is their equal
        mixture. The out-of-fold share is learned with one network per fold. A bag of
        3 did not measurably help (``docs/models/hybrid.md``).
    bias_correction : {"balance", "none"}, default="none"
        ``"balance"`` scales each network's distribution by ``c = sum(w y) / sum(w
        net.predict)`` over the training rows (``mu + log c``), so its predicted
        training total equals the observed one, as the booster's does. It made the
        decile MAPE worse on all three measured tables, so it is off by default.
    n_folds : int, default=2
        Folds of the cross-fitting (stratified on ``y > 0``); below 200 rows there is
        none (``s = 1/2``, in-sample stacked features).
    n_estimators : int, default=200
        Boosting rounds of each booster stage (``TwoStageRegressor``).
    max_depth : int, default=3
        Tree depth of the booster.
    hidden_units : tuple of int, default=(64, 32)
        Widths of the network's shared bottom (``ZILNRegressor``).
    max_epochs : int, default=100
        Upper bound on the network's epochs (early stopping on 10% of the rows).
    batch_size : int, default=1024
        The network's batch size.
    learning_rate : float, default=1e-3
        The network's learning rate (the booster keeps its 0.05).
    sigma_max : float, default=2.0
        Upper bound of both lognormal scales (the network's and the booster's).
    precision : {"float32", "float64"}, default="float32"
        The network's floating-point type.
    n_jobs : int or None, default=None
        Threads of the booster.
    random_state : int, RandomState or None, default=None
        Seeds the folds and both models; an int gives identical predictions.

    Attributes
    ----------
    trees_ : TwoStageRegressor
        The booster fitted on all rows.
    net_models_ : list of ZILNRegressor
        The networks fitted on all rows (on the augmented columns for ``"stack"``).
    net_log_factors_ : list of float
        ``log c`` of each network's balance correction.
    tree_share_ : float
        The booster's share ``s`` (``"mixture"``).
    tree_sigma_ : float
        Log-scale spread of the booster's spend distribution (``"mixture"``).
    share_loglik_ : ndarray or None
        Out-of-fold mean log likelihood at each share of ``share_grid_`` (None when
        the share was not learned).

    Examples
    --------
    >>> from ltvkit import HybridRegressor
    >>> from ltvkit.datasets import make_ltv
    >>> X, y = make_ltv(n_samples=400, random_state=0)
    >>> model = HybridRegressor(n_estimators=20, max_epochs=5, random_state=0).fit(X, y)
    >>> model.predict(X[:2]).shape, model.tree_share_
    ((2,), 0.5)
    >>> model.predict_quantiles(X[:2], [0.5, 0.9]).shape
    (2, 2)
    """

    def __init__(
        self,
        *,
        combine: str = "mixture",
        tree_share: float | None = 0.5,
        n_folds: int = 2,
        n_networks: int = 1,
        bias_correction: str = "none",
        n_estimators: int = 200,
        max_depth: int = 3,
        hidden_units: Sequence[int] = (64, 32),
        max_epochs: int = 100,
        batch_size: int = 1024,
        learning_rate: float = 1e-3,
        sigma_max: float = 2.0,
        precision: str = "float32",
        n_jobs: int | None = None,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.combine = combine
        self.tree_share = tree_share
        self.n_folds = n_folds
        self.n_networks = n_networks
        self.bias_correction = bias_correction
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.hidden_units = hidden_units
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.sigma_max = sigma_max
        self.precision = precision
        self.n_jobs = n_jobs
        self.random_state = random_state

    _parameter_constraints: ClassVar[dict[str, list]] = {
        "combine": [Options(*_COMBINE)],
        "tree_share": [Real(0.0, 1.0, closed="both"), None],
        "n_folds": [Int(2)],
        "n_networks": [Int(1)],
        "bias_correction": [Options("balance", "none")],
        "n_estimators": [Int(1)],
        "max_depth": [Int(1)],
        "hidden_units": [Units()],
        "max_epochs": [Int(1)],
        "batch_size": [Int(1)],
        "learning_rate": [Real(0.0, None, closed="neither")],
        "sigma_max": [Real(0.01, None, closed="neither")],
        "precision": [Options("float32", "float64")],
        "n_jobs": [Int(), None],
        "random_state": [Int(), Instance(np.random.RandomState), None],
    }

    # -- the two parts ----------------------------------------------------------------
    def _make_trees(self, seed: int, *, residuals: bool) -> TwoStageRegressor:
        return TwoStageRegressor(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            quantile_cv=2 if residuals else None,
            n_jobs=self.n_jobs,
            random_state=seed,
        )

    def _make_net(self, seed: int) -> ZILNRegressor:
        return ZILNRegressor(
            hidden_units=self.hidden_units,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            sigma_max=self.sigma_max,
            precision=self.precision,
            random_state=seed,
        )

    @staticmethod
    def _columns(frame: pd.DataFrame) -> pd.DataFrame:
        """The validated frame with positional string names (the parts' input)."""
        out = frame.copy(deep=False)
        out.columns = [f"x{i}" for i in range(frame.shape[1])]
        return out

    @staticmethod
    def _stacked(frame: pd.DataFrame, trees: TwoStageRegressor) -> pd.DataFrame:
        """``frame`` plus the booster's log1p expected value and P(y > 0)."""
        out = frame.copy(deep=False)
        out["tree_log_value"] = np.log1p(trees.predict(frame))
        out["tree_nonzero_proba"] = trees.predict_nonzero_proba(frame)
        return out

    def _folds(self, y: np.ndarray, sw: np.ndarray | None, seed: int) -> list | None:
        """The cross-fitting folds, or None when the rows are too few for it."""
        if len(y) < _MIN_CROSS_FIT_ROWS:
            return None
        spends = (y > 0).astype(int)
        counts = np.bincount(spends, minlength=2)
        if counts.min() >= self.n_folds:
            splitter = StratifiedKFold(n_splits=self.n_folds, shuffle=True, random_state=seed)
        else:  # every row spends (or none but a few): plain folds
            splitter = KFold(n_splits=self.n_folds, shuffle=True, random_state=seed)
        folds = list(splitter.split(np.zeros(len(y)), spends))
        weight = np.ones(len(y)) if sw is None else sw
        for train, _ in folds:  # each part fit needs a weighted spender
            if not (weight[train][y[train] > 0] > 0).any():
                return None
        return folds

    # -- fit --------------------------------------------------------------------------
    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        *,
        validation_data: tuple | None = None,
    ) -> HybridRegressor:
        """Fit the booster and the network (cross-fitted, then on all rows).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Numeric and categorical features; NaN allowed.
        y : array-like of shape (n_samples,)
            Non-negative customer value with at least one positive entry.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Row weights of both models and of the share's likelihood.
        validation_data : tuple (X_val, y_val[, sample_weight_val]) or None, default=None
            The network's early-stopping rows instead of 10% of ``X`` (the final fit).

        Returns
        -------
        self : HybridRegressor
        """
        self._validate_params()
        frame, y_arr, sw = self._validate_fit_input(X, y, sample_weight)
        valid = self._validate_validation_data(validation_data, y_arr)
        rng = check_random_state(self.random_state)
        fold_seed, tree_seed, net_seed = (int(s) for s in rng.randint(0, 2**31 - 1, size=3))
        frame = self._columns(frame)
        valid_frame = None if valid is None else (self._columns(valid[0]), *valid[1:])
        folds = self._folds(y_arr, sw, fold_seed)

        with warnings.catch_warnings():
            # the hybrid's own validation already warned about suspicious columns
            warnings.simplefilter("ignore", DataQualityWarning)
            if self.combine == "stack":
                self._fit_stack(frame, y_arr, sw, valid_frame, folds, tree_seed, net_seed)
            else:
                self._fit_mixture(frame, y_arr, sw, valid_frame, folds, tree_seed, net_seed)
        return self

    def _fit_nets(self, frame, y, sw, valid, net_seed) -> None:
        """The bag of ``n_networks`` networks, fitted on all rows with their own seeds."""
        self.net_models_ = [
            self._make_net(net_seed + 7919 * j).fit(frame, y, sw, validation_data=valid)
            for j in range(self.n_networks)
        ]
        self.net_log_factors_ = [self._log_factor(net, frame, y, sw) for net in self.net_models_]

    def _log_factor(self, net, frame, y, sw) -> float:
        """``log c`` of the network's balance correction (0 for ``"none"``)."""
        if self.bias_correction == "none":
            return 0.0
        w = np.ones(len(y)) if sw is None else sw
        total = float(np.sum(w * net.predict(frame)))
        return math.log(float(np.sum(w * y)) / total) if total > 0 else 0.0

    def _fit_stack(self, frame, y, sw, valid, folds, tree_seed, net_seed) -> None:
        oof = np.zeros((len(y), 2))
        self.trees_ = self._make_trees(tree_seed, residuals=False).fit(frame, y, sw)
        if folds is None:
            aug = self._stacked(frame, self.trees_)
        else:
            for k, (train, test) in enumerate(folds):
                part = self._make_trees(tree_seed + k + 1, residuals=False)
                part.fit(frame.iloc[train], y[train], _take(sw, train))
                rows = frame.iloc[test]
                oof[test, 0] = np.log1p(part.predict(rows))
                oof[test, 1] = part.predict_nonzero_proba(rows)
            aug = frame.copy(deep=False)
            aug["tree_log_value"], aug["tree_nonzero_proba"] = oof[:, 0], oof[:, 1]
        val = None if valid is None else (self._stacked(valid[0], self.trees_), *valid[1:])
        self._fit_nets(aug, y, sw, val, net_seed)
        self.tree_share_ = 0.0
        self.tree_sigma_ = float("nan")
        self.share_loglik_ = None

    def _fit_mixture(self, frame, y, sw, valid, folds, tree_seed, net_seed) -> None:
        self.trees_ = self._make_trees(tree_seed, residuals=True).fit(frame, y, sw)
        self._fit_nets(frame, y, sw, valid, net_seed)
        # the booster's spend spread: its cross-fitted residuals' standard deviation
        grid = (np.arange(1, 1000) - 0.5) / 999
        self.tree_sigma_ = float(
            np.clip(np.std(self.trees_.spend_residuals_.quantile(grid)), 0.05, self.sigma_max)
        )
        self.share_loglik_ = None
        if self.tree_share is not None:
            self.tree_share_ = float(self.tree_share)
            return
        if folds is None:
            self.tree_share_ = 0.5
            return
        # the share between the booster and one network, by out-of-fold likelihood
        n = len(y)
        p_t, v_t, p_z, mu_z, sig_z = (np.zeros(n) for _ in range(5))
        for k, (train, test) in enumerate(folds):
            rows = frame.iloc[test]
            trees = self._make_trees(tree_seed + k + 1, residuals=False)
            trees.fit(frame.iloc[train], y[train], _take(sw, train))
            p_t[test] = trees.predict_nonzero_proba(rows)
            v_t[test] = trees.predict_positive_value(rows)
            net = self._make_net(net_seed + k + 1).fit(
                frame.iloc[train], y[train], _take(sw, train)
            )
            params = net.predict_params(rows)
            log_c = self._log_factor(net, frame.iloc[train], y[train], _take(sw, train))
            p_z[test], mu_z[test] = params["p"], params["mu"] + log_c
            sig_z[test] = params["sigma"]
        mu_t = np.log(np.maximum(v_t, np.finfo(float).tiny)) - 0.5 * self.tree_sigma_**2
        ll_t = _zero_inflated_loglik(y, p_t, mu_t, self.tree_sigma_)
        ll_z = _zero_inflated_loglik(y, p_z, mu_z, sig_z)
        w = np.ones(n) if sw is None else sw
        with np.errstate(divide="ignore"):
            mix = np.logaddexp(
                np.log(_SHARE_GRID)[:, None] + ll_t[None, :],
                np.log1p(-_SHARE_GRID)[:, None] + ll_z[None, :],
            )
        self.share_loglik_ = (mix * w).sum(axis=1) / w.sum()
        self.share_grid_ = _SHARE_GRID.copy()
        self.tree_share_ = float(_SHARE_GRID[int(np.argmax(self.share_loglik_))])

    # -- predictions --------------------------------------------------------------------
    def _components(self, X: Any) -> list[tuple[float, dict[str, np.ndarray]]]:
        """``(weight, {"p", "mu", "sigma", "mean"})`` of every mixture component."""
        check_is_fitted(self, "net_models_")
        frame = self._columns(self._validate_predict_input(X))
        out = []
        s = self.tree_share_
        if self.combine == "stack":
            frame = self._stacked(frame, self.trees_)
        elif s > 0:
            p_t = self.trees_.predict_nonzero_proba(frame)
            v_t = self.trees_.predict_positive_value(frame)
            mu_t = np.log(np.maximum(v_t, np.finfo(float).tiny)) - 0.5 * self.tree_sigma_**2
            sigma_t = np.full(len(frame), self.tree_sigma_)
            out.append((s, {"p": p_t, "mu": mu_t, "sigma": sigma_t, "mean": p_t * v_t}))
        if s < 1:
            for net, log_c in zip(self.net_models_, self.net_log_factors_, strict=True):
                # the balance correction scales the lognormal: mu + log c, mean * c
                params = net.predict_params(frame)
                params["mu"] = params["mu"] + log_c
                params["mean"] = net.predict(frame) * math.exp(log_c)
                out.append(((1 - s) / len(self.net_models_), params))
        return out

    def predict(self, X: Any) -> np.ndarray:
        """Expected customer value E[y | x], the mean of the model's mixture.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            Finite, non-negative float64.
        """
        pred = sum(w * c["mean"] for w, c in self._components(X))
        return check_predictions(np.asarray(pred, dtype=np.float64), type(self).__name__)

    def predict_nonzero_proba(self, X: Any) -> np.ndarray:
        """Probability that each customer spends anything, P(y > 0 | x).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        p = sum(w * c["p"] for w, c in self._components(X))
        return np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)

    def predict_quantiles(self, X: Any, quantiles: float | Sequence[float]) -> np.ndarray:
        """Quantiles of each customer's value under the model's mixture distribution.

        The mixture of the components' zero-inflated lognormals, inverted by bisection
        on its CDF in log-spend; the point mass at zero is exact. Level 1 is refused
        (the lognormal is unbounded).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        quantiles : float or sequence of float in [0, 1)

        Returns
        -------
        ndarray of shape (n_samples,) for a float, (n_samples, n_quantiles) otherwise

        Examples
        --------
        >>> from ltvkit.datasets import make_ltv
        >>> X, y = make_ltv(n_samples=300, random_state=0)
        >>> model = HybridRegressor(n_estimators=20, max_epochs=5, random_state=0).fit(X, y)
        >>> q = model.predict_quantiles(X, [0.5, 0.9])
        >>> bool((q[:, 0] <= q[:, 1]).all())
        True
        """
        scalar, levels = check_quantile_levels(quantiles)
        if (levels == 1.0).any():
            raise ValueError(
                "ltvkit: HybridRegressor: the lognormal is unbounded, so level 1 of "
                "quantiles has no finite value; ask for a level below 1 (e.g. 0.999)."
            )
        comps = self._components(X)
        mass = [w * c["p"] for w, c in comps]  # each component's share of P(y > 0)
        p = np.sum(mass, axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            shares = [np.where(p > 0, m / p, 1.0 / len(comps))[:, None] for m in mass]
        mus = [c["mu"][:, None] for _, c in comps]
        sigmas = [c["sigma"][:, None] for _, c in comps]

        def positive_quantile(cond: np.ndarray) -> np.ndarray:
            # bisection on log(y): the mixture CDF of the spenders is increasing in it
            spread = 12.0 * np.max(sigmas, axis=0)
            lo = np.min(mus, axis=0) - spread + 0.0 * cond
            hi = np.max(mus, axis=0) + spread + 0.0 * cond
            for _ in range(_BISECTION_STEPS):
                mid = 0.5 * (lo + hi)
                cdf = sum(
                    a * ndtr((mid - m) / sd) for a, m, sd in zip(shares, mus, sigmas, strict=True)
                )
                below = cdf < cond
                lo = np.where(below, mid, lo)
                hi = np.where(below, hi, mid)
            return np.exp(hi)

        result = zero_inflated_quantiles(p, levels, positive_quantile)
        return result[:, 0] if scalar else result

    # -- persistence: the networks' weights as arrays (no skorch object in the state) ---
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        nets = state.get("net_models_")
        if nets is not None:
            stripped, weights, histories = [], [], []
            for net in nets:
                copy = ZILNRegressor.__new__(ZILNRegressor)
                copy.__dict__.update({k: v for k, v in net.__dict__.items() if k != "net_"})
                stripped.append(copy)
                weights.append(
                    {
                        k: t.detach().cpu().numpy().copy()
                        for k, t in net.net_.module_.state_dict().items()
                    }
                )
                histories.append(json.dumps(list(net.net_.history), default=float))
            state["net_models_"] = stripped
            state["net_weights_"] = weights
            state["net_histories_"] = histories
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        weights = state.pop("net_weights_", None)
        histories = state.pop("net_histories_", None)
        self.__dict__.update(state)
        if weights is not None:
            for net, w, h in zip(self.net_models_, weights, histories, strict=True):
                net._restore_net(
                    {k: torch.from_numpy(np.asarray(v)) for k, v in w.items()}, json.loads(h)
                )
