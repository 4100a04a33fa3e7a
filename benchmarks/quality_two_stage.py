"""Quality of TwoStageRegressor on CDNOW and UCI Online Retail (docs/models/two_stage.md).

``OMP_NUM_THREADS=1 python benchmarks/run_study.py two_stage`` (``python
benchmarks/quality_two_stage.py`` runs the same). One seed (``random_state=0``), one
thread, ltvkit's fixed 70/30 split. Tables:

- ``peers``: TwoStage (xgboost and lightgbm backends) against the Tweedie booster peer
  and the calibration-spend baseline.
- ``stage2_xgboost``, ``stage2_lightgbm``: stage-2 target and retransformation variants,
  on the test split and by 3 x 5-fold CV on the training part only (how the defaults
  were chosen).
- ``defaults_xgboost``, ``defaults_lightgbm`` (optional, ``--tables``): candidate
  default hyperparameters, by the same CV only.
"""

from __future__ import annotations

import sys

from _study import CV, Study, Table, Variant

from ltvkit.benchmark import LGBMTweedieRegressor
from ltvkit.boosting import TwoStageRegressor
from ltvkit.metrics import ambe

DATASETS = ("cdnow", "online_retail")


def relative_ambe(s):
    return {"AMBE / mean(y)": ambe(s.y_test, s.pred) / s.y_test.mean()}


def bias(s):
    return {"mean(pred) / mean(y) - 1": s.pred.mean() / s.y_test.mean() - 1.0}


def two_stage(backend, **params):
    if params.pop("tweedie", False):
        objective = "reg:tweedie" if backend == "xgboost" else "tweedie"
        params["regressor_params"] = {"objective": objective}
    return Variant(TwoStageRegressor, {"n_jobs": 1, "backend": backend, **params})


# Stage-2 target / retransformation variants (the choice of the defaults).
VARIANTS = {
    "log1p + balance (default)": {},
    "log1p + smearing (Duan)": {"bias_correction": "smearing"},
    "log1p + lognormal": {"bias_correction": "lognormal"},
    "log1p, no correction": {"bias_correction": "none"},
    "none + gamma + balance": {"target_transform": "none"},
    "none + gamma, no correction": {"target_transform": "none", "bias_correction": "none"},
    "none + tweedie + balance": {"target_transform": "none", "tweedie": True},
}
# Candidate defaults compared by cross-validation on the training part only.
CANDIDATES = {
    "depth 3, lr 0.05, 200 trees, mcw 5 (default)": {},
    "depth 3, lr 0.03, 300 trees, mcw 5": {"learning_rate": 0.03, "n_estimators": 300},
    "depth 4, lr 0.03, 200 trees, mcw 10": {
        "max_depth": 4,
        "learning_rate": 0.03,
        "min_child_weight": 10.0,
    },
    "depth 4, lr 0.05, 300 trees, mcw 5": {"max_depth": 4, "n_estimators": 300},
    "depth 6, lr 0.1, 300 trees, mcw 1": {
        "max_depth": 6,
        "learning_rate": 0.1,
        "n_estimators": 300,
        "min_child_weight": 1.0,
    },
    "default + subsample 0.8, colsample 0.8": {"subsample": 0.8, "colsample_bytree": 0.8},
    "early stopping: lr 0.05, <= 2000 trees, 50 rounds": {
        "n_estimators": 2000,
        "early_stopping": True,
        "patience": 50,
    },
}
CV_CHECK = CV(metrics=("normalized_gini", "decile_mape"), extras=(bias,))

STUDY = Study(
    name="two_stage",
    title="TwoStageRegressor on CDNOW and Online Retail",
    seeds=1,
    tables=(
        Table(
            name="peers",
            title="TwoStage against its peers",
            datasets=DATASETS,
            variants={
                "TwoStage (xgboost)": two_stage("xgboost"),
                "TwoStage (lightgbm)": two_stage("lightgbm"),
                "lgbm_tweedie": Variant(LGBMTweedieRegressor, {"n_jobs": 1}),
            },
            metrics=("normalized_gini", "spearman", "decile_mape", "nmae", "ambe", "sva"),
            baseline=True,
            extras=(relative_ambe,),
            timing=True,
            digits=3,
        ),
        *(
            Table(
                name=f"stage2_{backend}",
                title=f"Stage-2 variants, backend={backend} "
                "(test split | 3 x 5-fold CV on the training part)",
                datasets=DATASETS,
                variants={k: two_stage(backend, **v) for k, v in VARIANTS.items()},
                metrics=("normalized_gini", "decile_mape", "ambe"),
                extras=(bias,),
                cv=CV_CHECK,
                digits=3,
            )
            for backend in ("xgboost", "lightgbm")
        ),
        *(
            Table(
                name=f"defaults_{backend}",
                title=f"Candidate defaults, backend={backend} "
                "(3 x 5-fold CV on the training part)",
                datasets=DATASETS,
                variants={k: two_stage(backend, **v) for k, v in CANDIDATES.items()},
                cv=CV_CHECK,
                test_split=False,
                digits=3,
                optional=True,
            )
            for backend in ("xgboost", "lightgbm")
        ),
    ),
)

if __name__ == "__main__":
    from run_study import main

    sys.exit(main(name="two_stage"))
