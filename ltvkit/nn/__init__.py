"""Deep LTV models on a shared skorch-based estimator (``docs/nn.md``).

Each model lives in a private module (``_ziln``, ``_optdist``, ``_mdme``, ``_mean``,
``_ccornet``) holding its torch module, its loss and its estimator; they are re-exported
here. Importing this package imports torch and skorch; ``import ltvkit`` alone does not.

Examples
--------
>>> from ltvkit.nn import ZILNRegressor
>>> ZILNRegressor(hidden_units=(32,), random_state=0).get_params()["hidden_units"]
(32,)
"""

import importlib

from ltvkit.nn._base import (
    SHARED_PARAMS,
    BaseDeepRegressor,
    LTVNeuralNet,
    PreparedTargets,
    TensorDictDataset,
)
from ltvkit.nn._ccornet import CCORNetLoss, CCORNetModule, CCORNetRegressor
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
from ltvkit.nn._mdme import MDMELoss, MDMEModule, MDMERegressor, ODMNRegressor
from ltvkit.nn._mean import MEANLoss, MEANModule, MEANRegressor
from ltvkit.nn._optdist import OptDistLoss, OptDistModule, OptDistRegressor
from ltvkit.nn._ziln import ZILNLoss, ZILNModule, ZILNRegressor


def __getattr__(name: str) -> object:
    # a model registered in ltvkit/_registry.py from a module of this package is
    # ltvkit.nn.<Name> too, without an import line here
    from ltvkit._registry import ESTIMATOR_LOCATIONS

    module = ESTIMATOR_LOCATIONS.get(name, "")
    if module.startswith(f"{__name__}."):
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MLP",
    "SHARED_PARAMS",
    "BaseDeepRegressor",
    "CCORNetLoss",
    "CCORNetModule",
    "CCORNetRegressor",
    "EncodedSpec",
    "LTVNeuralNet",
    "MDMELoss",
    "MDMEModule",
    "MDMERegressor",
    "MEANLoss",
    "MEANModule",
    "MEANRegressor",
    "MLPBank",
    "ODMNRegressor",
    "OptDistLoss",
    "OptDistModule",
    "OptDistRegressor",
    "PreparedTargets",
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
