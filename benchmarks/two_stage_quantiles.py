"""TwoStageRegressor's predictive distribution: the candidates and how they were chosen.

Run from the repository root (about 3 minutes on one core)::

    OMP_NUM_THREADS=1 python benchmarks/two_stage_quantiles.py

Every candidate keeps stage 1's exact point mass at zero, ``P(y = 0 | x) = 1 - p(x)``,
and models the spend of a customer who spends at the conditional level
``(tau - 1 + p) / p``; ``predict`` is the same for all (but the held-out one). They differ
in the spend's distribution:

- **in-sample residuals** (``quantile_cv=None``): the empirical distribution of
  ``log(y / m(x))`` over the training spenders, ``m = predict_positive_value``;
- **cross-fitted residuals, k folds** (``quantile_cv=k``, k = 2, 3, 5): the same, each
  spender's ``m`` from a stage-2 model fitted on the other folds;
- **cross-fitted, 3 bins of m**: one residual distribution per tercile of ``m`` (a
  scale-dependent spread);
- **cross-fitted lognormal**: a normal fit (mean, sd) of the cross-fitted log residuals,
  whose support is unbounded (level 1 has no finite quantile);
- **held-out 10%**: the model fitted on 90% of the rows, residuals on the other 10% (what
  the deep models' generic distribution does; changes ``predict``);
- **quantile booster**: an XGBoost ``reg:quantileerror`` model of ``log1p(y)`` of the
  spenders at 15 levels (0.01 ... 0.99, one multi-output booster, the stage-2 settings),
  interpolated in between.

Protocol: the fixed split ``train_test_split(X, y, test_size=0.3, random_state=0)`` of
``load_cdnow()`` and ``load_online_retail()``, defaults otherwise, ``random_state`` 0, 1,
2 (it changes the folds; the boosters are deterministic), ``n_jobs=1``. Reported on the
held-out 30%: coverage ``P(y <= q_tau)`` at 0.5, 0.9, 0.95, the 0.9 pinball loss
relative to the constant training 0.9-quantile (lower is better), and the fit time of
the model including its distribution (the in-sample one is the plain model's fit).
Mean over the seeds. Online Retail is skipped when its file is absent. Last, the fit
CPU time by ``quantile_cv`` on 100,000 rows of ``make_ltv``.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from _common import load_split
from scipy.stats import norm
from sklearn.model_selection import KFold, train_test_split

from ltvkit.base import SpendResiduals, zero_inflated_quantiles
from ltvkit.boosting import TwoStageRegressor
from ltvkit.metrics import pinball_loss, quantile_coverage

LEVELS = np.array([0.5, 0.9, 0.95])
BOOSTER_LEVELS = np.array(
    [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99]
)


def _scores(y: np.ndarray, q: np.ndarray, constant: float, fit_s: float) -> dict:
    row = {f"cov {t}": quantile_coverage(y, q[:, i]) for i, t in enumerate(LEVELS)}
    base = pinball_loss(y, np.full_like(y, constant), quantile=0.9)
    row["pinball 0.9 / constant"] = pinball_loss(y, q[:, 1], quantile=0.9) / base
    row["fit s"] = fit_s
    return row


def _oof_values(X: pd.DataFrame, y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Cross-fitted E[y | y > 0, x] of the spenders (stage 2 on the other folds)."""
    pos = np.flatnonzero(y > 0)
    value = np.empty(len(pos))
    for fit, held in KFold(folds, shuffle=True, random_state=seed).split(pos):
        model = TwoStageRegressor(n_jobs=1, random_state=seed, quantile_cv=None)
        model.fit(X.iloc[pos[fit]], y[pos[fit]])
        value[held] = model.predict_positive_value(X.iloc[pos[held]])
    return value


