"""TwoStageRegressor on Dask with early stopping (XGBoost) against in memory and none.

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/quality_dask_early_stopping.py

``make_ltv`` data: 3,000 training rows (4 dask partitions on a ``LocalCluster`` of 2
workers with one thread each) and 2,000 new rows to score. ``TwoStageRegressor`` with
600 rounds at learning rate 0.3 (enough to overfit), ``patience=5``, ``random_state=0``,
fitted

- on Dask with ``early_stopping=True`` (held-out rows: a hash of partition and row);
- in memory with ``early_stopping=True`` (held-out rows: a stratified split);
- on Dask without early stopping (all 600 rounds);

and reported as the rounds each stage kept and the normalized Gini on the new rows.
"""

from __future__ import annotations

import warnings


def main() -> None:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    from ltvkit.boosting import TwoStageRegressor
    from ltvkit.datasets import make_ltv
    from ltvkit.metrics import normalized_gini

    X, y = make_ltv(n_samples=3000, random_state=0)
    X_new, y_new = make_ltv(n_samples=2000, random_state=1)
    params = dict(n_estimators=600, learning_rate=0.3, patience=5, n_jobs=1, random_state=0)
    warnings.simplefilter("ignore", UserWarning)  # lightgbm/dask chatter, not results
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        frame = dd.from_pandas(X.assign(ltv=y), npartitions=4)
        Xd, yd = frame.drop(columns="ltv"), frame["ltv"]
        fits = {
            "Dask, early stopping": TwoStageRegressor(**params, early_stopping=True).fit(Xd, yd),
            "in memory, early stopping": TwoStageRegressor(**params, early_stopping=True).fit(
                X, y
            ),
            "Dask, 600 rounds": TwoStageRegressor(**params).fit(Xd, yd),
        }
    print("| fit | rounds kept (stage 1, stage 2) | Gini on new rows |")
    print("|---|---|---:|")
    for name, model in fits.items():
        gini = normalized_gini(y_new, model.predict(X_new))
        print(f"| {name} | {model.n_estimators_} | {gini:.3f} |")


if __name__ == "__main__":
    main()
