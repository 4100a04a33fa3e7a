"""TwoStageRegressor on a ParquetDataset: XGBoost's external memory or LightGBM's
``Sequence`` input, fed batch by batch.

XGBoost: each stage's training rows reach XGBoost through an ``xgboost.DataIter`` over the
dataset's record batches (validated and typed exactly as ``fit`` types a frame) and an
``xgboost.ExtMemQuantileDMatrix``: XGBoost sketches the quantiles, then keeps the
quantised pages in a disk cache, so memory does not grow with the rows. The boosters
are trained with ``xgboost.train`` and put into the estimator's own ``XGBClassifier`` /
``XGBRegressor``, so the fitted model is the one an in-memory fit gives (same
attributes, same predict path, same model file).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ltvkit.io._dataset import ParquetDataset, batch_to_frame
from ltvkit.nn._streaming import validation_mask

__all__ = ["fit_two_stage_stream"]

# Rows per record batch handed to XGBoost (its external-memory page size follows it).
_PAGE_ROWS = 262_144

#: (row positions of a batch, their y) -> the rows of the batch a stage uses
RowFilter = Callable[[int, int], np.ndarray]


class _BatchIter:
    """An ``xgboost.DataIter`` over the rows of a dataset a stage uses (built lazily,
    so importing this module does not import xgboost)."""

    @staticmethod
    def make(
        est: Any, dataset: ParquetDataset, rows: RowFilter, label: np.ndarray, cache: str
    ) -> Any:
        import xgboost

        class BatchIter(xgboost.DataIter):
            def __init__(self) -> None:
                self._it: Iterator | None = None
                super().__init__(cache_prefix=cache, release_data=True)

            def reset(self) -> None:
                self._it = None

            def next(self, input_data: Callable) -> bool:
                if self._it is None:
                    self._it = _pages(est, dataset, rows)
                page = next(self._it, None)
                if page is None:
                    return False
                frame, where = page
                input_data(data=frame, label=label[where])
                return True

        return BatchIter()


def _matrix(
    est: Any, dataset: ParquetDataset, rows: RowFilter, label: np.ndarray, ref: Any = None
) -> Any:
    import xgboost

    # XGBoost's page cache: in the fit's temporary directory, removed when it ends
    cache = tempfile.mkdtemp(prefix="m", dir=est._stream_cache_dir)
    it = _BatchIter.make(est, dataset, rows, label, cache + "/cache")
    return xgboost.ExtMemQuantileDMatrix(it, enable_categorical=True, ref=ref)


def _train(
    est: Any,
    model: Any,
    dtrain: Any,
    dvalid: Any,
    early_stop: bool,
    n_rounds: int | None = None,
) -> None:
    """Train ``model`` (an XGBClassifier / XGBRegressor) on ``dtrain`` in place."""
    import xgboost

    params = model.get_xgb_params()
    _, metric, params, _ = model._configure_fit(None, params, None)
    evals_result: dict = {}
    evals = [(dvalid, "validation_0")] if dvalid is not None else []
    if early_stop and dvalid is not None:
        model.set_params(early_stopping_rounds=int(est.patience))
    booster = xgboost.train(
        params,
        dtrain,
        num_boost_round=int(n_rounds or model.get_num_boosting_rounds()),
        evals=evals,
        early_stopping_rounds=int(est.patience) if early_stop and dvalid is not None else None,
        evals_result=evals_result,
        custom_metric=metric,
        verbose_eval=int(est.verbose) if est.verbose else False,
    )
    model._Booster = booster
    model._load_model_attributes(json.loads(booster.save_config()))
    if evals_result:
        model._set_evaluation_result(evals_result)


def _predict_rows(
    est: Any, model: Any, dataset: ParquetDataset, rows: RowFilter
) -> tuple[np.ndarray, np.ndarray]:
    """``model.predict`` on the rows ``rows`` keeps, with their positions."""
    preds, positions = [], []
    for frame, where in _pages(est, dataset, rows):
        preds.append(np.asarray(model.predict(frame), dtype=np.float64).reshape(-1))
        positions.append(where)
    if not preds:
        return np.empty(0), np.empty(0, dtype=np.int64)
    return np.concatenate(preds), np.concatenate(positions)


def _pages(est: Any, dataset: ParquetDataset, rows: RowFilter) -> Iterator[tuple[Any, np.ndarray]]:
    """The kept rows as booster-ready frames of about ``_PAGE_ROWS`` rows, with their
    positions: small row groups are joined (XGBoost pays per page)."""
    import pyarrow as pa

    parts, where, held = [], [], 0

    def page() -> tuple[Any, np.ndarray]:
        table = pa.Table.from_batches(parts)
        frame = est.schema_._transform_frame(batch_to_frame(table), by_name=True)
        return est._booster_frame(frame), np.concatenate(where)

    for pos, batch in dataset.iter_batches(batch_size=_PAGE_ROWS, with_position=True):
        keep = rows(pos, batch.num_rows)
        if len(keep) == 0:
            continue
        parts.append(batch if len(keep) == batch.num_rows else batch.take(keep))
        where.append(pos + keep)
        held += len(keep)
        if held >= _PAGE_ROWS:
            yield page()
            parts, where, held = [], [], 0
    if parts:
        yield page()


# --------------------------------------------------------------------------- LightGBM


class _RowGroupSequence:
    """A ``lightgbm.Sequence`` over the kept rows of one row group (built lazily, so
    importing this module does not import lightgbm)."""

    @staticmethod
    def make(reader: _RowGroupReader, frag: Any, keep: np.ndarray) -> Any:
        import lightgbm

        class RowGroupSequence(lightgbm.Sequence):
            batch_size = _LGB_BATCH_ROWS

            def __len__(self) -> int:
                return len(keep)

            def __getitem__(self, idx: int | slice | list) -> np.ndarray:
                rows = reader.rows(frag, keep)
                if isinstance(idx, (int, np.integer)):
                    # a copy: LightGBM keeps the sampled rows, a view would keep the
                    # whole row group alive
                    return rows[int(idx)].copy()
                if isinstance(idx, slice):
                    return rows[idx]
                return rows[np.asarray(idx, dtype=np.int64)]

        return RowGroupSequence()


# Rows per batch LightGBM pushes into its binned dataset.
_LGB_BATCH_ROWS = 65_536


class _RowGroupReader:
    """Reads and encodes row groups for the sequences, keeping only the last one (the
    sampling reads rows in increasing order, the push sequence by sequence)."""

    def __init__(self, est: Any, dataset: ParquetDataset) -> None:
        self.est, self.dataset = est, dataset
        self._key: tuple | None = None
        self._rows: np.ndarray | None = None
        self._file: Any = None
        self._file_name: str | None = None

    def frame(self, frag: Any) -> Any:
        """The row group as the booster-ready frame ``fit`` gives LightGBM."""
        import pyarrow.parquet as pq

        if self._file is None or self._file_name != frag.file:
            self._file, self._file_name = pq.ParquetFile(frag.file), frag.file
        cols = list(self.dataset.features)
        table = self._file.read_row_group(frag.row_group, columns=cols).select(cols)
        frame = self.est.schema_._transform_frame(batch_to_frame(table), by_name=True)
        return self.est._booster_frame(frame)

    def rows(self, frag: Any, keep: np.ndarray) -> np.ndarray:
        key = (frag.file, frag.row_group, id(keep))
        if self._key != key:
            self._rows = _lgb_matrix_of(self.frame(frag))[keep]
            self._key = key
        return self._rows


def _lgb_matrix_of(frame: Any) -> np.ndarray:
    """``frame`` as LightGBM turns a DataFrame into a matrix (``_data_from_pandas``):
    category columns as their codes (missing: NaN), everything as float64."""
    import pandas as pd

    out = np.empty(frame.shape, dtype=np.float64)
    for j, (_, col) in enumerate(frame.items()):
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = col.cat.codes.to_numpy()
            out[:, j] = np.where(codes < 0, np.nan, codes)
        else:
            out[:, j] = col.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


class _LGBStage:
    """What the LightGBM stages share: the reader, the feature names, categories."""

    def __init__(self, est: Any, dataset: ParquetDataset) -> None:
        import pandas as pd

        self.est, self.dataset = est, dataset
        self.reader = _RowGroupReader(est, dataset)
        first = self.reader.frame(dataset.fragments[0])
        self.features = [str(c) for c in first.columns]
        cats = [c for c, dt in first.dtypes.items() if isinstance(dt, pd.CategoricalDtype)]
        self.categorical = [str(c) for c in cats]
        # what LightGBM stores for a DataFrame fit (its predict re-codes frames by it)
        self.pandas_categorical = [list(first[c].cat.categories) for c in cats]

    def matrix(self, model: Any, rows: RowFilter, label: np.ndarray, ref: Any = None) -> Any:
        """A ``lightgbm.Dataset`` of the kept rows, one Sequence per row group."""
        import lightgbm

        seqs, where = [], []
        for frag in self.dataset.fragments:
            keep = np.asarray(rows(frag.start, frag.num_rows), dtype=np.int64)
            if len(keep) == 0:
                continue
            seqs.append(_RowGroupSequence.make(self.reader, frag, keep))
            where.append(frag.start + keep)
        positions = np.concatenate(where) if where else np.empty(0, dtype=np.int64)
        data = lightgbm.Dataset(
            seqs,
            label=label[positions],
            reference=ref,
            feature_name=self.features,
            categorical_feature=self.categorical,
            params=_lgb_params(model),
            free_raw_data=True,
        )
        data.pandas_categorical = self.pandas_categorical
        return data

    def train(
        self,
        model: Any,
        dtrain: Any,
        dvalid: Any,
        early_stop: bool,
        n_rounds: int | None = None,
    ) -> np.ndarray | None:
        """Train ``model`` (an LGBMClassifier / LGBMRegressor) on ``dtrain`` in place, as
        its ``fit`` does; the training rows' predictions when there is no validation set
        (LightGBM's own scores, as the in-memory fit takes them), else None."""
        import lightgbm

        from ltvkit.boosting._two_stage import _TrainPredictions

        if n_rounds is not None:
            model.set_params(n_estimators=int(n_rounds))
        if hasattr(model, "predict_proba"):  # LGBMClassifier.fit on the labels 0 / 1
            from sklearn.preprocessing import LabelEncoder

            model._le = LabelEncoder().fit(np.array([0, 1], dtype=np.int8))
            model._class_map = dict(
                zip(model._le.classes_, model._le.transform(model._le.classes_), strict=True)
            )
            model._classes = model._le.classes_
            model._n_classes = len(model._classes)
            if model.objective is None:
                model._objective = None
        params = _lgb_params(model)
        if model._class_weight is None:
            model._class_weight = model.class_weight
        model.n_features_in_ = len(self.features)
        evals_result: dict = {}
        callbacks: list = []
        capture = None
        if dvalid is not None:
            if early_stop:
                callbacks.append(lightgbm.early_stopping(int(self.est.patience), verbose=False))
            if self.est.verbose:
                callbacks.append(lightgbm.log_evaluation(period=int(self.est.verbose)))
        elif not hasattr(model, "predict_proba"):
            capture = _TrainPredictions()
            callbacks.append(capture)
        callbacks.append(lightgbm.record_evaluation(evals_result))
        booster = lightgbm.train(
            params,
            dtrain,
            num_boost_round=int(model.n_estimators),
            valid_sets=[dvalid] if dvalid is not None else [],
            callbacks=callbacks,
        )
        model._Booster = booster
        model._n_features = booster.num_feature()
        model._fitted_with_feature_names = dtrain._has_non_default_feature_names
        model._evals_result = evals_result
        model._best_iteration = booster.best_iteration
        model._best_score = booster.best_score
        model.fitted_ = True
        booster.free_dataset()
        return None if capture is None else capture.pred


def _lgb_params(model: Any) -> dict:
    """The parameters ``LGBMModel.fit`` gives ``lightgbm.Dataset`` and ``lightgbm.train``."""
    params = model._process_params(stage="fit")
    metric = params["metric"]
    metric = [metric] if isinstance(metric, (str, type(None))) else list(metric)
    params["metric"] = [m for m in metric if m is not None]
    return params


class _XGBStage:
    """The XGBoost stages: external-memory matrices."""

    def __init__(self, est: Any, dataset: ParquetDataset) -> None:
        self.est, self.dataset = est, dataset

    def matrix(self, model: Any, rows: RowFilter, label: np.ndarray, ref: Any = None) -> Any:
        return _matrix(self.est, self.dataset, rows, label, ref=ref)

    def train(
        self,
        model: Any,
        dtrain: Any,
        dvalid: Any,
        early_stop: bool,
        n_rounds: int | None = None,
    ) -> np.ndarray | None:
        _train(self.est, model, dtrain, dvalid, early_stop, n_rounds)
        return None


# --------------------------------------------------------------------------- both


def fit_two_stage_stream(
    est: Any, dataset: ParquetDataset, y: np.ndarray, seed: Any, rng: Any
) -> None:
    """The body of ``TwoStageRegressor.fit`` for a dataset (built-in booster stages)."""
    if est.backend == "lightgbm":
        _fit(est, dataset, y, seed, rng, _LGBStage(est, dataset))
        return
    with tempfile.TemporaryDirectory(prefix="ltvkit-xgb-") as cache_dir:
        est._stream_cache_dir = cache_dir
        try:
            _fit(est, dataset, y, seed, rng, _XGBStage(est, dataset))
        finally:
            del est._stream_cache_dir
            import gc

            gc.collect()  # the DMatrix objects, before their cache files go


def _fit(est: Any, dataset: ParquetDataset, y: np.ndarray, seed: Any, rng: Any, lib: Any) -> None:
    """The body of ``TwoStageRegressor.fit`` for a dataset (built-in booster stages).

    ``est.schema_`` and the booster column names are set; ``y`` is the validated target.
    Early stopping holds out the rows whose position hashes below
    ``validation_fraction`` (not stratified); ``quantile_cv`` folds are hashes too.
    """
    positive = y > 0
    split_seed = int(rng.randint(np.iinfo(np.int32).max))
    fraction = float(est.validation_fraction) if est.early_stopping else None

    def held(pos: int, m: int) -> np.ndarray:
        if fraction is None:
            return np.zeros(m, dtype=bool)
        return validation_mask(pos, m, fraction, split_seed)

    def rows_where(cond: Callable[[int, int], np.ndarray]) -> RowFilter:
        return lambda pos, m: np.flatnonzero(cond(pos, m))

    def spend(pos: int, m: int) -> np.ndarray:
        return positive[pos : pos + m]

    if fraction is not None:
        n_valid = int(sum(held(f.start, f.num_rows).sum() for f in dataset.fragments))
        n_valid_pos = int(
            sum(
                (held(f.start, f.num_rows) & spend(f.start, f.num_rows)).sum()
                for f in dataset.fragments
            )
        )
        if n_valid < 2 or n_valid_pos < 1 or n_valid_pos == n_valid:
            fraction = None
    classifier = None if positive.all() else est._make_classifier(seed)
    regressor = est._make_regressor(seed)
    label = positive.astype(np.float32)

    # Stage 1: P(y > 0) on every row.
    if classifier is not None:
        dtrain = lib.matrix(classifier, rows_where(lambda p, m: ~held(p, m)), label)
        dvalid = None
        if fraction is not None:
            dvalid = lib.matrix(classifier, rows_where(held), label, ref=dtrain)
        lib.train(classifier, dtrain, dvalid, fraction is not None)
        del dtrain, dvalid
    est.classifier_ = classifier

    # Stage 2: E[y | y > 0] on the rows that spent.
    target = np.log1p(y) if est.target_transform == "log1p" else y
    target = target.astype(np.float32)
    train_pos = rows_where(lambda p, m: spend(p, m) & ~held(p, m))
    dtrain = lib.matrix(regressor, train_pos, target)
    dvalid = None
    if fraction is not None:
        dvalid = lib.matrix(
            regressor, rows_where(lambda p, m: spend(p, m) & held(p, m)), target, ref=dtrain
        )
    fitted = lib.train(regressor, dtrain, dvalid, fraction is not None)
    del dtrain, dvalid
    est.regressor_ = regressor
    from ltvkit.boosting._two_stage import _n_rounds

    est.n_estimators_ = (_n_rounds(classifier), _n_rounds(regressor))
    if fitted is None:
        fitted, where = _predict_rows(est, regressor, dataset, train_pos)
    else:  # LightGBM's scores of its training rows, in dataset order
        where = _positions(dataset, train_pos)
    y_pos = y[where]
    est.correction_factor_ = est._correction_factor(regressor, None, y_pos, None, fitted)

    # the spread of a spender's value, cross-fitted on hashed folds (see quantile_cv)
    from ltvkit.base import SpendResiduals

    folds = est.quantile_cv
    if folds is None or len(y_pos) < 2 * folds:
        value = est._value_from(regressor, est.correction_factor_, None, fitted)
        est.spend_residuals_ = SpendResiduals.fit(y_pos, value, None)
        return
    fold_seed = int(rng.randint(np.iinfo(np.int32).max))
    values, ys = [], []
    for k in range(int(folds)):

        def in_fold(pos: int, m: int, k: int = k) -> np.ndarray:
            return _fold_of(pos, m, int(folds), fold_seed) == k

        fit_rows = rows_where(lambda p, m, f=in_fold: spend(p, m) & ~held(p, m) & ~f(p, m))
        held_rows = rows_where(lambda p, m, f=in_fold: spend(p, m) & ~held(p, m) & f(p, m))
        reg = est._make_regressor(seed)
        fit_pred = lib.train(
            reg, lib.matrix(reg, fit_rows, target), None, False, est.n_estimators_[1]
        )
        if fit_pred is None:
            fit_pred, fit_where = _predict_rows(est, reg, dataset, fit_rows)
        else:
            fit_where = _positions(dataset, fit_rows)
        factor = est._correction_factor(reg, None, y[fit_where], None, fit_pred)
        held_pred, held_where = _predict_rows(est, reg, dataset, held_rows)
        values.append(est._value_from(reg, factor, None, held_pred))
        ys.append(y[held_where])
    est.spend_residuals_ = SpendResiduals.fit(np.concatenate(ys), np.concatenate(values), None)


def _positions(dataset: ParquetDataset, rows: RowFilter) -> np.ndarray:
    """The positions of the rows ``rows`` keeps, in dataset order."""
    parts = [f.start + rows(f.start, f.num_rows) for f in dataset.fragments]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _fold_of(pos: int, m: int, folds: int, seed: int) -> np.ndarray:
    """A fold in ``0 .. folds - 1`` for each row position, from a hash (like the split)."""
    # validation_mask(p, m, t, seed) is "hash < t": the fold is how many of the
    # thresholds 1/k, 2/k, ... the hash passes
    fold = np.zeros(m, dtype=np.int64)
    for j in range(1, folds):
        fold += ~validation_mask(pos, m, j / folds, seed)
    return fold
