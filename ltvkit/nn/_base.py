"""The shared deep estimator: :class:`BaseDeepRegressor` and its skorch plumbing.

A deep ltvkit model is a plain sklearn estimator (``__init__`` only stores
hyperparameters). Its ``fit`` validates the input (``ltvkit.base``), encodes it once
into float32/int64 tensors (:class:`~ltvkit.nn._encoder.TabularEncoder`), builds a
skorch :class:`LTVNeuralNet` around the model's torch module and loss, trains it and
keeps it as ``net_``. skorch owns the training loop, callbacks and history; this file
only wires data, seeds, early stopping and the prediction path. See ``docs/nn.md``.
"""

from __future__ import annotations

import copy
import inspect
import math
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from skorch import NeuralNet
from skorch.callbacks import (
    Callback,
    EarlyStopping,
    GradientNormClipping,
    LRScheduler,
    ProgressBar,
)
from skorch.helper import predefined_split
from skorch.utils import to_tensor
from torch import nn

from ltvkit.base import LTVRegressorMixin, check_predictions
from ltvkit.nn._encoder import EncodedSpec, TabularEncoder
from ltvkit.nn._layers import SharedBottom

__all__ = [
    "SHARED_PARAMS",
    "BaseDeepRegressor",
    "BatchIterator",
    "LTVNeuralNet",
    "TensorDictDataset",
]

#: Hyperparameters every deep model has, with the same name and meaning. A subclass
#: must list all of them in its ``__init__`` signature (checked at class creation).
SHARED_PARAMS: tuple[str, ...] = (
    "hidden_units",
    "dropout",
    "embedding_dim",
    "log_transform",
    "min_category_frequency",
    "batch_size",
    "max_epochs",
    "lr",
    "weight_decay",
    "optimizer",
    "lr_schedule",
    "early_stopping",
    "validation_fraction",
    "patience",
    "gradient_clip",
    "random_state",
    "verbose",
    "callbacks",
    "device",
    "precision",
)

#: ``precision`` -> (torch dtype, numpy dtype) of the network's parameters and inputs.
_PRECISIONS: dict[str, tuple[torch.dtype, type[np.floating]]] = {
    "float32": (torch.float32, np.float32),
    "float64": (torch.float64, np.float64),
}

_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}

# Early stopping needs a validation set worth the name; below this many validation
# rows (e.g. sklearn's estimator checks, which fit on a handful of rows) the split is
# skipped and the model trains for max_epochs on all rows.
_MIN_VALIDATION_ROWS = 20
_MIN_TRAIN_ROWS = 20
# Prediction and validation batches: larger than training batches (no gradients, so
# memory per row is small) but bounded, so predict memory does not grow with n.
_PREDICT_BATCH_SIZE = 16384
# Rows encoded at once by predict-type methods.
_PREDICT_CHUNK_ROWS = 4 * _PREDICT_BATCH_SIZE


# -- data path --------------------------------------------------------------------------
def _index_tree(data: Any, idx: slice | torch.Tensor) -> Any:
    """Index every tensor of a (nested) dict/tuple the same way."""
    if data is None:
        return None
    if isinstance(data, torch.Tensor):
        return data[idx] if isinstance(idx, slice) else data.index_select(0, idx)
    if isinstance(data, Mapping):
        return {k: _index_tree(v, idx) for k, v in data.items()}
    if isinstance(data, (tuple, list)):
        return type(data)(_index_tree(v, idx) for v in data)
    raise TypeError(f"ltvkit: cannot batch an object of type {type(data).__name__}.")


