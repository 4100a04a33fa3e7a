"""Synthetic zero-inflated, long-tailed LTV data with known structure (``make_ltv``)."""

from __future__ import annotations

import numbers
import os
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["make_ltv"]

# Fixed constants of the generative model (docs/datasets.md writes it out).
_BASE_LOG_VALUE = np.log(30.0)  # median positive value of group 0 at average features
_GROUP_LOG_GAP = 2.5  # log-scale location gap between adjacent groups, in units of sigma
_GROUP_LOGIT_GAP = 0.5  # higher-value groups also buy more often
_GROUP_FEATURE_SHIFT = 3.0  # num_0 mean gap between adjacent groups (in sd)
_CAT0_GROUP_AGREEMENT = 0.8  # P(cat_0 level == group)
_FEATURE_LOGIT_SD = 1.0  # sd of the numeric-feature part of the logit
_FEATURE_LOG_SD = 0.5  # sd of the shared numeric-feature part of the log-location
_GROUP_SLOPE_SD = 0.25  # sd of the group-specific deviation of the log-location slopes
_CAT_EFFECT_SD = 0.3
_WHALE_SCALE = 10.0  # whale multiplier ~ Pareto(scale=10, alpha=2), mean 20
_WHALE_ALPHA = 2.0
_HORIZON_DECAY = 0.5  # P(first holdout purchase in horizon t) ~ 0.5**t
_CALIBRATION_ROWS = 200_000  # rows used to solve for the logit intercept


def _check_int(value: object, name: str, low: int) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    return int(value)


def _check_real(value: object, name: str, low: float, high: float, *, open_high: bool) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if ok:
        ok = low <= value < high if open_high else low <= value <= high
    if not ok:
        bracket = ")" if open_high else "]"
        raise ValueError(f"{name} must be in [{low}, {high}{bracket}, got {value!r}.")
    return float(value)


def _rng(random_state: object) -> np.random.Generator:
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    return np.random.default_rng(random_state)


def _unit(vec: np.ndarray, scale: float) -> np.ndarray:
    norm = float(np.linalg.norm(vec))
    return vec * (scale / norm) if norm > 0 else vec


