"""The shared deep estimator: :class:`BaseDeepRegressor` and its skorch plumbing.

A deep ltvkit model is a plain sklearn estimator (``__init__`` only stores
hyperparameters). Its ``fit`` validates the input (``ltvkit.base``), encodes it once
into float32/int64 tensors (:class:`~ltvkit.nn._encoder.TabularEncoder`), builds a
skorch :class:`LTVNeuralNet` around the model's torch module and loss, trains it and
keeps it as ``net_``. skorch owns the training loop, callbacks and history; this file
only wires data, seeds, early stopping and the prediction path. See ``docs/nn.md``.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
import numbers
import textwrap
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNet
from skorch.callbacks import (
    Callback,
    EarlyStopping,
    GradientNormClipping,
    LRScheduler,
    ProgressBar,
)
from skorch.dataset import unpack_data
from skorch.helper import predefined_split
from skorch.history import History
from skorch.utils import to_tensor
from torch import nn

from ltvkit import distributed as _dist
from ltvkit._utils import Boolean, Instance, Int, Options, Real, Units
from ltvkit.base import (
    LTVRegressorMixin,
    SpendResiduals,
    _ArrowRows,
    _is_dataset,
    check_predictions,
    validate_ltv_target,
)
from ltvkit.nn._data_parallel import (
    DataParallel,
    ShardedStreamingBatchIterator,
    shard_validation,
)
from ltvkit.nn._encoder import EncodedSpec, TabularEncoder
from ltvkit.nn._layers import SharedBottom

__all__ = [
    "SHARED_PARAMS",
    "BaseDeepRegressor",
    "BatchIterator",
    "LTVNeuralNet",
    "PreparedTargets",
    "TensorDictDataset",
]

_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}

#: ``precision`` -> (torch dtype, numpy dtype) of the network's parameters and inputs.
_PRECISIONS: dict[str, tuple[torch.dtype, type[np.floating]]] = {
    "float32": (torch.float32, np.float32),
    "float64": (torch.float64, np.float64),
}


@dataclass(frozen=True)
class SharedParam:
    """A hyperparameter every deep model has: its constraints and its documentation."""

    constraints: list[Any]
    type_text: str
    doc: str


#: Hyperparameters every deep model has, with the same name, meaning and checks; the
#: one source of their documentation (each model's docstring gets it, with the model's
#: own defaults). A subclass must list all of them in its ``__init__`` signature
#: (checked at class creation).
SHARED_PARAM_SPECS: dict[str, SharedParam] = {
    "hidden_units": SharedParam(
        [Units()], "tuple of int", "Widths of the shared bottom MLP (``()``: no hidden layer)."
    ),
    "dropout": SharedParam(
        [Real(0.0, 1.0, closed="left")], "float", "Dropout after each hidden layer."
    ),
    "embedding_dim": SharedParam(
        [Int(1), None],
        "int or None",
        "Width of every categorical embedding; None: ``min(50, ceil(cardinality / 2))``.",
    ),
    "log_transform": SharedParam(
        [Options("auto", True, False)],
        '{"auto", True, False}',
        "``log1p`` on skewed non-negative numeric columns before standardizing.",
    ),
    "min_category_frequency": SharedParam(
        [Int(1)],
        "int",
        'Rarer categories share the "other" embedding slot with unseen/missing ones.',
    ),
    "batch_size": SharedParam([Int(1)], "int", "Training batch size."),
    "max_epochs": SharedParam([Int(1)], "int", "Upper bound on training epochs."),
    "learning_rate": SharedParam(
        [Real(0.0, None, closed="neither")], "float", "Learning rate of the optimizer."
    ),
    "weight_decay": SharedParam([Real(0.0)], "float", "Passed to the optimizer."),
    "optimizer": SharedParam(
        [
            Options(*_OPTIMIZERS),
            Instance(torch.optim.Optimizer, kind="subclass", text="a torch optimizer class"),
        ],
        '{"adam", "adamw", "sgd", "rmsprop"} or torch optimizer class',
        '``"sgd"`` uses momentum 0.9.',
    ),
    "learning_rate_schedule": SharedParam(
        [Options("cosine", "none"), None],
        '{"cosine", "none"} or None',
        "Cosine annealing of the learning rate over ``max_epochs`` (stepped per epoch).",
    ),
    "early_stopping": SharedParam(
        [Boolean()],
        "bool",
        "Hold out ``validation_fraction`` of the rows (stratified on ``y > 0``), stop "
        "after ``patience`` epochs without improvement of the validation loss and "
        "restore the best weights. Skipped automatically when the split would leave "
        "fewer than 20 rows on either side.",
    ),
    "validation_fraction": SharedParam(
        [Real(0.0, 1.0, closed="neither")], "float", "Share of rows held out for early stopping."
    ),
    "patience": SharedParam(
        [Int(1)], "int", "Epochs without improvement before early stopping ends training."
    ),
    "gradient_clip": SharedParam(
        [Real(0.0, None, closed="neither"), None],
        "float or None",
        "Clip the global gradient norm (skorch ``GradientNormClipping``).",
    ),
    "random_state": SharedParam(
        [Int(), Instance(np.random.RandomState), None],
        "int, RandomState or None",
        "Seeds weight init, dropout, shuffling and the validation split; an int gives "
        "bitwise-identical predictions on one machine. The global torch RNG is left "
        "untouched.",
    ),
    "verbose": SharedParam(
        [Int(0)], "int", "0: silent; 1: skorch's progress bar and epoch table."
    ),
    "callbacks": SharedParam(
        [Instance(list, tuple), None],
        "list of skorch callbacks or (name, callback) tuples, or None",
        "Extra callbacks, deep-copied at ``fit`` (the originals are never mutated; the "
        "fitted ones are in ``net_.callbacks_``).",
    ),
    "device": SharedParam([Instance(str, torch.device)], "str", "torch device."),
    "precision": SharedParam(
        [Options(*_PRECISIONS)],
        '{"float32", "float64"}',
        'Floating-point type of the network\'s weights and inputs. ``"float32"`` is what '
        'deep learning normally uses and about twice as fast; ``"float64"`` makes '
        "results far less sensitive to summation order, e.g. a row with "
        "``sample_weight=k`` and ``k`` repeated rows then give predictions equal to "
        "~1e-12 instead of to the last float32 bit (which differs between CPUs). "
        "Predictions are float64 either way.",
    ),
}

#: The names of the shared hyperparameters, in their documentation order.
SHARED_PARAMS: tuple[str, ...] = tuple(SHARED_PARAM_SPECS)

#: Where a deep model's docstring gets the shared hyperparameters' documentation.
SHARED_PARAMS_MARKER = "{shared_params}"

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


#: Key of a training batch's ``X`` dict that holds what the loss needs (``"target"``,
#: ``"weight"``); the net strips it before calling the module.
TARGETS_KEY = "_ltvkit_targets"


class TensorDictDataset(torch.utils.data.Dataset):
    """A dataset over pre-built tensors that is indexed a whole batch at a time.

    ``dataset[idx]`` with a slice or an int64 index tensor returns ``(X_batch,
    y_batch)``: ``X`` is a dict of tensors (the module's keyword arguments) and ``y`` the
    customers' value (a tensor, as skorch and its scoring callbacks expect) or None.
    ``targets`` (a nested dict of tensors: what the loss receives, e.g. bucket ids and
    sample weights) rides in ``X_batch`` under :data:`TARGETS_KEY`. ``rows`` restricts
    the dataset to a subset of rows without copying the data (the train/validation
    split).

    Examples
    --------
    >>> ds = TensorDictDataset({"x_num": torch.zeros(5, 2)}, torch.arange(5.0))
    >>> xb, yb = ds[torch.tensor([0, 3])]
    >>> xb["x_num"].shape, yb.tolist()
    (torch.Size([2, 2]), [0.0, 3.0])
    """

    def __init__(
        self,
        X: dict[str, torch.Tensor],
        y: torch.Tensor | None = None,
        rows: torch.Tensor | None = None,
        targets: dict[str, Any] | None = None,
    ):
        self.X = X
        self.y = y
        self.rows = rows
        self.targets = targets
        self._n = int(rows.shape[0]) if rows is not None else _tree_len(X)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, idx: slice | torch.Tensor) -> tuple[dict[str, Any], Any]:
        if isinstance(idx, numbers.Integral):
            idx = slice(int(idx), int(idx) + 1)
        if self.rows is not None:
            idx = self.rows[idx] if isinstance(idx, slice) else self.rows.index_select(0, idx)
        X = _index_tree(self.X, idx)
        if self.targets is not None:
            X[TARGETS_KEY] = _index_tree(self.targets, idx)
        return X, _index_tree(self.y, idx)


class BatchIterator:
    """Minimal DataLoader replacement: yields whole batches by tensor indexing.

    No per-row ``__getitem__`` and no collate step, which is what makes skorch's
    training loop cost about the same as a hand-written one. Shuffling uses its own
    ``torch.Generator`` seeded with ``seed``, so it does not touch the global RNG.

    Under data-parallel training (``world_size > 1``) every rank draws the same
    shuffled order (same ``seed``) and cuts it into the same global batches of
    ``batch_size`` rows; rank ``r`` yields its balanced share of each global batch
    (:func:`ltvkit.distributed.shard_bounds`), so the ranks together see exactly the
    batches one process would. A last global batch with fewer rows than ranks is
    skipped (its rows are reshuffled into other batches the next epoch).

    Parameters
    ----------
    dataset : TensorDictDataset
    batch_size : int
    shuffle : bool, default=False
    seed : int or None, default=None
    rank : int, default=0
    world_size : int, default=1

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
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.rank = int(rank)
        self.world_size = int(world_size)
        self._generator = torch.Generator()
        if seed is not None:
            self._generator.manual_seed(int(seed))
        else:
            self._generator.seed()

    def __len__(self) -> int:
        n = len(self.dataset)
        full, tail = divmod(n, self.batch_size)
        return full + (1 if tail >= max(self.world_size, 1) else 0)

    def __iter__(self) -> Iterator[tuple[dict[str, torch.Tensor], Any]]:
        n = len(self.dataset)
        order = torch.randperm(n, generator=self._generator) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            if self.world_size > 1:
                if stop - start < self.world_size:
                    continue  # a rank would get no row: every rank skips the batch
                lo, hi = _dist.shard_bounds(stop - start, self.rank, self.world_size)
                start, stop = start + lo, start + hi
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
            "fit diverged. Likely causes: a learning rate that is too high "
            f"(learning_rate={net.lr:g}), extreme feature values (outliers, unscaled spend; "
            "keep log_transform='auto'), or extreme targets. Try a lower learning_rate, "
            "gradient_clip=1.0 or some weight_decay."
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
    """skorch ``NeuralNet`` for ltvkit's batches and predictions.

    A training batch is ``(X, y)``: ``X`` the module's inputs plus, under
    :data:`TARGETS_KEY`, what the loss needs (``{"target", "weight"}``); ``y`` the
    customers' value. ``get_loss`` calls the criterion as ``criterion(output, target)``,
    which must return one loss per sample (shape ``(n,)``), and averages it with the
    sample weights (normalised to mean 1). ``predict`` returns expected values, so
    skorch's ``EpochScoring`` with an ltvkit scorer logs a validation metric per epoch.

    Parameters
    ----------
    target_inputs : tuple of str, default=()
        Entries of a training batch's targets that the module's ``forward`` also
        receives, as keyword arguments, in training and validation steps (e.g. the
        true bucket of a model conditioned on it: teacher forcing). Prediction passes
        do not have targets. A model sets this with its ``_target_inputs`` attribute.
    output_to_prediction : callable or None, default=None
        Maps a batch of module output to expected values (the estimator's
        ``_output_to_prediction``); used by ``predict`` and ``predict_proba``.
    predict_forward_kwargs : dict or None, default=None
        Keyword arguments of the module's ``forward`` in a prediction pass (the
        estimator's ``_predict_forward_kwargs()``).
    *args, **kwargs
        skorch ``NeuralNet`` arguments.
    """

    def __init__(
        self,
        *args: Any,
        target_inputs: tuple[str, ...] = (),
        output_to_prediction: Callable[[Any], torch.Tensor] | None = None,
        predict_forward_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.target_inputs = tuple(target_inputs)
        self.output_to_prediction = output_to_prediction
        self.predict_forward_kwargs = dict(predict_forward_kwargs or {})

    # skorch pickles the fitted module_/criterion_ in a stream of their own, apart from
    # the rest of the net; module/criterion (the instances fit passed in, the very same
    # objects) would then be stored a second time. Store them once.
    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        shared = [
            name
            for name in ("module", "criterion")
            if isinstance(self.__dict__.get(name), nn.Module)
            and self.__dict__.get(name) is self.__dict__.get(name + "_")
        ]
        for name in shared:
            state[name] = None
        state["_ltvkit_same_as_fitted"] = shared
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        shared = state.pop("_ltvkit_same_as_fitted", [])
        super().__setstate__(state)
        for name in shared:
            setattr(self, name, getattr(self, name + "_"))

    def get_default_callbacks(self) -> list[tuple[str, Callback]]:
        callbacks = list(super().get_default_callbacks())
        if not self.verbose:
            # verbose=0 prints nothing, so the epoch table is not even formatted
            callbacks = [(name, cb) for name, cb in callbacks if name != "print_log"]
        return callbacks

    def infer(self, x: Any, **fit_params: Any) -> Any:
        if isinstance(x, dict) and TARGETS_KEY in x:
            # a training / validation batch: the loss's targets are not module inputs,
            # except those the model asks for (teacher forcing)
            targets = x[TARGETS_KEY]["target"]
            x = {k: v for k, v in x.items() if k != TARGETS_KEY}
            x.update({k: targets[k] for k in self.target_inputs})
        # batches are dicts of tensors built on the CPU already; skip skorch's per-batch
        # to_tensor/merge round trip in the common case
        if isinstance(x, dict) and str(self.device) == "cpu":
            return self.module_(**x, **fit_params)
        return super().infer(x, **fit_params)

    def predict_batches(self, dataset: Any, **forward_kwargs: Any) -> Iterator[Any]:
        """Module output per batch of ``dataset``, in eval mode, without gradients.

        ``forward_kwargs`` are passed to the module's ``forward`` (e.g. which output
        a model computes).
        """
        self.check_is_fitted()
        self._set_training(False)
        with torch.inference_mode():
            for batch in self.get_iterator(dataset, training=False):
                Xi, _ = unpack_data(batch)
                yield self.infer(Xi, **forward_kwargs)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Expected values of the rows of ``X`` (a dataset of encoded tensors).

        A prediction pass, as the estimator's ``predict`` makes it (no targets reach the
        module, ``predict_forward_kwargs`` do), not the cached validation outputs: a
        model may compute its prediction differently from its training output.
        """
        if self.output_to_prediction is None:
            return super().predict_proba(X)
        self.check_is_fitted()
        self._set_training(False)
        preds = []
        with torch.inference_mode():
            for batch in self.get_iterator(X, training=False):
                Xi, _ = unpack_data(batch)
                Xi = {k: v for k, v in Xi.items() if k != TARGETS_KEY}
                output = self.infer(Xi, **self.predict_forward_kwargs)
                preds.append(self.output_to_prediction(output).cpu().numpy())
        return np.concatenate(preds)

    def predict(self, X: Any) -> np.ndarray:
        """Expected values of the rows of ``X`` (what ltvkit's scorers score)."""
        return self.predict_proba(X)

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
        targets = X[TARGETS_KEY]
        if str(self.device) != "cpu":  # batches are built on the CPU
            targets = to_tensor(targets, device=self.device)
        loss = self.criterion_(y_pred, targets["target"])
        if loss.ndim != 1:
            raise ValueError(
                "ltvkit: a deep model's criterion must return one loss per sample (shape "
                f"(n,)), got shape {tuple(loss.shape)}."
            )
        weight = targets.get("weight")
        if weight is not None:
            loss = loss * weight
        return loss.mean()


@dataclass
class PreparedTargets:
    """What ``_prepare_targets`` hands to training and to the model's builders.

    Parameters
    ----------
    targets : ndarray or dict of ndarray
        One row per training sample: what the criterion receives as ``target`` (floats
        become float tensors of the model's ``precision``, integers int64).
    info : object, default=None
        Label-derived constants the module and the loss need (bucket edges, starting
        values of output biases...), passed to ``_build_module(spec, info)`` and
        ``_build_criterion(info)``. Kept on the fitted model as ``prepared_info_``, so
        ``ltvkit.load`` can rebuild the network: keep it small (constants, not per-row
        arrays) and made of plain data (numbers, arrays, tuples, dicts, dataclasses).

    Examples
    --------
    >>> PreparedTargets(np.zeros(3), info={"scale": 2.0}).info["scale"]
    2.0
    """

    targets: np.ndarray | dict[str, np.ndarray]
    info: Any = None


# -- the estimator -----------------------------------------------------------------------
class BaseDeepRegressor(LTVRegressorMixin, BaseEstimator):
    """Base class of ltvkit's deep LTV models (ZILN, OptDist, MDME/ODMN, CC-OR-Net...).

    Not used directly. A model subclasses it, lists every name in
    :data:`SHARED_PARAMS` plus its own hyperparameters in its ``__init__`` signature
    (keyword-only), stores them with ``self._store_params(locals())``, declares the
    allowed values of its own hyperparameters in ``_parameter_constraints`` (merged
    with the shared ones) and implements three hooks:

    - ``_build_module(spec, info) -> nn.Module``: the torch module. Its ``forward`` takes
      ``x_num`` and ``x_cat`` (see :class:`~ltvkit.nn._layers.SharedBottom`, built by
      :meth:`_make_bottom`) and returns a tensor, tuple or dict.
    - ``_build_criterion(info) -> nn.Module``: called as ``criterion(output, target)``,
      returns the per-sample loss, shape ``(n,)``.
    - ``_output_to_prediction(output) -> Tensor``: expected value per customer.

    Optional hooks: ``_prepare_targets(y, sample_weight) -> PreparedTargets`` (the
    targets the criterion sees, e.g. bucket ids, and the ``info`` the builders get;
    called once in ``fit``), ``_check_param_combinations()``,
    ``_validation_strata(y, targets)``, ``_model_callbacks()``,
    ``_after_fit(X, y, sample_weight)`` (fitted attributes that need the trained
    network) and the ``_target_inputs`` attribute (target entries the module's
    ``forward`` also receives in training). A model does not override ``fit``.
    ``docs/nn.md`` walks through a complete model.

    Shared hyperparameters
    ----------------------
    {shared_params}

    Attributes
    ----------
    net_ : LTVNeuralNet
        The trained skorch net; ``net_.history`` holds the training curves. The
        optimizer's state (Adam's moments) is dropped after training, so the fitted
        model weighs about its weights.
    encoder_ : TabularEncoder
        The fitted input encoder (``encoder_.spec_`` describes the encoded input).
    prepared_info_ : object
        The ``PreparedTargets.info`` of ``fit``: what ``_build_module`` and
        ``_build_criterion`` were given, kept so that ``ltvkit.load`` rebuilds the
        network from the saved weights.
    n_iter_ : int
        Number of epochs trained.
    best_epoch_ : int
        Epoch whose weights were kept (the last one without early stopping).
    target_ndim_ : int
        1 or 2: the dimensionality of the ``y`` passed to ``fit``.
    """

    #: Target entries passed to the module's ``forward`` in training and validation.
    _target_inputs: ClassVar[tuple[str, ...]] = ()
    # predict-type methods take a ParquetDataset's rows as Arrow (see _module_outputs)
    _reads_arrow: ClassVar[bool] = True

    _parameter_constraints: ClassVar[dict[str, list]] = {
        name: spec.constraints for name, spec in SHARED_PARAM_SPECS.items()
    }

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
        if cls.__doc__ and SHARED_PARAMS_MARKER in cls.__doc__:
            cls.__doc__ = cls.__doc__.replace(
                SHARED_PARAMS_MARKER, _shared_params_doc(cls.__doc__, sig)
            )

    def _store_params(self, params: Mapping[str, Any]) -> None:
        """Store the ``__init__`` arguments as attributes (call with ``locals()``)."""
        for name in self._get_param_names():
            setattr(self, name, params[name])

    # -- hooks ------------------------------------------------------------------------
    def _build_module(self, spec: EncodedSpec, info: Any) -> nn.Module:  # pragma: no cover
        """Return the torch module (``forward(x_num, x_cat)``). Required."""
        raise NotImplementedError

    def _build_criterion(self, info: Any) -> nn.Module:  # pragma: no cover - abstract
        """Return ``criterion(output, target) -> (n,)`` per-sample losses. Required."""
        raise NotImplementedError

    def _output_to_prediction(self, output: Any) -> torch.Tensor:  # pragma: no cover
        """Map a batch of module output to expected values. Required."""
        raise NotImplementedError

    def _predict_forward_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the module's ``forward`` in a prediction pass.

        ``predict`` and the net's own ``predict`` (used by skorch's scoring callbacks
        during training) pass them; e.g. which value a model computes. Default: none.
        """
        return {}

    def _prepare_targets(self, y: np.ndarray, sample_weight: np.ndarray | None) -> PreparedTargets:
        """Targets the criterion receives, and the ``info`` the builders need.

        Called once in ``fit``, after validation and before ``_build_module``, with the
        validated ``y`` (float64; 2-D for multi-horizon models) and sample weights (or
        None). It may set fitted attributes that predictions need (e.g. bucket edges);
        everything the module and the loss only need to be built goes in
        ``PreparedTargets.info``. Default: ``y`` itself, no info.
        """
        return PreparedTargets(y)

    def _validation_strata(
        self, y: np.ndarray, targets: np.ndarray | dict[str, np.ndarray]
    ) -> np.ndarray | None:
        """Labels to stratify the validation split on (default: ``y > 0``).

        Called once in ``fit`` when early stopping splits the rows, with the validated
        ``y`` and the ``targets`` of :class:`PreparedTargets` (numpy, all ``n_samples``
        rows). None: a random split.
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

    def _forward_outputs(self, X: object, fn: Callable[[Any], Any], **forward_kwargs: Any) -> Any:
        """Run the fitted module over ``X`` in bounded batches; apply ``fn`` per batch.

        Validates ``X`` once, encodes it slice by slice (65,536 rows), runs the module
        in eval mode under ``torch.inference_mode`` (``forward_kwargs`` go to its
        ``forward``) and returns ``fn(output)`` concatenated over batches as numpy (an
        array, or a tuple of arrays when ``fn`` returns a tuple). ``fn`` sees one batch
        of module output at a time.
        """
        # a fit that raised in training leaves schema_ but no net_: not fitted
        check_is_fitted(self, "net_")
        shared = self.__dict__.get("_shared_outputs")
        if shared is not None and shared[0] is X:
            # several outputs of one input (score_dataset): one forward pass for all
            key = repr(sorted(forward_kwargs.items()))
            if key not in shared[1]:
                shared[1][key] = list(self._module_outputs(X, forward_kwargs))
            outputs: Any = shared[1][key]
        else:
            outputs = self._module_outputs(X, forward_kwargs)
        with torch.inference_mode():
            chunks = [fn(output) for output in outputs]
        if isinstance(chunks[0], tuple):
            return tuple(
                np.concatenate([c[i].cpu().numpy() for c in chunks]) for i in range(len(chunks[0]))
            )
        return np.concatenate([c.cpu().numpy() for c in chunks])

    def _module_outputs(self, X: object, forward_kwargs: dict[str, Any]) -> Iterator[Any]:
        """The module's output, batch by batch, over the validated and encoded ``X``."""
        np_dtype = _PRECISIONS[self.precision][1]
        if _is_dataset(X):  # a ParquetDataset: one record batch at a time, as Arrow
            for batch in X.iter_batches(X.features):
                yield from self._module_outputs(_ArrowRows(batch), forward_kwargs)
            return
        if isinstance(X, _ArrowRows):  # a record batch of a ParquetDataset
            encoded = self._encode_arrow(X.batch, np_dtype)
            if encoded is not None:
                dataset = TensorDictDataset({k: torch.from_numpy(v) for k, v in encoded.items()})
                with torch.inference_mode():
                    yield from self.net_.predict_batches(dataset, **forward_kwargs)
                return
            X = X.frame()  # another column type, or a value to refuse: the checks below
        frame = self._validate_predict_input(X)
        parts = (
            frame.iloc[start : start + _PREDICT_CHUNK_ROWS]
            for start in range(0, len(frame), _PREDICT_CHUNK_ROWS)
        )
        # encode a slice of rows at a time: besides the validated frame, memory is
        # bounded by the slice, never by n
        for part in parts:
            dataset = TensorDictDataset(self.encoder_.transform_tensors(part, np_dtype))
            with torch.inference_mode():
                yield from self.net_.predict_batches(dataset, **forward_kwargs)

    def _encode_arrow(self, batch: Any, np_dtype: type) -> dict[str, np.ndarray] | None:
        """The encoder's arrays for the rows of a record batch, straight from its Arrow
        columns (no DataFrame), when that gives the DataFrame path's answer: the
        columns the model was fitted on, in order, of types read exactly, and no value
        the input checks refuse. None otherwise (the caller takes the DataFrame path,
        whose checks raise the usual errors)."""
        from ltvkit.nn._streaming import encode_arrow

        names = getattr(self, "feature_names_in_", None)
        if names is None or list(batch.schema.names) != list(names):
            return None
        return encode_arrow(batch, self.schema_, self.encoder_, np_dtype)

    @contextlib.contextmanager
    def _sharing_outputs(self, X: object) -> Iterator[None]:
        """Within the block, predict-type methods on this very ``X`` share the module's
        forward passes (the outputs of one pass are kept, per ``forward_kwargs``)."""
        self.__dict__["_shared_outputs"] = (X, {})
        try:
            yield
        finally:
            self.__dict__.pop("_shared_outputs", None)

    # -- public API -------------------------------------------------------------------
    def fit(
        self,
        X: object,
        y: object,
        sample_weight: object = None,
        *,
        validation_data: tuple | None = None,
    ) -> BaseDeepRegressor:
        """Encode ``X``, build the skorch net around the model's module and train it.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Numeric and categorical features; NaN allowed.
        y : array-like of shape (n_samples,)
            Non-negative customer value (2-D for multi-horizon models).
        sample_weight : array-like of shape (n_samples,), default=None
            Per-customer weights of the loss (normalised to mean 1).
        validation_data : tuple (X_val, y_val[, sample_weight_val]) or None, default=None
            Your own validation set, instead of holding out ``validation_fraction`` of
            ``X``: every row of ``X`` then trains, the validation loss (``valid_loss``)
            and any ``EpochScoring`` callback are computed on it each epoch, and early
            stopping (if on) watches it. Its rows do not count in any statistic learnt
            from the training labels (bucket edges, starting values).

        Returns
        -------
        self

        Examples
        --------
        >>> from ltvkit.datasets import make_ltv
        >>> from ltvkit.nn import ZILNRegressor
        >>> X, y = make_ltv(n_samples=400, random_state=0)
        >>> model = ZILNRegressor(max_epochs=3, random_state=0)
        >>> model = model.fit(X[:300], y[:300], validation_data=(X[300:], y[300:]))
        >>> len(model.net_.history[:, "valid_loss"])
        3
        """
        self._validate_params()
        frame, y_arr, sw = self._validate_fit_input(X, y, sample_weight)
        valid = self._validate_validation_data(validation_data, y_arr)
        rng = check_random_state(self.random_state)
        torch_seed, shuffle_seed, split_seed = (int(s) for s in rng.randint(0, 2**31 - 1, size=3))
        world = self._join_process_group(y_arr, sw)
        if world > 1:  # rank 0's seeds: the same split, order and weights on every rank
            torch_seed, shuffle_seed, split_seed = _dist.broadcast_object(
                (torch_seed, shuffle_seed, split_seed)
            )

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
            n = len(frame)
            del frame
            self.encoder_ = encoder
            y_all, w_prepare = y_arr, sw
            w_loss = None if sw is None else sw / sw.mean()
            if valid is not None:
                frame_v, y_v, w_v = valid
                X_v = encoder.transform_tensors(frame_v, np_dtype)
                X_t = {k: torch.cat([X_t[k], X_v[k]]) for k in X_t}
                y_all = np.concatenate([y_arr, y_v])
                # weight 0 = the row does not count in what _prepare_targets learns
                w_prepare = np.concatenate([np.ones(n) if sw is None else sw, np.zeros(len(y_v))])
                w_loss = _join_loss_weights(sw, w_v, n, len(y_v))
            prepared = self._prepare_targets(y_all, w_prepare)
            if not isinstance(prepared, PreparedTargets):
                raise TypeError(
                    f"{type(self).__name__}._prepare_targets must return PreparedTargets, "
                    f"got {type(prepared).__name__}."
                )
            targets = {"target": _to_tensor_tree(prepared.targets, np_dtype)}
            if w_loss is not None and not np.all(w_loss == w_loss[0]):
                targets["weight"] = torch.from_numpy(w_loss.astype(np_dtype))
            if valid is None:
                train_rows, valid_rows = self._split_rows(y_arr, prepared.targets, split_seed)
            else:
                train_rows = torch.arange(n)
                valid_rows = torch.arange(n, len(y_all))
            # the customers' value, as skorch (and its scoring callbacks) see it
            y_t = _to_tensor_tree(y_all, np.float64)
            train_ds = TensorDictDataset(X_t, y_t, train_rows, targets)
            valid_ds = (
                TensorDictDataset(X_t, y_t, valid_rows, targets)
                if valid_rows is not None
                else None
            )

            module = self._build_module(encoder.spec_, prepared.info).to(torch_dtype)
            criterion = self._build_criterion(prepared.info).to(torch_dtype)
            info = prepared.info
            del prepared  # the tensors hold what training needs
            if world > 1:
                valid_ds = shard_validation(valid_ds)
                # the same weights everywhere (broadcast at train begin), but each
                # rank's own dropout masks
                torch.manual_seed(torch_seed + _dist.rank())
            net = self._make_net(
                module,
                criterion,
                valid_ds=valid_ds,
                shuffle_seed=shuffle_seed,
                callbacks=self._make_callbacks(
                    early_stop=valid_ds is not None and bool(self.early_stopping),
                    data_parallel=world > 1,
                ),
                world=world,
            )
            net.fit(train_ds, None)

        self._keep_net(net, info)
        self._after_fit(X, y_arr, sw)
        if _uses_generic_quantiles(type(self)):
            self._fit_generic_quantiles(X, y_arr, sw, validation_data, valid, valid_rows)
        return self

    def _keep_net(self, net: LTVNeuralNet, info: Any) -> None:
        """Keep the trained net and what it learnt, without the training data."""
        # the split holds references to the training tensors; drop it so the fitted
        # model (and its pickle) does not carry the data
        net.train_split = None
        self.best_epoch_ = len(net.history)
        for name, cb in net.callbacks_:
            if name == "early_stopping":
                self.best_epoch_ = int(cb.best_epoch_) or len(net.history)
                cb.best_model_weights_ = None
        _drop_optimizer_state(net)
        self.net_ = net
        self.prepared_info_ = info
        self.n_iter_ = len(net.history)

    def _fit_dataset(
        self,
        dataset: Any,
        sample_weight: object = None,
        *,
        validation_data: tuple | None = None,
        shuffle_buffer_rows: int = 262_144,
    ) -> BaseDeepRegressor:
        """``fit`` on an :class:`ltvkit.io.ParquetDataset`, streaming (bounded memory).

        One pass learns the schema, the encoder's statistics and reads the target (the
        one full-length array held: 8 bytes a row, and what ``_prepare_targets``
        returns); then each epoch streams the record batches (see
        :mod:`ltvkit.nn._streaming`). Early stopping holds out the rows whose position
        hashes below ``validation_fraction`` (not stratified). ``shuffle_buffer_rows``:
        rows shuffled together (a value >= the number of rows is a full shuffle).
        """
        from ltvkit.nn._streaming import (
            StreamingBatchIterator,
            StreamingSource,
            scan_dataset,
            validation_mask,
        )

        if sample_weight is not None or validation_data is not None:
            raise ValueError(
                "ltvkit: sample_weight and validation_data are not supported with a "
                "ParquetDataset yet; early stopping holds out validation_fraction of its rows."
            )
        if int(shuffle_buffer_rows) < 1:
            raise ValueError(
                f"ltvkit: shuffle_buffer_rows must be >= 1, got {shuffle_buffer_rows!r}."
            )
        self._validate_params()
        world = self._join_process_group(None, None, dataset=dataset)
        if world > 1:  # the statistics pass once, on rank 0; its result goes to every rank
            scan = _dist.broadcast_object(scan_dataset(dataset) if _dist.rank() == 0 else None)
        else:
            scan = scan_dataset(dataset)
        y_arr = validate_ltv_target(scan.y, multi_horizon=self._multi_horizon)
        del scan.y  # validate_ltv_target keeps the float64 array as it is
        self.schema_ = scan.schema
        self.n_features_in_ = len(dataset.features)
        self.feature_names_in_ = np.asarray(dataset.features, dtype=object)
        self.target_ndim_ = 1 if isinstance(dataset.target, str) else 2
        rng = check_random_state(self.random_state)
        torch_seed, shuffle_seed, split_seed = (int(s) for s in rng.randint(0, 2**31 - 1, size=3))
        if world > 1:  # rank 0's seeds: the same validation rows and row-group order
            torch_seed, shuffle_seed, split_seed = _dist.broadcast_object(
                (torch_seed, shuffle_seed, split_seed)
            )
        n = len(y_arr)
        fraction = float(self.validation_fraction) if self.early_stopping else None
        n_valid = 0
        if fraction is not None:
            n_valid = sum(
                int(validation_mask(f.start, f.num_rows, fraction, split_seed).sum())
                for f in dataset.fragments
            )
            if n_valid < _MIN_VALIDATION_ROWS or n - n_valid < _MIN_TRAIN_ROWS:
                fraction, n_valid = None, 0

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch_seed)
            encoder = TabularEncoder(
                log_transform=self.log_transform,
                min_category_frequency=self.min_category_frequency,
                embedding_dim=self.embedding_dim,
            ).fit_statistics(scan.stats, scan.schema.categories)
            del scan
            self.encoder_ = encoder
            torch_dtype, np_dtype = _PRECISIONS[self.precision]
            prepared = self._prepare_targets(y_arr, None)
            if not isinstance(prepared, PreparedTargets):
                raise TypeError(
                    f"{type(self).__name__}._prepare_targets must return PreparedTargets, "
                    f"got {type(prepared).__name__}."
                )
            targets = {"target": _to_tensor_tree(prepared.targets, np_dtype)}
            info = prepared.info
            del prepared

            common = (
                dataset,
                self.schema_,
                encoder,
                np_dtype,
                targets,
                y_arr,
                fraction,
                split_seed,
            )
            train_side = "train" if fraction is not None else "all"
            train_ds = StreamingSource(*common, train_side, n - n_valid)
            valid_ds = StreamingSource(*common, "valid", n_valid) if fraction is not None else None
            module = self._build_module(encoder.spec_, info).to(torch_dtype)
            criterion = self._build_criterion(info).to(torch_dtype)
            if world > 1:
                torch.manual_seed(torch_seed + _dist.rank())  # each rank's dropout masks
            net = self._make_net(
                module,
                criterion,
                valid_ds=valid_ds,
                shuffle_seed=shuffle_seed,
                callbacks=self._make_callbacks(
                    early_stop=valid_ds is not None, data_parallel=world > 1
                ),
                iterator=StreamingBatchIterator if world == 1 else ShardedStreamingBatchIterator,
                iterator_kwargs={"shuffle_buffer_rows": int(shuffle_buffer_rows)},
                world=world,
            )
            net.fit(train_ds, None)
            del train_ds, valid_ds, targets, common
        # the fitted net predicts from tensors, as one fitted in memory (and saves alike)
        net.iterator_train = net.iterator_valid = BatchIterator
        for key in ("shuffle_buffer_rows", "rank", "world_size"):
            vars(net).pop(f"iterator_train__{key}", None)

        self._keep_net(net, info)
        self._after_fit(dataset, y_arr, None)
        if _uses_generic_quantiles(type(self)):
            self.spend_residuals_ = None
            if y_arr.ndim == 1 and hasattr(self, "predict_nonzero_proba"):
                self._fit_spend_residuals_stream(dataset, y_arr, fraction, split_seed)
        return self

    def _fit_spend_residuals_stream(
        self, dataset: Any, y: np.ndarray, fraction: float | None, seed: int
    ) -> None:
        """``spend_residuals_`` from the held-out spenders, batch by batch."""
        from ltvkit.nn._streaming import validation_mask

        def residual_rows(held_out_only: bool) -> tuple[np.ndarray, np.ndarray]:
            ys, values = [], []
            for pos, batch in dataset.iter_batches(with_position=True):
                m = batch.num_rows
                keep = y[pos : pos + m] > 0
                if held_out_only:
                    keep &= validation_mask(pos, m, fraction, seed)
                if keep.any():
                    idx = np.flatnonzero(keep)
                    frame = dataset.feature_frame(batch.take(idx))
                    values.append(self._nonzero_proba_and_positive_value(frame)[1])
                    ys.append(y[pos + idx])
            if not ys:
                return np.empty(0), np.empty(0)
            return np.concatenate(ys), np.concatenate(values)

        y_held, value = residual_rows(fraction is not None)
        if not len(y_held):  # no spender held out: fall back on the training rows
            y_held, value = residual_rows(False)
        self.spend_residuals_ = SpendResiduals.fit(y_held, value, None)

    def predict(self, X: object) -> np.ndarray:
        """Expected customer value, computed batch by batch (bounded memory).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            Finite, non-negative float64 (``(n_samples, n_horizons)`` for a
            multi-horizon model fitted on a 2-D ``y``).
        """
        pred = self._forward_outputs(
            X, self._output_to_prediction, **self._predict_forward_kwargs()
        )
        if pred.ndim == 2 and self.target_ndim_ == 1:
            pred = pred[:, 0]
        return check_predictions(pred, type(self).__name__)

    # -- internals --------------------------------------------------------------------
    def _make_net(
        self,
        module: nn.Module,
        criterion: nn.Module,
        *,
        valid_ds: TensorDictDataset | None,
        shuffle_seed: int,
        callbacks: list[tuple[str, Callback]],
        world: int = 1,
        iterator: type = BatchIterator,
        iterator_kwargs: Mapping[str, Any] | None = None,
    ) -> LTVNeuralNet:
        """The skorch net around ``module`` and ``criterion`` (fit, and rebuilding at load).

        ``world > 1``: this rank's share of every training batch (data-parallel fit).
        ``iterator_kwargs``: more arguments of the training iterator.
        """
        extra: dict[str, Any] = {}
        if world > 1:
            extra.update(iterator_train__rank=_dist.rank(), iterator_train__world_size=world)
        for key, value in (iterator_kwargs or {}).items():
            extra[f"iterator_train__{key}"] = value
        return LTVNeuralNet(
            module=module,
            criterion=criterion,
            optimizer=self._optimizer_class(),
            lr=float(self.learning_rate),
            max_epochs=int(self.max_epochs),
            batch_size=int(self.batch_size),
            iterator_train=iterator,
            iterator_valid=iterator,
            iterator_train__shuffle=True,
            iterator_train__seed=shuffle_seed,
            iterator_valid__batch_size=max(int(self.batch_size), _PREDICT_BATCH_SIZE),
            train_split=predefined_split(valid_ds) if valid_ds is not None else None,
            callbacks=callbacks,
            predict_nonlinearity=None,
            verbose=self._verbosity(),
            device=self.device,
            target_inputs=self._target_inputs,
            output_to_prediction=self._output_to_prediction,
            predict_forward_kwargs=self._predict_forward_kwargs(),
            **extra,
            **self._optimizer_kwargs(),
        )

    def _restore_net(
        self, state_dict: Mapping[str, torch.Tensor], history: list[dict[str, Any]]
    ) -> None:
        """Rebuild ``net_`` from saved module weights and training history (``ltvkit.load``).

        The module and the loss are rebuilt by the model's own builders from the fitted
        ``encoder_.spec_`` and ``prepared_info_``, then the weights are loaded into the
        module. A builder that sets fitted attributes (e.g. seeds drawn from the torch
        RNG) cannot change the loaded model: every attribute is restored to its saved
        value afterwards, and the builders run on a forked RNG so the caller's global
        torch RNG is untouched. The optimizer starts empty, as after ``fit``.
        """
        saved = dict(self.__dict__)
        torch_dtype = _PRECISIONS[self.precision][0]
        with torch.random.fork_rng(devices=[]):
            module = self._build_module(self.encoder_.spec_, self.prepared_info_).to(torch_dtype)
            criterion = self._build_criterion(self.prepared_info_).to(torch_dtype)
        self.__dict__.clear()
        self.__dict__.update(saved)
        net = self._make_net(
            module,
            criterion,
            valid_ds=None,
            shuffle_seed=0,
            callbacks=self._make_callbacks(early_stop=False),
        )
        net.initialize()
        net.module_.load_state_dict(dict(state_dict), strict=True)
        net.history = History(list(history))
        _drop_optimizer_state(net)
        self.net_ = net

    def _fit_generic_quantiles(
        self,
        X: object,
        y: np.ndarray,
        sw: np.ndarray | None,
        validation_data: tuple | None,
        valid: tuple | None,
        valid_rows: torch.Tensor | None,
    ) -> None:
        """Fit the generic predictive distribution (``spend_residuals_``) after training.

        For a model without a ``predict_quantiles`` of its own: the spenders' residual
        ratios on the rows held out from training (the early-stopping validation rows or
        ``validation_data``); on the training rows when none were held out (small data,
        ``early_stopping=False``), where they are narrower than on new customers.
        """
        self.spend_residuals_ = None
        if y.ndim != 1:
            # multi-horizon: no generic quantiles (every model has predict_nonzero_proba,
            # the contract's, so that is no reason to skip)
            return
        if valid is not None:
            X_held, y_held, w_held = validation_data[0], valid[1], valid[2]
        elif valid_rows is not None:
            rows = valid_rows.numpy()
            X_held = X.iloc[rows] if hasattr(X, "iloc") else np.asarray(X)[rows]
            y_held, w_held = y[rows], None if sw is None else sw[rows]
        else:
            X_held, y_held, w_held = X, y, sw
        if not (y_held > 0).any():  # no spender held out: fall back on the training rows
            X_held, y_held, w_held = X, y, sw
        self._fit_spend_residuals(X_held, y_held, w_held)

    def _optimizer_class(self) -> type[torch.optim.Optimizer]:
        opt = self.optimizer
        return _OPTIMIZERS[opt] if isinstance(opt, str) else opt

    def _optimizer_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"optimizer__weight_decay": float(self.weight_decay)}
        optimizer = self._optimizer_class()
        if optimizer is torch.optim.SGD:
            kwargs["optimizer__momentum"] = 0.9
        if optimizer in (torch.optim.Adam, torch.optim.AdamW) and (
            torch.device(self.device).type in ("cpu", "cuda")
        ):
            # one kernel updates every parameter tensor: the same maths, 0.72-1.05x the
            # time per epoch of the per-tensor loop (benchmarks/bench_fused_adam.py)
            kwargs["optimizer__fused"] = True
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

    def _verbosity(self) -> int:
        """``verbose``, on rank 0 only (the other ranks of a data-parallel fit are silent)."""
        return int(self.verbose) if _dist.is_main_process() else 0

    def _join_process_group(
        self, y: np.ndarray | None, sample_weight: np.ndarray | None, dataset: Any = None
    ) -> int:
        """Join torchrun's process group (if any); return the number of ranks.

        Every rank must be given the same rows (each trains on its share of them): a
        cheap fingerprint of the targets (of a dataset: its rows and row groups) is
        compared across ranks, so that different data per rank stops the fit with an
        error instead of training on a mixture.
        """
        if not _dist.init_from_env(str(self.device)):
            return 1
        world = _dist.world_size()
        if dataset is not None:
            sizes = [f.num_rows for f in dataset.fragments]
            local = np.array([dataset.num_rows, len(sizes), float(np.dot(sizes, sizes))])
        else:
            w = np.ones(len(y)) if sample_weight is None else sample_weight
            last = y if y.ndim == 1 else y[:, -1]
            local = np.array([len(y), float(np.sum(last * w)), float(np.sum(w))])
        total = _dist.all_reduce_sum(np.concatenate([local, local**2]))
        mean = total[:3] / world
        spread = total[3:] / world - mean**2
        if not np.all(spread <= 1e-9 * np.maximum(mean**2, 1.0)):
            raise ValueError(
                f"{type(self).__name__}: under torchrun ({world} ranks) every rank must call "
                f"fit with the same data (X, y, sample_weight or ParquetDataset; each trains "
                f"on its share of the rows); rank {_dist.rank()} has {int(local[0])} rows, "
                f"the mean over ranks is {mean[0]:g}. To fit one model per process instead, "
                "set LTVKIT_DISTRIBUTED=0."
            )
        return world

    def _make_callbacks(
        self, *, early_stop: bool, data_parallel: bool = False
    ) -> list[tuple[str, Callback]]:
        sink = print if self._verbosity() else _silent
        cbs: list[tuple[str, Callback]] = []
        if data_parallel:
            # first: gradients and epoch losses are global before anyone else reads them
            cbs.append(("data_parallel", DataParallel()))
        cbs.append(("finite_loss", _FiniteLossGuard(type(self).__name__)))
        # the model's own callbacks first: early stopping ends training by raising in
        # its on_epoch_end, which would skip theirs in the last epoch
        cbs.extend(self._model_callbacks())
        if early_stop:
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
        if self.learning_rate_schedule == "cosine":
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
        if self._verbosity():
            cbs.append(("progress_bar", ProgressBar()))
        for cb in copy.deepcopy(list(self.callbacks or [])):
            cbs.append(cb if isinstance(cb, tuple) else (_callback_name(cb, cbs), cb))
        return cbs