def _to_tensor_tree(data: Any, float_dtype: type[np.floating] = np.float32) -> Any:
    """numpy (nested dict/tuple) -> tensors: floats to ``float_dtype``, integers to int64."""
    if data is None or isinstance(data, torch.Tensor):
        return data
    if isinstance(data, Mapping):
        return {k: _to_tensor_tree(v, float_dtype) for k, v in data.items()}
    if isinstance(data, tuple):
        return tuple(_to_tensor_tree(v, float_dtype) for v in data)
    arr = np.asarray(data)
    if np.issubdtype(arr.dtype, np.integer):
        arr = np.ascontiguousarray(arr, dtype=np.int64)
        return torch.from_numpy(arr if arr.flags.writeable else arr.copy())
    out = np.ascontiguousarray(arr, dtype=float_dtype)
    # torch cannot wrap a read-only array (e.g. a memory map) without a warning
    return torch.from_numpy(out if out.flags.writeable else out.copy())


def _tree_len(data: Any) -> int:
    if isinstance(data, torch.Tensor):
        return int(data.shape[0])
    if isinstance(data, Mapping):
        return _tree_len(next(iter(data.values())))
    return _tree_len(data[0])


class TensorDictDataset(torch.utils.data.Dataset):
    """A dataset over pre-built tensors that is indexed a whole batch at a time.

    ``dataset[idx]`` with a slice or an int64 index tensor returns ``(X_batch,
    y_batch)``, where ``X`` is a dict of tensors (the module's keyword arguments) and
    ``y`` any (nested dict/tuple of) tensors or None. ``rows`` restricts the dataset
    to a subset of rows without copying the data (the train/validation split).

    Examples
    --------
    >>> ds = TensorDictDataset({"x_num": torch.zeros(5, 2)}, torch.arange(5.0))
    >>> xb, yb = ds[torch.tensor([0, 3])]
    >>> xb["x_num"].shape, yb.tolist()
    (torch.Size([2, 2]), [0.0, 3.0])
    """

    def __init__(
        self, X: dict[str, torch.Tensor], y: Any = None, rows: torch.Tensor | None = None
    ):
        self.X = X
        self.y = y
        self.rows = rows
        self._n = int(rows.shape[0]) if rows is not None else _tree_len(X)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, idx: slice | torch.Tensor) -> tuple[dict[str, torch.Tensor], Any]:
        if isinstance(idx, numbers.Integral):
            idx = slice(int(idx), int(idx) + 1)
        if self.rows is not None:
            idx = self.rows[idx] if isinstance(idx, slice) else self.rows.index_select(0, idx)
        return _index_tree(self.X, idx), _index_tree(self.y, idx)


class BatchIterator:
    """Minimal DataLoader replacement: yields whole batches by tensor indexing.

    No per-row ``__getitem__`` and no collate step, which is what makes skorch's
    training loop cost about the same as a hand-written one. Shuffling uses its own
    ``torch.Generator`` seeded with ``seed``, so it does not touch the global RNG.

    Parameters
    ----------
    dataset : TensorDictDataset
    batch_size : int
    shuffle : bool, default=False
    seed : int or None, default=None

    Examples
    --------
    >>> ds = TensorDictDataset({"x_num": torch.zeros(5, 1)})
    >>> [len(xb["x_num"]) for xb, _ in BatchIterator(ds, batch_size=2)]
    [2, 2, 1]
    """

    def __init__(
        self,
        dataset: TensorDictDataset,
        batch_size: int,
        shuffle: bool = False,
        seed: int | None = None,
    ) -> None:
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self._generator = torch.Generator()
        if seed is not None:
            self._generator.manual_seed(int(seed))
        else:
            self._generator.seed()

    def __len__(self) -> int:
        return math.ceil(len(self.dataset) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[dict[str, torch.Tensor], Any]]:
        n = len(self.dataset)
        order = torch.randperm(n, generator=self._generator) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            yield self.dataset[order[start:stop] if order is not None else slice(start, stop)]


# -- skorch net and callbacks --------------------------------------------------------------
def _silent(*args: object, **kwargs: object) -> None:
    """Sink for skorch messages when ``verbose=0`` (module level so it pickles)."""


