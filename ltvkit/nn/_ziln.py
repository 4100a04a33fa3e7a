"""ZILN: the zero-inflated lognormal network of Wang, Liu & Miao (2019).

The network outputs, per customer, the logit of ``p = P(y > 0)`` and the location
``mu`` and scale ``sigma`` of ``log(y) | y > 0``. It is trained with the ZILN loss of
the reference implementation (google/lifetime_value) and predicts the mean
``p * exp(mu + sigma**2 / 2)``. ltvkit bounds ``sigma`` and ``mu`` so the mean stays
finite and sensible on heavy-tailed data (see ``docs/models/ziln.md``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from ltvkit._utils import Real, check_quantile_levels
from ltvkit.nn._base import BaseDeepRegressor, PreparedTargets
from ltvkit.nn._encoder import EncodedSpec
from ltvkit.nn._layers import SharedBottom
from ltvkit.nn._losses import (
    ZILNLabelStats,
    bounded_mu,
    bounded_sigma,
    inverse_bounded_sigma,
    ziln_log_mean,
    ziln_nll,
    ziln_quantile,
)

__all__ = ["ZILNLoss", "ZILNModule", "ZILNRegressor"]

# mu (the log of a customer's median positive spend) is kept within
# [log(min y+) - 1, log(max y+)] of the positive training labels (ZILNLabelStats): below,
# a margin of a factor e = 2.7 is harmless; above, no customer's median spend may exceed
# the largest spend seen in training, so predict <= max(y) * exp(sigma_max**2 / 2).


class ZILNModule(nn.Module):
    """Shared bottom MLP + a linear head with three outputs: ``(logit, mu, sigma)``.

    Parameters
    ----------
    bottom : SharedBottom
        Produces the representation ``h``.
    mu_low, mu_high : float
        Bounds of ``mu`` (smooth, see :func:`~ltvkit.nn._losses.bounded_mu`).
    sigma_max : float
        Upper bound of ``sigma`` (smooth, see :func:`~ltvkit.nn._losses.bounded_sigma`).
    init_logit, init_mu, init_sigma : float, default=0, None, 1
        Starting values of the three outputs (head biases), e.g. the training
        positive rate and the mean and standard deviation of ``log(y) | y > 0``, so
        training starts from the marginal distribution instead of from an arbitrary
        one.

    Examples
    --------
    >>> from ltvkit.nn._encoder import EncodedSpec
    >>> spec = EncodedSpec(3, (), (), ("a", "b", "c"), ())
    >>> module = ZILNModule(SharedBottom(spec, (8,)), mu_low=-1.0, mu_high=5.0, sigma_max=2.0)
    >>> logit, mu, sigma = module(torch.zeros(4, 3), torch.zeros(4, 0, dtype=torch.long))
    >>> logit.shape, bool((sigma <= 2.0).all())
    (torch.Size([4]), True)
    """

    def __init__(
        self,
        bottom: SharedBottom,
        *,
        mu_low: float,
        mu_high: float,
        sigma_max: float,
        init_logit: float = 0.0,
        init_mu: float | None = None,
        init_sigma: float = 1.0,
    ) -> None:
        super().__init__()
        self.bottom = bottom
        self.head = nn.Linear(bottom.out_features, 3)
        self.mu_center = 0.5 * (mu_low + mu_high)
        self.mu_half_width = max(0.5 * (mu_high - mu_low), 1e-3)
        self.sigma_max = float(sigma_max)
        init_mu = self.mu_center if init_mu is None else init_mu
        rel = (init_mu - self.mu_center) / self.mu_half_width
        with torch.no_grad():
            self.head.bias.copy_(
                torch.tensor(
                    [
                        init_logit,
                        self.mu_half_width * math.atanh(min(max(rel, -0.99), 0.99)),
                        inverse_bounded_sigma(init_sigma, self.sigma_max),
                    ]
                )
            )

    def forward(
        self, x_num: torch.Tensor, x_cat: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.head(self.bottom(x_num, x_cat))
        logit = out[:, 0]
        mu = bounded_mu(out[:, 1], self.mu_center, self.mu_half_width)
        sigma = bounded_sigma(out[:, 2], self.sigma_max)
        return logit, mu, sigma


class ZILNLoss(nn.Module):
    """Per-sample ZILN loss on the ``(logit, mu, sigma)`` output of :class:`ZILNModule`.

    ``BCE(logit, 1[y > 0]) + 1[y > 0] * (-log LogNormal(y; mu, sigma))``; the mean over
    a batch equals google/lifetime_value's ``zero_inflated_lognormal_loss``.

    Examples
    --------
    >>> output = (torch.zeros(2), torch.zeros(2), torch.ones(2))
    >>> ZILNLoss()(output, torch.tensor([0.0, 1.0])).shape
    torch.Size([2])
    """

    def forward(
        self, output: tuple[torch.Tensor, torch.Tensor, torch.Tensor], target: torch.Tensor
    ) -> torch.Tensor:
        logit, mu, sigma = output
        return ziln_nll(target, logit, mu, sigma)


class ZILNRegressor(BaseDeepRegressor):
    """Zero-inflated lognormal neural network for customer lifetime value.

    Wang, Liu & Miao (2019), "A Deep Probabilistic Model for Customer Lifetime Value
    Prediction". An MLP maps the customer's features to ``P(y > 0)`` and the
    lognormal ``(mu, sigma)`` of positive spend; the loss is the ZILN negative
    log-likelihood of the reference implementation; ``predict`` returns the mean
    ``p * exp(mu + sigma**2 / 2)`` (computed in log space).

    Parameters
    ----------
    sigma_max : float, default=2.0
        Upper bound of ``sigma``. The lognormal mean multiplies the median by
        ``exp(sigma**2 / 2)``, which explodes for large ``sigma`` (an unbounded ZILN
        predicted ~1e27 on UCI Online Retail); 2.0 caps the factor at ``e**2 = 7.4``
        and is above the scale of log-spend seen on every bundled dataset. ``mu`` is
        also kept within ``[log(min y+) - 1, log(max y+)]`` of the positive training
        labels, so no prediction exceeds ``max(y) * exp(sigma_max**2 / 2)``.
    hidden_units : tuple of int, default=(64, 32)
        Widths of the shared bottom MLP (the reference DNN's ``Dense(64) -> Dense(32)``).
    {shared_params}

    Attributes
    ----------
    net_ : skorch NeuralNet
        Trained net; ``net_.history`` holds the loss curves.
    encoder_ : TabularEncoder
    n_iter_ : int
    best_epoch_ : int
    positive_rate_ : float
        Share of training customers with ``y > 0``.
    log_y_range_ : tuple of float
        ``(min, max)`` of ``log(y)`` over positive training labels.

    Examples
    --------
    >>> import numpy as np
    >>> from ltvkit.nn import ZILNRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3))
    >>> y = (rng.random(500) < 0.4) * np.exp(1 + X[:, 0] + 0.5 * rng.normal(size=500))
    >>> model = ZILNRegressor(max_epochs=5, random_state=0).fit(X, y)
    >>> model.predict(X[:2]).shape
    (2,)
    >>> list(model.predict_params(X[:2]))
    ['p', 'mu', 'sigma']
    """

    def __init__(
        self,
        *,
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
        "sigma_max": [Real(0.01, None, closed="neither")],
    }

    # -- hooks ------------------------------------------------------------------------
    def _prepare_targets(self, y: np.ndarray, sample_weight: np.ndarray | None) -> PreparedTargets:
        # starting values and mu bounds of the head (shared with OptDist)
        stats = ZILNLabelStats.from_labels(y, sample_weight)
        self.positive_rate_ = stats.positive_rate
        self.log_y_range_ = stats.log_range
        return PreparedTargets(y, info=stats)

    def _build_module(self, spec: EncodedSpec, info: ZILNLabelStats) -> ZILNModule:
        return ZILNModule(self._make_bottom(spec), **info.head_init(float(self.sigma_max)))

    def _build_criterion(self, info: ZILNLabelStats) -> ZILNLoss:
        return ZILNLoss()

    def _output_to_prediction(self, output: tuple[torch.Tensor, ...]) -> torch.Tensor:
        logit, mu, sigma = (t.double() for t in output)
        return torch.exp(ziln_log_mean(logit, mu, sigma))

    # -- public API -------------------------------------------------------------------
    def predict_nonzero_proba(self, X: object) -> np.ndarray:
        """Probability that each customer spends anything, ``p = P(y > 0 | x)``.

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
        >>> p = ZILNRegressor(max_epochs=2, random_state=0).fit(X, y).predict_nonzero_proba(X)
        >>> bool(((p > 0) & (p < 1)).all())
        True
        """
        return self._forward_outputs(X, lambda out: torch.sigmoid(out[0].double()))

    def predict_params(self, X: object) -> dict[str, np.ndarray]:
        """The fitted distribution of each customer: ``p``, ``mu`` and ``sigma``.

        ``y = 0`` with probability ``1 - p``, else ``log(y) ~ Normal(mu, sigma)``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        dict of str to ndarray of shape (n_samples,)
            ``"p"``, ``"mu"``, ``"sigma"`` (``pd.DataFrame(params, index=X.index)``
            makes a table of it).

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(40.0).reshape(-1, 1); y = np.r_[np.zeros(20), np.ones(20)]
        >>> params = ZILNRegressor(max_epochs=2, random_state=0).fit(X, y).predict_params(X)
        >>> sorted(params), params["mu"].shape
        (['mu', 'p', 'sigma'], (40,))
        """
        p, mu, sigma = self._forward_outputs(
            X, lambda out: (torch.sigmoid(out[0].double()), out[1].double(), out[2].double())
        )
        return {"p": p, "mu": mu, "sigma": sigma}

    def predict_quantiles(self, X: object, quantiles: float | Sequence[float]) -> np.ndarray:
        """Exact quantiles of each customer's zero-inflated lognormal.

        ``Q(q) = 0`` if ``q <= 1 - p``, else ``exp(mu + sigma * Phi^-1((q - 1 + p) / p))``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        quantiles : float or sequence of float in [0, 1)
            Level 1 is refused (``ValueError``): the lognormal has no finite top.

        Returns
        -------
        ndarray of shape (n_samples,) for a float, (n_samples, n_quantiles) otherwise

        Examples
        --------
        >>> import numpy as np
        >>> X = np.arange(40.0).reshape(-1, 1); y = np.r_[np.zeros(20), np.ones(20)]
        >>> model = ZILNRegressor(max_epochs=2, random_state=0).fit(X, y)
        >>> model.predict_quantiles(X, [0.1, 0.5, 0.9]).shape
        (40, 3)
        """
        scalar, q = check_quantile_levels(quantiles)
        if (q == 1.0).any():
            raise ValueError(
                "ltvkit: ZILNRegressor: the lognormal is unbounded, so level 1 of quantiles "
                "has no finite value; ask for a level below 1 (e.g. 0.999)."
            )
        q_t = torch.from_numpy(q)

        def quantile_fn(out: tuple[torch.Tensor, ...]) -> torch.Tensor:
            logit, mu, sigma = (t.double()[:, None] for t in out)
            return ziln_quantile(logit, mu, sigma, q_t[None, :])

        result = self._forward_outputs(X, quantile_fn)
        return result[:, 0] if scalar else result
