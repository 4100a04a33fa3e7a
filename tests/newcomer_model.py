"""A deep model written the way ``docs/nn.md`` tells a newcomer to (a test fixture).

One file, the public ``ltvkit.nn`` API only: ``tests/test_common.py`` registers it in
``ltvkit/_registry.py``'s table and runs it through the whole estimator contract, which
proves that a new model needs nothing but its own file and the registry line.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ltvkit.base import Real
from ltvkit.nn import BaseDeepRegressor, PreparedTargets


class LogMSEModule(nn.Module):
    """Shared bottom -> (logit of P(y > 0), mean of log1p(y) | y > 0)."""

    def __init__(self, bottom: nn.Module, init_log_value: float) -> None:
        super().__init__()
        self.bottom = bottom
        self.head = nn.Linear(bottom.out_features, 2)
        with torch.no_grad():  # start from the training mean
            self.head.bias[1] = init_log_value

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        return self.head(self.bottom(x_num, x_cat))


class LogMSELoss(nn.Module):
    """BCE on ``y > 0`` plus squared error of ``log1p(y)`` on the spenders, per sample."""

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pos = (target > 0).to(output.dtype)
        bce = F.binary_cross_entropy_with_logits(output[:, 0], pos, reduction="none")
        return bce + pos * (output[:, 1] - torch.log1p(target)) ** 2


class LogMSERegressor(BaseDeepRegressor):
    """P(y > 0) times a log-MSE regression of the spend (a newcomer's model).

    Parameters
    ----------
    max_log_value : float, default=50.0
        Upper bound of the predicted ``log1p`` value, so ``expm1`` stays finite.
    {shared_params}
    """

    _parameter_constraints: ClassVar[dict[str, list]] = {
        **BaseDeepRegressor._parameter_constraints,
        "max_log_value": [Real(0.0, 700.0, closed="right")],
    }

    def __init__(
        self,
        *,
        max_log_value=50.0,
        hidden_units=(32,),
        dropout=0.0,
        embedding_dim=None,
        log_transform="auto",
        min_category_frequency=5,
        batch_size=64,
        max_epochs=30,
        learning_rate=1e-2,
        weight_decay=0.0,
        optimizer="adam",
        learning_rate_schedule="cosine",
        early_stopping=True,
        validation_fraction=0.1,
        patience=10,
        gradient_clip=None,
        random_state=None,
        verbose=0,
        callbacks=None,
        device="cpu",
        precision="float32",
    ):
        self._store_params(locals())

    def _prepare_targets(self, y, sample_weight):
        w = np.ones_like(y) if sample_weight is None else sample_weight
        init = float(np.average(np.log1p(y[y > 0]), weights=w[y > 0]))
        return PreparedTargets(y, info=init)

    def _build_module(self, spec, info):
        return LogMSEModule(self._make_bottom(spec), init_log_value=info)

    def _build_criterion(self, info):
        return LogMSELoss()

    def _output_to_prediction(self, output):
        out = output.double()
        value = torch.expm1(out[:, 1].clamp(0.0, float(self.max_log_value)))
        return torch.sigmoid(out[:, 0]) * value

    def predict_nonzero_proba(self, X):
        """P(y > 0 | x)."""
        return self._forward_outputs(X, lambda out: torch.sigmoid(out[:, 0].double()))