def _uses_generic_quantiles(cls: type) -> bool:
    """Whether ``cls`` relies on the base's generic ``predict_quantiles``."""
    return getattr(cls, "predict_quantiles", None) is LTVRegressorMixin.predict_quantiles


def _join_loss_weights(
    w_train: np.ndarray | None, w_valid: np.ndarray | None, n_train: int, n_valid: int
) -> np.ndarray | None:
    """Loss weights of the training rows then the validation rows, each part normalised
    to mean 1 (None: no weights at all)."""
    if w_train is None and w_valid is None:
        return None
    train = np.ones(n_train) if w_train is None else w_train / w_train.mean()
    valid = np.ones(n_valid) if w_valid is None else w_valid / max(w_valid.mean(), 1e-300)
    return np.concatenate([train, valid])


def _drop_optimizer_state(net: NeuralNet) -> None:
    """Forget what only more training would need: the optimizer's moments.

    Adam keeps two tensors per weight, and skorch's LR-scheduler callback keeps the
    scheduler, which references the optimizer and is pickled separately from it: kept,
    they made a fitted model's pickle about six times the size of its weights. The
    optimizer object stays (empty, as before its first step); the scheduler is rebuilt
    by the callback when training starts again.
    """
    optimizer = getattr(net, "optimizer_", None)
    if optimizer is not None:
        optimizer.state.clear()
    for _, cb in getattr(net, "callbacks_", []):
        if isinstance(cb, LRScheduler):
            cb.lr_scheduler_ = None