def evaluate(name: str, seeds: int) -> pd.DataFrame | None:
    split = load_split(name, float_train=True)
    if split is None:
        print(f"{name}: data not found, skipped")
        return None
    X_tr, X_te, y_tr, y_te = split
    constant = float(np.quantile(y_tr, 0.9))
    pos = y_tr > 0
    rows = []

    def add(candidate: str, seed: int, p, m, positive_quantile, fit_s: float) -> None:
        q = zero_inflated_quantiles(p, LEVELS, lambda v: positive_quantile(m, v))
        rows.append(dict(candidate=candidate, seed=seed, **_scores(y_te, q, constant, fit_s)))

    def residual_quantile(res: SpendResiduals):
        return lambda m, v: m[:, None] * np.exp(res.quantile(v))

    for seed in range(seeds):
        # the implementation, at three settings of quantile_cv (timed with the model)
        for cv in (None, 2, 3, 5):
            t0 = time.perf_counter()
            model = TwoStageRegressor(n_jobs=1, random_state=seed, quantile_cv=cv)
            model.fit(X_tr, y_tr)
            fit_s = time.perf_counter() - t0
            label = "in-sample residuals" if cv is None else f"cross-fitted residuals, {cv} folds"
            q = model.predict_quantiles(X_te, LEVELS)
            rows.append(dict(candidate=label, seed=seed, **_scores(y_te, q, constant, fit_s)))
        p = model.predict_nonzero_proba(X_te)
        m = model.predict_positive_value(X_te)
        base_s, oof_s = rows[-4]["fit s"], rows[-2]["fit s"]  # in-sample, 3 folds
        # variants of the 3-fold residuals: they would cost what quantile_cv=3 costs
        oof = _oof_values(X_tr, y_tr, 3, seed)
        log_r = np.log(y_tr[pos]) - np.log(oof)
        terciles = np.quantile(np.log(oof), [1 / 3, 2 / 3])
        bins = [SpendResiduals.fit(y_tr[pos][b], oof[b]) for b in _bins(np.log(oof), terciles)]

        def binned(m, v, bins=bins, terciles=terciles):
            which = np.searchsorted(terciles, np.log(np.maximum(m, 1e-300)))
            out = np.empty_like(v)
            for b, res in enumerate(bins):
                rows_b = which == b
                out[rows_b] = m[rows_b, None] * np.exp(res.quantile(v[rows_b]))
            return out

        add("cross-fitted, 3 bins of m", seed, p, m, binned, oof_s)
        mu, sd = log_r.mean(), log_r.std()
        add(
            "cross-fitted lognormal",
            seed,
            p,
            m,
            lambda m, v, mu=mu, sd=sd: (
                m[:, None] * np.exp(mu + sd * norm.ppf(np.clip(v, 1e-12, 1 - 1e-12)))
            ),
            oof_s,
        )
        # held-out 10%: the model on 90%, residuals on the rest
        t0 = time.perf_counter()
        fit_rows, held = train_test_split(
            np.arange(len(y_tr)), test_size=0.1, stratify=pos, random_state=seed
        )
        m90 = TwoStageRegressor(n_jobs=1, random_state=seed, quantile_cv=None)
        m90.fit(X_tr.iloc[fit_rows], y_tr[fit_rows])
        held = held[y_tr[held] > 0]
        res = SpendResiduals.fit(y_tr[held], m90.predict_positive_value(X_tr.iloc[held]))
        add(
            "held-out 10% (model on 90%)",
            seed,
            m90.predict_nonzero_proba(X_te),
            m90.predict_positive_value(X_te),
            residual_quantile(res),
            time.perf_counter() - t0,
        )
        # quantile booster on log1p(y) of the spenders
        from xgboost import XGBRegressor

        t0 = time.perf_counter()
        booster = XGBRegressor(
            objective="reg:quantileerror",
            quantile_alpha=BOOSTER_LEVELS,
            n_estimators=200,
            learning_rate=0.05,
            max_depth=3,
            min_child_weight=5.0,
            tree_method="hist",
            n_jobs=1,
            random_state=seed,
        ).fit(X_tr[pos], np.log1p(y_tr[pos]))
        booster_s = base_s + time.perf_counter() - t0
        table = np.sort(booster.predict(X_te), axis=1)  # crossing quantiles sorted

        def booster_quantile(m, v, table=table):
            return np.expm1(
                np.array([np.interp(v[i], BOOSTER_LEVELS, table[i]) for i in range(len(v))])
            )

        add("quantile booster (15 levels)", seed, p, m, booster_quantile, booster_s)
        print(f"{name}: seed {seed} done", flush=True)
    out = pd.DataFrame(rows).groupby("candidate", sort=False).mean(numeric_only=True)
    return out.drop(columns="seed").round(3)


def _bins(log_m: np.ndarray, edges: np.ndarray) -> list[np.ndarray]:
    which = np.searchsorted(edges, log_m)
    return [which == b for b in range(len(edges) + 1)]


def timing(n_samples: int = 100_000) -> pd.DataFrame:
    """Fit seconds (CPU) at ``n_samples`` rows of ``make_ltv`` by ``quantile_cv``."""
    from ltvkit.datasets import make_ltv

    X, y = make_ltv(n_samples=n_samples, random_state=0)
    rows = []
    for cv in (None, 2, 3, 5):
        cpu = time.process_time()
        TwoStageRegressor(n_jobs=1, random_state=0, quantile_cv=cv).fit(X, y)
        rows.append({"quantile_cv": str(cv), "fit CPU s": time.process_time() - cpu})
    out = pd.DataFrame(rows)
    out["x in-sample"] = out["fit CPU s"] / out["fit CPU s"].iloc[0]
    return out.round(2)


def main() -> None:
    for name in ("CDNOW", "Online Retail"):
        out = evaluate(name, seeds=3)
        if out is not None:
            out.index.name = name
            print(out.to_markdown())
    print("\nmake_ltv, 100,000 rows, n_jobs=1:")
    print(timing().to_markdown(index=False))


if __name__ == "__main__":
    main()