class _FiniteLossGuard(Callback):
    """Stop training with a RuntimeError as soon as a batch loss is NaN or inf."""

    def __init__(self, estimator_name: str = "model") -> None:
        self.estimator_name = estimator_name

    def _fail(self, net: NeuralNet, value: float, where: str) -> None:
        epoch = len(net.history)
        raise RuntimeError(
            f"{self.estimator_name}: the {where} loss became {value} in epoch {epoch}; the "
            f"fit diverged. Likely causes: a learning rate that is too high (lr={net.lr:g}), "
            "extreme feature values (outliers, unscaled spend; keep log_transform='auto'), "
            "or extreme targets. Try a lower lr, gradient_clip=1.0 or some weight_decay."
        )

    def on_batch_end(
        self, net: NeuralNet, batch: Any = None, training: bool = False, **kwargs: Any
    ) -> None:
        loss = kwargs.get("loss")
        if loss is not None:
            value = float(loss.detach())
            if not math.isfinite(value):
                self._fail(net, value, "training" if training else "validation")


class LTVNeuralNet(NeuralNet):
    """skorch ``NeuralNet`` whose batches are ``(dict of tensors, {"target", "weight"})``.

    ``get_loss`` calls the criterion as ``criterion(output, target)``, which must
    return one loss per sample (shape ``(n,)``), and averages it with the sample
    weights (normalised to mean 1 over the training rows). Subclass it and set
    ``_net_class`` on the estimator when a model needs a different reduction or a
    custom ``train_step``.
    """

    def get_default_callbacks(self) -> list[tuple[str, Callback]]:
        callbacks = list(super().get_default_callbacks())
        if not self.verbose:
            # verbose=0 prints nothing, so the epoch table is not even formatted
            callbacks = [(name, cb) for name, cb in callbacks if name != "print_log"]
        return callbacks

    def infer(self, x: Any, **fit_params: Any) -> Any:
        # batches are dicts of tensors built on the CPU already; skip skorch's per-batch
        # to_tensor/merge round trip in the common case
        if not fit_params and isinstance(x, dict) and str(self.device) == "cpu":
            return self.module_(**x)
        return super().infer(x, **fit_params)

    def _set_training(self, training: bool = True) -> None:
        # skorch calls this on every batch, and module.train() walks every submodule
        # each time (~0.2 ms a batch, 5% of a small network's epoch). Skip it when the
        # mode is already right; every mode change goes through here anyway.
        for name in self._modules + self._criteria:
            part = getattr(self, name + "_", None)
            if isinstance(part, nn.Module) and part.training is not training:
                super()._set_training(training)
                return

    def get_loss(
        self, y_pred: Any, y_true: Any, X: Any = None, training: bool = False
    ) -> torch.Tensor:
        if str(self.device) != "cpu":  # batches are built on the CPU
            y_true = to_tensor(y_true, device=self.device)
        loss = self.criterion_(y_pred, y_true["target"])
        if loss.ndim != 1:
            raise ValueError(
                "ltvkit: a deep model's criterion must return one loss per sample (shape "
                f"(n,)), got shape {tuple(loss.shape)}."
            )
        weight = y_true.get("weight")
        if weight is not None:
            loss = loss * weight
        return loss.mean()


