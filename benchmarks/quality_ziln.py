"""Quality of ZILNRegressor on CDNOW and UCI Online Retail, next to the spend baseline.

``OMP_NUM_THREADS=1 python benchmarks/run_study.py ziln [--seeds N]`` (seeds 0..4 by
default; ``python benchmarks/quality_ziln.py`` runs the same). Default hyperparameters,
ltvkit's fixed 70/30 split, one fit per ``random_state``; normalized Gini, Spearman,
decile MAPE, NMAE and AMBE on the test split as mean ± sd over seeds, next to the
calibration-spend baseline (``CalibrationSpendBaseline``: rank by past spend, rescaled to
the training mean). Protocol and output: ``benchmarks/_study.py``.
"""

from __future__ import annotations

import sys

from _study import Study, Table, Variant

from ltvkit.nn import ZILNRegressor


def epochs(s):
    return {"epochs": s.model.n_iter_}


STUDY = Study(
    name="ziln",
    title="ZILNRegressor on CDNOW and Online Retail",
    seeds=5,
    tables=(
        Table(
            name="quality",
            title="ZILN vs the calibration-spend baseline",
            datasets=("cdnow", "online_retail"),
            variants={"ZILN": Variant(ZILNRegressor)},
            metrics=("normalized_gini", "spearman", "decile_mape", "nmae", "ambe"),
            baseline=True,
            extras=(epochs,),
            timing=True,
            transpose=True,
        ),
    ),
)

if __name__ == "__main__":
    from run_study import main

    sys.exit(main(name="ziln"))