def _callback_name(cb: Callback, existing: list[tuple[str, Callback]]) -> str:
    base = type(cb).__name__
    names = {name for name, _ in existing}
    name, i = base, 1
    while name in names:
        i += 1
        name = f"{base}_{i}"
    return name


def _shared_params_doc(doc: str, sig: inspect.Signature | None) -> str:
    """numpydoc entries of the shared hyperparameters, with this model's defaults.

    A shared hyperparameter the docstring documents itself (a model-specific note on
    its default) is left out.
    """
    marker_line = next(line for line in doc.splitlines() if SHARED_PARAMS_MARKER in line)
    indent = marker_line[: len(marker_line) - len(marker_line.lstrip())]
    entries: list[str] = []
    for name, spec in SHARED_PARAM_SPECS.items():
        if f"\n{indent}{name} : " in doc or f"\n{indent}{name}, " in doc:
            continue
        head = f"{name} : {spec.type_text}"
        if sig is not None:
            default = sig.parameters[name].default
            shown = f'"{default}"' if isinstance(default, str) else repr(default)
            head += f", default={shown}"
        entries.append(head if not entries else f"{indent}{head}")
        entries.extend(
            textwrap.wrap(
                spec.doc,
                width=88,
                initial_indent=indent + "    ",
                subsequent_indent=indent + "    ",
            )
        )
    return "\n".join(entries)


BaseDeepRegressor.__doc__ = (BaseDeepRegressor.__doc__ or "").replace(
    SHARED_PARAMS_MARKER, _shared_params_doc(BaseDeepRegressor.__doc__ or "", None)
)