# -- the estimator -----------------------------------------------------------------------
class BaseDeepRegressor(LTVRegressorMixin, BaseEstimator):
    """Base class of ltvkit's deep LTV models (ZILN, OptDist, MDME/ODMN, CC-OR-Net...).

    Not used directly. A model subclasses it, lists every name in
    :data:`SHARED_PARAMS` plus its own hyperparameters in its ``__init__`` signature
    (keyword-only), stores them with ``self._store_params(locals())`` and implements
    three hooks:

    - ``_build_module(spec) -> nn.Module``: the torch module. Its ``forward`` takes
      ``x_num`` and ``x_cat`` (see :class:`~ltvkit.nn._layers.SharedBottom`, built by
      :meth:`_make_bottom`) and returns a tensor, tuple or dict.
    - ``_build_criterion() -> nn.Module``: called as ``criterion(output, target)``,
      returns the per-sample loss, shape ``(n,)``.
    - ``_output_to_prediction(output) -> Tensor``: expected value per customer.

    Optional hooks: ``_prepare_targets(y, sample_weight)`` (targets the criterion sees,
    e.g. bucket ids; called once in ``fit``), ``_validate_hyperparameters()``,
    ``_validation_strata(y, targets)``, ``_model_callbacks()``,
    ``_after_fit(X, y, sample_weight)`` (fitted attributes that need the trained
    network) and the ``_net_class`` attribute. A model does not override ``fit``.
    ``docs/nn.md`` walks through a complete model.

    Shared hyperparameters
    ----------------------
    hidden_units : tuple of int
        Widths of the shared bottom MLP.
    dropout : float
        Dropout after each hidden layer.
    embedding_dim : int or None
        Width of every categorical embedding; None: ``min(50, ceil(cardinality / 2))``.
    log_transform : {"auto", True, False}
        ``log1p`` on skewed non-negative numeric columns before standardizing.
    min_category_frequency : int
        Rarer categories share the "other" embedding slot with unseen/missing ones.
    batch_size : int
        Training batch size.
    max_epochs : int
        Upper bound on training epochs.
    lr : float
        Learning rate.
    weight_decay : float
        Passed to the optimizer.
    optimizer : {"adam", "adamw", "sgd", "rmsprop"} or torch optimizer class
        ``"sgd"`` uses momentum 0.9.
    lr_schedule : {"cosine", "none"} or None
        Cosine annealing of the learning rate over ``max_epochs`` (per epoch).
    early_stopping : bool
        Hold out ``validation_fraction`` of the rows (stratified on ``y > 0``), stop
        after ``patience`` epochs without improvement of the validation loss and
        restore the best weights. Skipped automatically when the split would leave
        fewer than 20 rows on either side.
    validation_fraction : float
    patience : int
    gradient_clip : float or None
        Clip the global gradient norm (skorch ``GradientNormClipping``).
    random_state : int, RandomState or None
        Seeds weight init, dropout, shuffling and the validation split; an int gives
        bitwise-identical predictions on CPU. The global torch RNG is left untouched.
    verbose : int
        0: silent; 1: skorch's progress bar and epoch table.
    callbacks : list of skorch callbacks or (name, callback) tuples, or None
        Extra callbacks, deep-copied at ``fit`` (the originals are never mutated; the
        fitted ones are in ``net_.callbacks_``).
    device : str
        torch device, ``"cpu"`` by default.
    precision : {"float32", "float64"}
        Floating-point type of the network's weights and inputs. ``"float32"`` (the
        default) is what deep learning normally uses and is about twice as fast;
        ``"float64"`` makes results far less sensitive to summation order, e.g. a row
        with ``sample_weight=k`` and ``k`` repeated rows then give predictions equal to
        ~1e-12 instead of to the last float32 bit (which differs between CPUs).
        Predictions are float64 either way.

    Attributes
    ----------
    net_ : LTVNeuralNet
        The trained skorch net; ``net_.history`` holds the training curves.
    encoder_ : TabularEncoder
        The fitted input encoder (``encoder_.spec_`` describes the encoded input).
    n_iter_ : int
        Number of epochs trained.
    best_epoch_ : int
        Epoch whose weights were kept (the last one without early stopping).
    """

    #: skorch net class used by ``fit``; override with a subclass of LTVNeuralNet.
    _net_class: ClassVar[type[LTVNeuralNet]] = LTVNeuralNet

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__:
            return
        sig = inspect.signature(cls.__init__)
        kinds = {p.kind for p in sig.parameters.values()}
        if inspect.Parameter.VAR_POSITIONAL in kinds or inspect.Parameter.VAR_KEYWORD in kinds:
            raise TypeError(f"{cls.__name__}.__init__ must not take *args or **kwargs (sklearn).")
        missing = [p for p in SHARED_PARAMS if p not in sig.parameters]
        if missing:
            raise TypeError(
                f"{cls.__name__}.__init__ must list every shared deep hyperparameter; "
                f"missing: {missing}. See docs/nn.md."
            )

    def _store_params(self, params: Mapping[str, Any]) -> None:
        """Store the ``__init__`` arguments as attributes (call with ``locals()``)."""
        for name in self._get_param_names():
            setattr(self, name, params[name])

    # -- hooks ------------------------------------------------------------------------
    def _build_module(self, spec: EncodedSpec) -> nn.Module:  # pragma: no cover - abstract
        """Return the torch module (``forward(x_num, x_cat)``). Required."""
        raise NotImplementedError

    def _build_criterion(self) -> nn.Module:  # pragma: no cover - abstract
        """Return ``criterion(output, target) -> (n,)`` per-sample losses. Required."""
        raise NotImplementedError

    def _output_to_prediction(self, output: Any) -> torch.Tensor:  # pragma: no cover
        """Map a batch of module output to expected values. Required."""
        raise NotImplementedError

    def _prepare_targets(
        self, y: np.ndarray, sample_weight: np.ndarray | None
    ) -> np.ndarray | dict[str, np.ndarray]:
        """Targets the criterion receives, built once from the validated ``y``.

        Called in ``fit`` after validation and before ``_build_module``, so it may
        learn fitted attributes (e.g. bucket edges) the module needs. Return an array
        or a dict of arrays with ``n_samples`` rows; floats become float32 tensors,
        integers int64. Default: ``y`` itself.
        """
        return y

    def _validate_hyperparameters(self) -> None:
        """Raise ValueError for invalid hyperparameters. Extend and call super()."""
        _check_int(self.batch_size, "batch_size", 1)
        _check_int(self.max_epochs, "max_epochs", 1)
        _check_int(self.patience, "patience", 1)
        _check_int(self.min_category_frequency, "min_category_frequency", 1)
        _check_int(self.verbose, "verbose", 0)
        hidden = self.hidden_units
        if isinstance(hidden, numbers.Integral):
            raise ValueError(
                f"ltvkit: hidden_units must be a tuple of ints, got {hidden!r}; "
                f"write ({hidden},) for one layer."
            )
        if not isinstance(hidden, Sequence) or not all(
            isinstance(u, numbers.Integral) and u >= 1 for u in hidden
        ):
            raise ValueError(
                f"ltvkit: hidden_units must be a tuple of positive ints, got {hidden!r}."
            )
        if self.embedding_dim is not None:
            _check_int(self.embedding_dim, "embedding_dim", 1)
        _check_float(self.dropout, "dropout", 0.0, 1.0, right_open=True)
        _check_float(self.lr, "lr", 0.0, None, left_open=True)
        _check_float(self.weight_decay, "weight_decay", 0.0, None)
        _check_float(
            self.validation_fraction,
            "validation_fraction",
            0.0,
            1.0,
            left_open=True,
            right_open=True,
        )
        if self.gradient_clip is not None:
            _check_float(self.gradient_clip, "gradient_clip", 0.0, None, left_open=True)
        if self.precision not in _PRECISIONS:
            raise ValueError(
                f"ltvkit: precision must be one of {sorted(_PRECISIONS)}, got {self.precision!r}."
            )
        if self.log_transform not in ("auto", True, False):
            raise ValueError(
                f"ltvkit: log_transform must be 'auto', True or False, got {self.log_transform!r}."
            )
        if self.lr_schedule not in ("cosine", "none", None):
            raise ValueError(
                f"ltvkit: lr_schedule must be 'cosine', 'none' or None, got {self.lr_schedule!r}."
            )
        if not isinstance(self.early_stopping, (bool, np.bool_)):
            raise ValueError(
                f"ltvkit: early_stopping must be True or False, got {self.early_stopping!r}."
            )
        self._optimizer_class()
        if self.callbacks is not None and not isinstance(self.callbacks, (list, tuple)):
            raise ValueError("ltvkit: callbacks must be a list of skorch callbacks or None.")

    def _validation_strata(
        self, y: np.ndarray, targets: np.ndarray | dict[str, np.ndarray]
    ) -> np.ndarray | None:
        """Labels to stratify the validation split on (default: ``y > 0``).

        Called once in ``fit`` when early stopping splits the rows, with the validated
        ``y`` and ``targets``, the object ``_prepare_targets`` returned (numpy, all
        ``n_samples`` rows). Derive per-row strata (bucket ids, sub-distributions) from
        them rather than keeping them on ``self``: a fitted model must not carry
        training data. None: a random split.
        """
        last = y if y.ndim == 1 else y[:, -1]
        return (last > 0).astype(np.int8)

    def _model_callbacks(self) -> list[tuple[str, Callback]]:
        """skorch callbacks the model itself needs (e.g. a temperature schedule).

        They run before the base's early stopping, lr scheduler and gradient clipping
        and before the user's ``callbacks``, so their ``on_epoch_end`` also runs in the
        epoch in which early stopping ends training (EarlyStopping ends it by raising in
        its own ``on_epoch_end``); their ``on_train_end`` runs before the best weights
        are restored.
        """
        return []

    def _after_fit(self, X: object, y: np.ndarray, sample_weight: np.ndarray | None) -> None:
        """Fit what needs the trained network; called once, at the end of ``fit``.

        Runs after training, when ``net_``, ``n_iter_`` and ``best_epoch_`` are set
        (and the training data is no longer referenced by ``net_``), so
        ``self._forward_outputs(X, fn)`` scores the training rows: calibrate the
        predictions, record a training diagnostic. ``X`` is the input as passed to
        ``fit``; ``y`` and ``sample_weight`` are the validated arrays
        ``_prepare_targets`` received (float64, ``y`` 2-D for ``_multi_horizon``
        models; raw weights, not normalised, or None). Set fitted attributes here; the
        return value is ignored. Not called when training raises. Default: nothing.
        """

    # -- helpers for subclasses -------------------------------------------------------
    def _make_bottom(self, spec: EncodedSpec) -> SharedBottom:
        """The shared bottom MLP built from ``hidden_units``/``dropout``."""
        return SharedBottom(spec, tuple(int(u) for u in self.hidden_units), float(self.dropout))

    def _forward_outputs(self, X: object, fn: Callable[[Any], Any]) -> Any:
        """Run the fitted module over ``X`` in bounded batches; apply ``fn`` per batch.

        Validates ``X`` once, encodes it slice by slice (65,536 rows), runs the module
        in eval mode under ``torch.inference_mode`` and returns ``fn(output)``
        concatenated over batches as numpy (an array, or a tuple of arrays when ``fn``
        returns a tuple). ``fn`` sees one batch of module output at a time.
        """
        frame = self._validate_predict_input(X)
        chunks: list[Any] = []
        with torch.inference_mode():
            # encode a slice of rows at a time: besides the validated frame, memory is
            # bounded by the slice, never by n
            for start in range(0, len(frame), _PREDICT_CHUNK_ROWS):
                part = frame.iloc[start : start + _PREDICT_CHUNK_ROWS]
                dataset = TensorDictDataset(
                    self.encoder_.transform_tensors(part, _PRECISIONS[self.precision][1])
                )
                for output in self.net_.forward_iter(dataset, training=False):
                    chunks.append(fn(output))
        if isinstance(chunks[0], tuple):
            return tuple(
                np.concatenate([c[i].cpu().numpy() for c in chunks]) for i in range(len(chunks[0]))
            )
        return np.concatenate([c.cpu().numpy() for c in chunks])

    # -- public API -------------------------------------------------------------------
    def fit(self, X: object, y: object, sample_weight: object = None) -> BaseDeepRegressor:
        """Encode ``X``, build the skorch net around the model's module and train it.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Numeric and categorical features; NaN allowed.
        y : array-like of shape (n_samples,)
            Non-negative customer value (2-D for multi-horizon models).
        sample_weight : array-like of shape (n_samples,), default=None
            Per-customer weights of the loss (normalised to mean 1).

        Returns
        -------
        self
        """
        self._validate_hyperparameters()
        frame, y_arr, sw = self._validate_fit_input(X, y, sample_weight)
        rng = check_random_state(self.random_state)
        torch_seed, shuffle_seed, split_seed = (int(s) for s in rng.randint(0, 2**31 - 1, size=3))

        # fork_rng: weight init and dropout are seeded without clobbering the user's
        # global torch RNG state
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch_seed)
            encoder = TabularEncoder(
                log_transform=self.log_transform,
                min_category_frequency=self.min_category_frequency,
                embedding_dim=self.embedding_dim,
            ).fit(frame, sample_weight=sw)
            torch_dtype, np_dtype = _PRECISIONS[self.precision]
            # the one float32 (or float64) / int64 conversion of the data
            X_t = encoder.transform_tensors(frame, np_dtype)
            del frame
            self.encoder_ = encoder
            prepared = self._prepare_targets(y_arr, sw)
            targets = {"target": _to_tensor_tree(prepared, np_dtype)}
            if sw is not None and not np.all(sw == sw[0]):
                targets["weight"] = torch.from_numpy((sw / sw.mean()).astype(np_dtype))
            train_rows, valid_rows = self._split_rows(y_arr, prepared, split_seed)
            del prepared  # the tensors hold what training needs
            train_ds = TensorDictDataset(X_t, targets, train_rows)
            valid_ds = (
                TensorDictDataset(X_t, targets, valid_rows) if valid_rows is not None else None
            )

            module = self._build_module(encoder.spec_).to(torch_dtype)
            net = self._net_class(
                module=module,
                criterion=self._build_criterion().to(torch_dtype),
                optimizer=self._optimizer_class(),
                lr=float(self.lr),
                max_epochs=int(self.max_epochs),
                batch_size=int(self.batch_size),
                iterator_train=BatchIterator,
                iterator_valid=BatchIterator,
                iterator_train__shuffle=True,
                iterator_train__seed=shuffle_seed,
                iterator_valid__batch_size=max(int(self.batch_size), _PREDICT_BATCH_SIZE),
                train_split=predefined_split(valid_ds) if valid_ds is not None else None,
                callbacks=self._make_callbacks(use_validation=valid_ds is not None),
                predict_nonlinearity=None,
                verbose=int(self.verbose),
                device=self.device,
                **self._optimizer_kwargs(),
            )
            net.fit(train_ds, None)

        # the split holds references to the training tensors; drop it so the fitted
        # model (and its pickle) does not carry the data
        net.train_split = None
        self.best_epoch_ = len(net.history)
        for name, cb in net.callbacks_:
            if name == "early_stopping":
                self.best_epoch_ = int(cb.best_epoch_) or len(net.history)
                cb.best_model_weights_ = None
        self.net_ = net
        self.n_iter_ = len(net.history)
        self._after_fit(X, y_arr, sw)
        return self

    def predict(self, X: object) -> np.ndarray:
        """Expected customer value, computed batch by batch (bounded memory).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            Finite, non-negative float64.
        """
        pred = self._forward_outputs(X, self._output_to_prediction)
        return check_predictions(pred, type(self).__name__)

    # -- internals --------------------------------------------------------------------
    def _optimizer_class(self) -> type[torch.optim.Optimizer]:
        opt = self.optimizer
        if isinstance(opt, str):
            if opt.lower() not in _OPTIMIZERS:
                raise ValueError(
                    f"ltvkit: optimizer must be one of {sorted(_OPTIMIZERS)} or a "
                    f"torch optimizer class, got {opt!r}."
                )
            return _OPTIMIZERS[opt.lower()]
        if inspect.isclass(opt) and issubclass(opt, torch.optim.Optimizer):
            return opt
        raise ValueError(
            f"ltvkit: optimizer must be a name or a torch optimizer class, got {opt!r}."
        )

    def _optimizer_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"optimizer__weight_decay": float(self.weight_decay)}
        if self._optimizer_class() is torch.optim.SGD:
            kwargs["optimizer__momentum"] = 0.9
        return kwargs

    def _split_rows(
        self, y: np.ndarray, targets: np.ndarray | dict[str, np.ndarray], seed: int
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        n = y.shape[0]
        n_valid = math.ceil(self.validation_fraction * n)
        if (
            not self.early_stopping
            or n_valid < _MIN_VALIDATION_ROWS
            or n - n_valid < _MIN_TRAIN_ROWS
        ):
            return None, None
        strata = self._validation_strata(y, targets)
        if strata is not None:
            _, counts = np.unique(strata, return_counts=True)
            if len(counts) < 2 or counts.min() < 2:
                strata = None
        train, valid = train_test_split(
            np.arange(n), test_size=n_valid, random_state=seed, stratify=strata
        )
        # sorted rows: batches of the validation set read memory in order
        return torch.from_numpy(np.sort(train)), torch.from_numpy(np.sort(valid))

    def _make_callbacks(self, *, use_validation: bool) -> list[tuple[str, Callback]]:
        sink = print if self.verbose else _silent
        cbs: list[tuple[str, Callback]] = [("finite_loss", _FiniteLossGuard(type(self).__name__))]
        # the model's own callbacks first: early stopping ends training by raising in
        # its on_epoch_end, which would skip theirs in the last epoch
        cbs.extend(self._model_callbacks())
        if use_validation:
            cbs.append(
                (
                    "early_stopping",
                    EarlyStopping(
                        monitor="valid_loss",
                        patience=int(self.patience),
                        threshold=1e-4,
                        threshold_mode="abs",
                        load_best=True,
                        sink=sink,
                    ),
                )
            )
        if self.lr_schedule == "cosine":
            cbs.append(
                (
                    "lr_scheduler",
                    LRScheduler(
                        policy=torch.optim.lr_scheduler.CosineAnnealingLR,
                        T_max=int(self.max_epochs),
                    ),
                )
            )
        if self.gradient_clip is not None:
            cbs.append(
                (
                    "gradient_clip",
                    GradientNormClipping(gradient_clip_value=float(self.gradient_clip)),
                )
            )
        if self.verbose:
            cbs.append(("progress_bar", ProgressBar()))
        for cb in copy.deepcopy(list(self.callbacks or [])):
            cbs.append(cb if isinstance(cb, tuple) else (_callback_name(cb, cbs), cb))
        return cbs

    def _params_frame_index(self, X: object, n: int) -> pd.Index:
        return X.index if isinstance(X, pd.DataFrame) else pd.RangeIndex(n)


def _callback_name(cb: Callback, existing: list[tuple[str, Callback]]) -> str:
    base = type(cb).__name__
    names = {name for name, _ in existing}
    name, i = base, 1
    while name in names:
        i += 1
        name = f"{base}_{i}"
    return name


def _check_int(value: object, name: str, low: int) -> None:
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, numbers.Integral)
        or value < low
    ):
        raise ValueError(f"ltvkit: {name} must be an integer >= {low}, got {value!r}.")


def _check_float(
    value: object,
    name: str,
    low: float | None,
    high: float | None,
    *,
    left_open: bool = False,
    right_open: bool = False,
) -> None:
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, (bool, np.bool_))
        and math.isfinite(value)
    )
    if ok and low is not None:
        ok = value > low if left_open else value >= low
    if ok and high is not None:
        ok = value < high if right_open else value <= high
    if not ok:
        lo = "(" if left_open else "["
        hi = ")" if right_open else "]"
        rng = (
            f"{lo}{low if low is not None else '-inf'}, {high if high is not None else 'inf'}{hi}"
        )
        raise ValueError(f"ltvkit: {name} must be a number in {rng}, got {value!r}.")
