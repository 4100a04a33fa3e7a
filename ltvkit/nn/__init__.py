"""Deep LTV models on a shared skorch-based estimator (``docs/nn.md``).

Importing this package imports torch and skorch; ``import ltvkit`` alone does not.

Examples
--------
>>> from ltvkit.nn import ZILNRegressor
>>> ZILNRegressor(hidden_units=(32,), random_state=0).get_params()["hidden_units"]
(32,)
"""

from ltvkit.nn._base import SHARED_PARAMS, BaseDeepRegressor, LTVNeuralNet, TensorDictDataset
from ltvkit.nn._encoder import EncodedSpec, TabularEncoder, embedding_dim_rule
from ltvkit.nn._layers import MLP, MLPBank, SharedBottom, TabularEmbedding
from ltvkit.nn._losses import (
    lognormal_log_mean,
    lognormal_nll,
    ziln_log_mean,
    ziln_mean,
    ziln_nll,
    ziln_quantile,
)
from ltvkit.nn.ziln import ZILNLoss, ZILNModule, ZILNRegressor

__all__ = [
    "MLP",
    "SHARED_PARAMS",
    "BaseDeepRegressor",
    "EncodedSpec",
    "LTVNeuralNet",
    "MLPBank",
    "SharedBottom",
    "TabularEmbedding",
    "TabularEncoder",
    "TensorDictDataset",
    "ZILNLoss",
    "ZILNModule",
    "ZILNRegressor",
    "embedding_dim_rule",
    "lognormal_log_mean",
    "lognormal_nll",
    "ziln_log_mean",
    "ziln_mean",
    "ziln_nll",
    "ziln_quantile",
]