def _solve_intercept(eta: np.ndarray, target: float) -> float:
    """Intercept a with mean(sigmoid(a + eta)) == target (bisection; monotone in a)."""
    eta = eta.astype(np.float64)
    lo, hi = -50.0, 50.0
    for _ in range(60):
        mid = (lo + hi) / 2.0
        if np.mean(1.0 / (1.0 + np.exp(-(mid + eta)))) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def make_ltv(
    n_samples: int = 10_000,
    n_features: int = 20,
    n_categorical: int = 3,
    zero_fraction: float = 0.7,
    sigma: float = 1.0,
    whale_fraction: float = 0.01,
    n_groups: int = 3,
    n_horizons: int = 1,
    random_state: int | np.random.Generator | np.random.RandomState | None = None,
    *,
    return_groups: bool = False,
    return_params: bool = False,
) -> tuple:
    """Generate zero-inflated, long-tailed LTV data with known structure.

    Each customer belongs to one of ``n_groups`` latent sub-populations; the group and
    the features drive both whether the customer spends (a logistic model whose
    intercept is solved so that about ``zero_fraction`` of ``y`` is 0) and the log-scale
    location of a log-normal spend. Adjacent groups are ``2.5 * sigma`` apart in log
    value and are identifiable from the features: ``num_0`` is shifted by 3 standard
    deviations per group and ``cat_0`` is set to the group with probability 0.8. A
    ``whale_fraction`` share of the spenders get a Pareto(scale 10, alpha 2) multiplier
    (mean 20).
    The equations are in ``docs/datasets.md``.

    Parameters
    ----------
    n_samples : int, default=10_000
    n_features : int, default=20
        Total number of columns: ``n_features - n_categorical`` numeric ``num_0, ...``
        (float32; the first half of them informative) and ``n_categorical`` categorical
        ``cat_0, ...`` (``category`` dtype).
    n_categorical : int, default=3
    zero_fraction : float, default=0.7
        Target share of ``y == 0`` (of the last horizon), in [0, 1); matched
        approximately.
    sigma : float, default=1.0
        Log-scale standard deviation of the positive spend.
    whale_fraction : float, default=0.01
        Share of spenders whose spend is multiplied by a heavy-tailed factor.
    n_groups : int, default=3
        Number of latent sub-populations (group sizes proportional to ``2**-g``).
    n_horizons : int, default=1
        With ``n_horizons > 1``, ``y`` has shape ``(n_samples, n_horizons)``: cumulative
        spend at increasing horizons, non-decreasing along each row.
    random_state : int, Generator, RandomState or None, default=None
        Seed; the same seed gives the same data.
    return_groups : bool, default=False
        Also return the latent group of each row.
    return_params : bool, default=False
        Also return a dict of the true per-row quantities: ``"p_nonzero"`` (P(y > 0),
        shape like ``y``), ``"expected_value"`` (E[y | features, group], shape like
        ``y``), ``"mu"`` (log-scale location), ``"sigma"`` and ``"is_whale"``.

    Returns
    -------
    X : pandas.DataFrame of shape (n_samples, n_features)
    y : ndarray of float64 of shape (n_samples,) or (n_samples, n_horizons)
    groups : ndarray of int64 of shape (n_samples,)
        Only if ``return_groups``.
    params : dict
        Only if ``return_params`` (after ``groups`` when both are requested).

    Examples
    --------
    >>> from ltvkit.datasets import make_ltv
    >>> X, y = make_ltv(n_samples=1000, n_features=5, n_categorical=2, random_state=0)
    >>> X.columns.tolist()
    ['num_0', 'num_1', 'num_2', 'cat_0', 'cat_1']
    >>> X, y, groups = make_ltv(n_samples=1000, n_horizons=3, random_state=0,
    ...                         return_groups=True)
    >>> y.shape, bool((y[:, 1:] >= y[:, :-1]).all())
    ((1000, 3), True)
    """
    n = _check_int(n_samples, "n_samples", 1)
    n_feat = _check_int(n_features, "n_features", 1)
    n_cat = _check_int(n_categorical, "n_categorical", 0)
    if n_cat > n_feat:
        raise ValueError(f"n_categorical ({n_cat}) cannot exceed n_features ({n_feat}).")
    zf = _check_real(zero_fraction, "zero_fraction", 0.0, 1.0, open_high=True)
    sig = _check_real(sigma, "sigma", 0.0, np.inf, open_high=True)
    if sig <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}.")
    wf = _check_real(whale_fraction, "whale_fraction", 0.0, 1.0, open_high=False)
    n_grp = _check_int(n_groups, "n_groups", 1)
    n_hor = _check_int(n_horizons, "n_horizons", 1)
    rng = _rng(random_state)
    n_num = n_feat - n_cat
    f32 = np.float32

    # --- the true model: drawn first, so it depends on the seed and shapes, not on n.
    n_inf = (n_num + 1) // 2
    w_logit = np.zeros(n_num)
    w_logit[:n_inf] = rng.standard_normal(n_inf)
    w_logit = _unit(w_logit, _FEATURE_LOGIT_SD)
    w_log = np.zeros(n_num)
    w_log[:n_inf] = rng.standard_normal(n_inf)
    w_log = _unit(w_log, _FEATURE_LOG_SD)
    slopes = np.repeat(w_log[:, None], n_grp, axis=1)  # (n_num, n_groups)
    slopes[:n_inf] += rng.normal(0.0, _GROUP_SLOPE_SD / np.sqrt(max(n_inf, 1)), (n_inf, n_grp))
    n_levels = [max(4 + j, n_grp) if j == 0 else 4 + j for j in range(n_cat)]
    cat_logit = [rng.normal(0.0, _CAT_EFFECT_SD, k).astype(f32) for k in n_levels]
    cat_log = [rng.normal(0.0, _CAT_EFFECT_SD, k).astype(f32) for k in n_levels]
    group_p = 0.5 ** np.arange(n_grp)
    group_p /= group_p.sum()
    group_logit = (_GROUP_LOGIT_GAP * np.arange(n_grp)).astype(f32)
    group_log = (_BASE_LOG_VALUE + _GROUP_LOG_GAP * sig * np.arange(n_grp)).astype(f32)

    # --- rows
    groups = rng.choice(n_grp, size=n, p=group_p)
    num = rng.standard_normal((n_num, n), dtype=f32)  # row j = column num_j (contiguous)
    if n_num and n_grp > 1:
        num[0] += (_GROUP_FEATURE_SHIFT * (groups - (n_grp - 1) / 2.0)).astype(f32)
    codes = []
    for j, k in enumerate(n_levels):
        c = rng.integers(0, k, size=n, dtype=np.int8 if k < 128 else np.int32)
        if j == 0 and n_grp > 1:
            agree = rng.random(n, dtype=f32) < _CAT0_GROUP_AGREEMENT
            c[agree] = groups[agree]
        codes.append(c)

    eta = group_logit[groups]
    mu = group_log[groups]
    if n_num:
        # (k, p) @ (p, n) keeps num's rows contiguous: far faster than num.T @ (p, k).
        eta = eta + w_logit.astype(f32) @ num
        by_group = slopes.T.astype(f32) @ num  # (n_groups, n): each group's own slopes
        mu = mu + np.take_along_axis(by_group, groups[None, :], axis=0)[0]
        del by_group
    for c, a, b in zip(codes, cat_logit, cat_log, strict=True):
        eta = eta + a[c]
        mu = mu + b[c]

    if zf == 0.0:
        p = np.ones(n)
    else:
        intercept = _solve_intercept(eta[:_CALIBRATION_ROWS], 1.0 - zf)
        p = 1.0 / (1.0 + np.exp(-(intercept + eta.astype(np.float64))))
    spender = np.flatnonzero(rng.random(n) < p)
    n_pos = spender.size
    value = np.exp(mu[spender] + f32(sig) * rng.standard_normal(n_pos, dtype=f32))
    is_whale_pos = rng.random(n_pos) < wf
    n_whale = int(is_whale_pos.sum())
    value = value.astype(np.float64)
    value[is_whale_pos] *= _WHALE_SCALE * (1.0 - rng.random(n_whale)) ** (-1.0 / _WHALE_ALPHA)

    if n_hor == 1:
        y = np.zeros(n)
        y[spender] = value
    else:
        # Each spender's first holdout purchase falls in horizon tau (P ~ 0.5**tau); the
        # total is split over horizons tau..T-1 by Dirichlet(1, ..., 1) weights.
        tau_p = _HORIZON_DECAY ** np.arange(n_hor)
        tau_p /= tau_p.sum()
        tau = rng.choice(n_hor, size=n_pos, p=tau_p)
        w = rng.standard_exponential((n_pos, n_hor), dtype=f32)
        w[np.arange(n_hor)[None, :] < tau[:, None]] = 0.0
        frac = np.cumsum(w, axis=1, dtype=np.float64)
        frac /= frac[:, -1:]
        y = np.zeros((n, n_hor))
        y[spender] = value[:, None] * frac
        y[spender, -1] = value  # exact total, no rounding drift in the last horizon
        y = np.maximum.accumulate(y, axis=1)

    data: dict[str, object] = {f"num_{j}": num[j] for j in range(n_num)}
    for j, (c, k) in enumerate(zip(codes, n_levels, strict=True)):
        data[f"cat_{j}"] = pd.Categorical.from_codes(c, categories=[f"v{i}" for i in range(k)])
    X = pd.DataFrame(data, copy=False)

    out: list[object] = [X, y]
    if return_groups:
        out.append(groups.astype(np.int64))
    if return_params:
        mean_mult = 1.0 - wf + wf * _WHALE_SCALE * _WHALE_ALPHA / (_WHALE_ALPHA - 1.0)
        mu64 = mu.astype(np.float64)
        expected = p * np.exp(mu64 + sig**2 / 2.0) * mean_mult
        is_whale = np.zeros(n, dtype=bool)
        is_whale[spender[is_whale_pos]] = True
        if n_hor > 1:
            t = np.arange(n_hor)
            # E[share of the total reached by horizon t] and P(tau <= t).
            share = sum(tau_p[s] * np.clip(t - s + 1, 0, None) / (n_hor - s) for s in range(n_hor))
            p = p[:, None] * np.cumsum(tau_p)[None, :]
            expected = expected[:, None] * share[None, :]
        out.append(
            {
                "p_nonzero": p,
                "expected_value": expected,
                "mu": mu64,
                "sigma": sig,
                "is_whale": is_whale,
            }
        )
    return tuple(out)


def make_ltv_parquet(
    path: str | os.PathLike,
    n_samples: int,
    *,
    chunk_rows: int = 1_000_000,
    row_group_rows: int = 65_536,
    target: str = "ltv",
    id_column: str | None = "customer_id",
    random_state: int | None = 0,
    **make_ltv_params: object,
) -> list[str]:
    """Write a large :func:`make_ltv` table straight to Parquet, chunk by chunk.

    Chunk ``k`` is ``make_ltv(chunk_rows, random_state=(random_state, k), ...)``, one
    file ``part-<k>.parquet`` under the directory ``path``: only one chunk is ever in
    memory, so 50 M rows can be written on a small machine. Each chunk solves its own
    intercept for ``zero_fraction``; at a million rows a chunk that is the same as one
    table's.

    Parameters
    ----------
    path : str or path-like
        Directory to create (or reuse; existing ``part-*.parquet`` files are replaced).
    n_samples : int
    chunk_rows : int, default=1_000_000
    row_group_rows : int, default=65_536
        Rows per Parquet row group: the unit a streaming fit shuffles and reads.
    target : str, default="ltv"
        Name of the target column (``<target>_h1, ...`` with ``n_horizons > 1``).
    id_column : str or None, default="customer_id"
        Name of an int64 id column (the row number); None: no id column.
    random_state : int or None, default=0
    **make_ltv_params
        Passed to :func:`make_ltv` (``n_features``, ``n_categorical``...).

    Returns
    -------
    list of str
        The files written, in order.

    Examples
    --------
    >>> import tempfile
    >>> files = make_ltv_parquet(tempfile.mkdtemp(), 250, chunk_rows=100)
    >>> len(files)
    3
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if n_samples < 1 or chunk_rows < 1 or row_group_rows < 1:
        raise ValueError("ltvkit: n_samples, chunk_rows and row_group_rows must be >= 1.")
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("part-*.parquet"):
        old.unlink()
    files = []
    seed = None if random_state is None else int(random_state)
    for k, start in enumerate(range(0, n_samples, chunk_rows)):
        n = min(chunk_rows, n_samples - start)
        rs = np.random.default_rng(None if seed is None else [seed, k])
        X, y = make_ltv(n_samples=n, random_state=rs, **make_ltv_params)
        if y.ndim == 1:
            X[target] = y
        else:
            for t in range(y.shape[1]):
                X[f"{target}_h{t + 1}"] = y[:, t]
        if id_column is not None:
            X.insert(0, id_column, np.arange(start, start + n, dtype=np.int64))
        file = folder / f"part-{k:05d}.parquet"
        pq.write_table(
            pa.Table.from_pandas(X, preserve_index=False), file, row_group_size=row_group_rows
        )
        files.append(str(file))
        del X, y
    return files
