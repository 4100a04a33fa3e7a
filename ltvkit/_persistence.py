"""Model files: :func:`save` and :func:`load`, with no pickle inside.

A model file is a zip archive:

- ``manifest.json``: the format name and version, the ltvkit version and the versions
  of the libraries (torch, scikit-learn, skorch, XGBoost, LightGBM, numpy, pandas...),
  the estimator's class and parameters, its input schema (columns, kinds, category
  levels) and the caller's ``metadata`` (``ltvkit fit`` records its feature settings);
- ``estimator.skops``: the estimator (or Pipeline) in skops' format, which stores
  scikit-learn objects as data and XGBoost/LightGBM boosters in their own model formats;
  a deep model is stored there without its skorch ``net_``;
- per deep model ``networks/<k>/weights.safetensors`` (the module's ``state_dict``) and
  ``networks/<k>/history.json`` (skorch's training history); the network is rebuilt at
  load by the model's own ``_build_module(encoder_.spec_, prepared_info_)``;
- ``tensors.safetensors``: torch tensors found among a deep model's fitted attributes.

Loading reads the manifest first (format, version, class), then refuses any type in the
skops part outside a fixed allowlist, *before* anything is constructed: ltvkit's own
classes, the registered estimators, and the few library types listed in
``_LIBRARY_TYPES``, besides what skops itself trusts (scikit-learn, numpy, scipy
types). See ``docs/scoring.md``.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import importlib
import json
import os
import sys
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ltvkit import distributed

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "load", "save"]

#: Written in every manifest; a file without it is not a model file.
FORMAT_NAME = "ltvkit-model"
#: Version of the file layout. ``load`` reads exactly this version (a file written by
#: another ltvkit major.minor is refused before the layout is even looked at).
FORMAT_VERSION = 1

_MANIFEST = "manifest.json"
_ESTIMATOR = "estimator.skops"
_TENSORS = "tensors.safetensors"

#: Library types a model file may hold besides ltvkit's classes and what skops trusts
#: by default. XGBoost and LightGBM wrappers are stored by skops through their own model
#: formats (UBJ / text), not through pickle.
_LIBRARY_TYPES: frozenset[str] = frozenset(
    {
        "xgboost.core.Booster",
        "xgboost.sklearn.XGBClassifier",
        "xgboost.sklearn.XGBRegressor",
        "lightgbm.basic.Booster",
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.sklearn.LGBMRegressor",
        "collections.OrderedDict",
        "torch.device",
    }
)

#: torch optimizers a deep model's ``optimizer`` parameter may name (a class, stored by
#: name; nothing of torch is constructed from a model file but the module's weights).
_TORCH_OPTIMIZERS = (
    "ASGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "LBFGS",
    "NAdam",
    "RAdam",
    "RMSprop",
    "Rprop",
    "SGD",
    "SparseAdam",
)


@dataclass
class _TensorRef:
    """Stands for a torch tensor among a deep model's fitted attributes in the file."""

    key: str


# ---------------------------------------------------------------------------- helpers
def _type_name(obj: object) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _registered_names() -> set[str]:
    from ltvkit._registry import ESTIMATOR_LOCATIONS

    return {f"{module}.{name}" for name, module in ESTIMATOR_LOCATIONS.items()}


def _import_registered(names: list[str]) -> None:
    """Import the modules of the registered estimators among ``names`` (and so theirs).

    The only imports a model file can cause before its types are checked: modules of
    the registry's fixed table, never a module the file names (importing one can run
    code, e.g. ``ltvkit.__main__`` runs the command line).
    """
    registered = _registered_names()
    for name in names:
        if name in registered:
            importlib.import_module(name.rpartition(".")[0])


def _is_ltvkit_class(name: str) -> bool:
    """A class defined in one of ltvkit's own modules, already imported (never a function)."""
    module, _, qualname = name.rpartition(".")
    if not (module == "ltvkit" or module.startswith("ltvkit.")) or not qualname.isidentifier():
        return False
    obj = getattr(sys.modules.get(module), qualname, None)
    return isinstance(obj, type) and obj.__module__ == module and obj.__qualname__ == qualname


def _is_torch_optimizer(name: str) -> bool:
    if not name.startswith("torch.optim."):
        return False
    import torch

    return name in {_type_name(getattr(torch.optim, n)) for n in _TORCH_OPTIMIZERS}


def _is_trusted(name: str) -> bool:
    return (
        name in _LIBRARY_TYPES
        or name in _registered_names()
        or _is_torch_optimizer(name)
        or _is_ltvkit_class(name)
    )


def _refused_types(data: bytes) -> tuple[list[str], list[str]]:
    """(types skops does not trust, those of them outside ltvkit's allowlist)."""
    import skops.io as sio

    untrusted = sio.get_untrusted_types(data=data)
    _import_registered(untrusted)
    return untrusted, [t for t in untrusted if not _is_trusted(t)]


def _is_deep(obj: object) -> bool:
    # a deep model exists only once ltvkit.nn is imported: no torch import for the others
    base = sys.modules.get("ltvkit.nn._base")
    return base is not None and isinstance(obj, base.BaseDeepRegressor)


def _final_estimator(obj: object) -> object:
    from sklearn.pipeline import Pipeline

    while isinstance(obj, Pipeline):
        obj = obj.steps[-1][1]
    return obj


def _components(obj: object, location: tuple[str, ...] = ()) -> Iterator[tuple[tuple, object]]:
    """Every estimator of ``obj`` with its location (the Pipeline step names)."""
    from sklearn.pipeline import Pipeline

    if isinstance(obj, Pipeline):
        for name, step in obj.steps:
            yield from _components(step, (*location, name))
    else:
        yield location, obj


def _locate(obj: object, location: list[str]) -> object:
    for name in location:
        obj = dict(obj.steps)[name]
    return obj


def _jsonable(value: object) -> object:
    """A parameter value for the manifest (for people: skops stores the real one)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, type):
        return _type_name(value)
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _levels_json(levels: object) -> list:
    return [v if isinstance(v, (str, int, float, bool)) else str(v) for v in list(levels)]


def _input_schema(estimator: object) -> dict[str, Any]:
    """Columns, kinds and category levels the estimator's input must have."""
    final = _final_estimator(estimator)
    schema = getattr(final, "schema_", None)
    if schema is None:  # a transformer (the bucketizers): names or a count
        names = getattr(estimator, "feature_names_in_", None)
        n = int(getattr(estimator, "n_features_in_", 0))
        columns = [str(c) for c in names] if names is not None else [f"x{i}" for i in range(n)]
        return {"columns": columns, "from_frame": names is not None}
    columns = [str(c) for c in getattr(estimator, "feature_names_in_", schema.columns)]
    out: dict[str, Any] = {"columns": columns, "from_frame": bool(schema.from_frame)}
    if columns == list(schema.columns):  # the model sees the input columns as they are
        out["kinds"] = {
            c: "categorical" if c in schema.categorical_columns else "numeric" for c in columns
        }
        out["categories"] = {
            c: {"dtype": str(levels.dtype), "levels": _levels_json(levels)}
            for c, levels in schema.categories.items()
        }
    return out


def _to_bytes_json(obj: object) -> bytes:
    def default(o: object) -> object:
        if isinstance(o, np.generic) or hasattr(o, "item"):
            return o.item()
        return str(o)

    return json.dumps(obj, indent=1, default=default).encode("utf-8")


# ------------------------------------------------------------------------------ save
def _strip_deep(est: object, key: str, tensors: dict[str, Any]) -> object:
    """A copy of a deep model without ``net_``, tensors replaced by references."""
    import torch

    def extract(value: object, path: str) -> object:
        if isinstance(value, torch.Tensor):
            tensors[path] = value.detach().cpu().clone().contiguous()
            return _TensorRef(path)
        if isinstance(value, dict):
            return {k: extract(v, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [extract(v, f"{path}.{i}") for i, v in enumerate(value)]
        if isinstance(value, tuple) and type(value) is tuple:
            return tuple(extract(v, f"{path}.{i}") for i, v in enumerate(value))
        return value

    out = copy.copy(est)
    state = out.__dict__
    state.pop("net_", None)
    for name in list(state):
        state[name] = extract(state[name], f"{key}.{name}")
    if state.get("callbacks") is not None:
        warnings.warn(
            f"ltvkit.save: {type(est).__name__}'s callbacks parameter holds arbitrary "
            "objects and is not saved; the loaded model has callbacks=None (it predicts "
            "the same; set callbacks again before refitting it).",
            UserWarning,
            stacklevel=3,
        )
        state["callbacks"] = None
    return out


def _check_saveable(estimator: object) -> None:
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    final = _final_estimator(estimator)
    if _type_name(final) not in _registered_names():
        what = "a Pipeline ending in " if isinstance(estimator, Pipeline) else ""
        raise TypeError(
            f"ltvkit.save takes an ltvkit estimator (ltvkit.all_estimators()) or a scikit-"
            f"learn Pipeline ending in one; got {what}{type(final).__name__}."
        )
    check_is_fitted(final)


def save(estimator: object, path: str | os.PathLike, *, metadata: Mapping | None = None) -> Path:
    """Write a fitted ltvkit estimator (or a Pipeline ending in one) to a model file.

    The file holds no pickle: scikit-learn objects go through skops (XGBoost/LightGBM
    boosters in their own model formats), torch weights through safetensors, the
    training history and the metadata through JSON. It records the versions of ltvkit
    and its libraries, the estimator's class and parameters and its input schema
    (columns, kinds, category levels). The file is written whole or not at all (to a
    temporary name in the same directory, then renamed). Under ``torchrun`` only rank 0
    writes (the other ranks return the path without writing).

    A deep model's ``callbacks`` (arbitrary objects) are not saved: the file gets
    ``callbacks=None`` and a ``UserWarning`` says so. Optimizer state is never saved.

    Parameters
    ----------
    estimator : estimator
        A fitted estimator of ``ltvkit.all_estimators()`` or a fitted
        ``sklearn.pipeline.Pipeline`` whose last step is one.
    path : str or path-like
        The model file (any name; ``.ltvkit`` is the convention). Overwritten if it
        exists.
    metadata : mapping or None, default=None
        JSON-serializable information stored in the manifest (e.g. how the features
        were built); read it back with ``load(path, return_manifest=True)``.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    TypeError
        Not an ltvkit estimator or Pipeline ending in one.
    sklearn.exceptions.NotFittedError
        The estimator is not fitted.
    ValueError
        The estimator holds an object the model-file format cannot hold safely (a type
        outside the allowlist, e.g. a custom plug-in estimator); it is named.

    Examples
    --------
    >>> import ltvkit
    >>> from ltvkit.datasets import make_ltv
    >>> X, y = make_ltv(n_samples=300, random_state=0)
    >>> model = ltvkit.TwoStageRegressor(n_estimators=20, random_state=0).fit(X, y)
    >>> _ = ltvkit.save(model, "model.ltvkit")  # doctest: +SKIP
    >>> loaded = ltvkit.load("model.ltvkit")  # doctest: +SKIP
    >>> bool((loaded.predict(X) == model.predict(X)).all())  # doctest: +SKIP
    True
    """
    import skops.io as sio

    from ltvkit import __version__
    from ltvkit._run_record import library_versions

    _check_saveable(estimator)
    path = Path(path)
    if not distributed.is_main_process():
        # a data-parallel fit (torchrun) ends with the same model on every rank: one
        # file, written by rank 0
        return path
    tensors: dict[str, Any] = {}
    networks: list[dict[str, Any]] = []
    members: list[tuple[str, bytes]] = []
    deep = [(loc, est) for loc, est in _components(estimator) if _is_deep(est)]
    stripped = estimator
    if deep:
        from safetensors.torch import save as save_tensors
        from sklearn.pipeline import Pipeline

        def strip(obj: object, location: tuple[str, ...]) -> object:
            if isinstance(obj, Pipeline):
                out = copy.copy(obj)
                out.steps = [(n, strip(s, (*location, n))) for n, s in obj.steps]
                return out
            if _is_deep(obj):
                k = len(networks)
                networks.append(
                    {
                        "location": list(location),
                        "class": _type_name(obj),
                        "weights": f"networks/{k}/weights.safetensors",
                        "history": f"networks/{k}/history.json",
                    }
                )
                state = {
                    name: t.detach().cpu().clone().contiguous()
                    for name, t in obj.net_.module_.state_dict().items()
                }
                members.append((networks[-1]["weights"], save_tensors(state)))
                members.append((networks[-1]["history"], _to_bytes_json(list(obj.net_.history))))
                return _strip_deep(obj, f"networks/{k}", tensors)
            return obj

        stripped = strip(estimator, ())
    data = sio.dumps(stripped, compression=zipfile.ZIP_DEFLATED)
    _, refused = _refused_types(data)
    if refused:
        raise ValueError(
            f"ltvkit.save: the estimator holds objects of type(s) {refused}, which a model "
            "file does not hold (load trusts only ltvkit's classes, scikit-learn, numpy, "
            "XGBoost and LightGBM types); use pickle/joblib for it, from a trusted source."
        )
    members.append((_ESTIMATOR, data))
    if tensors:
        from safetensors.torch import save as save_tensors

        members.append((_TENSORS, save_tensors(tensors)))
    final = _final_estimator(estimator)
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "ltvkit_version": __version__,
        "versions": library_versions(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "estimator": {
            "class": _type_name(estimator),
            "params": _jsonable(estimator.get_params(deep=False)),
        },
        "final_estimator": {
            "class": _type_name(final),
            "params": _jsonable(final.get_params(deep=False)),
        },
        "input_schema": _input_schema(estimator),
        "networks": networks,
        "tensors": _TENSORS if tensors else None,
        "metadata": dict(metadata or {}),
    }
    members.insert(0, (_MANIFEST, _to_bytes_json(manifest)))
    _write_atomic(path, members)
    return path


def _write_atomic(path: Path, members: list[tuple[str, bytes]]) -> None:
    """Write the zip to a temporary file next to ``path``, then rename it over ``path``."""
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for name, data in members:
                    zf.writestr(name, data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ------------------------------------------------------------------------------ load
def _not_a_model_file(path: Path, why: str) -> ValueError:
    return ValueError(f"{path} is not an ltvkit model file ({why}).")


def _read_manifest(zf: zipfile.ZipFile, path: Path) -> dict[str, Any]:
    if _MANIFEST not in zf.namelist():
        raise _not_a_model_file(path, "no manifest.json in the archive")
    try:
        manifest = json.loads(zf.read(_MANIFEST).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _not_a_model_file(path, f"manifest.json is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise _not_a_model_file(path, f"the manifest does not say format {FORMAT_NAME!r}")
    return manifest


def _major_minor(version: str) -> tuple[int, ...] | None:
    parts = []
    for piece in str(version).split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit()) if piece[:1].isdigit() else ""
        if not digits:
            return None
        parts.append(int(digits))
    return tuple(parts) if len(parts) == 2 else None


def _check_compatible(manifest: dict[str, Any], path: Path) -> None:
    from ltvkit import __version__

    written = str(manifest.get("ltvkit_version", "unknown"))
    if _major_minor(written) is None or _major_minor(written) != _major_minor(__version__):
        raise ValueError(
            f"{path} was written by ltvkit {written}; this is ltvkit {__version__}, which "
            "reads model files of its own major.minor version only (before 1.0 the format "
            "may change with each minor version). Refit the model with this version and "
            "save it again, or load it with the ltvkit version that wrote it."
        )
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{path} has model-file format version {version!r}; this ltvkit "
            f"({__version__}) reads version {FORMAT_VERSION}."
        )
    allowed = _registered_names() | {"sklearn.pipeline.Pipeline"}
    cls = (manifest.get("estimator") or {}).get("class")
    if cls not in allowed:
        raise ValueError(
            f"{path}: the manifest names the estimator class {cls!r}, which is neither an "
            "ltvkit estimator (ltvkit.all_estimators()) nor a scikit-learn Pipeline; refused."
        )


def _read(zf: zipfile.ZipFile, name: str, path: Path) -> bytes:
    try:
        return zf.read(name)
    except KeyError:
        raise _not_a_model_file(path, f"{name} is missing from the archive") from None
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # damaged compressed data
        raise _not_a_model_file(path, f"{name} is damaged: {exc}") from None


def _restore_tensors(value: object, tensors: Mapping[str, Any], path: Path) -> object:
    if isinstance(value, _TensorRef):
        if value.key not in tensors:
            raise _not_a_model_file(path, f"tensor {value.key!r} is missing")
        return tensors[value.key]
    if isinstance(value, dict):
        return {k: _restore_tensors(v, tensors, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore_tensors(v, tensors, path) for v in value]
    if isinstance(value, tuple) and type(value) is tuple:
        return tuple(_restore_tensors(v, tensors, path) for v in value)
    return value


def load(path: str | os.PathLike, *, return_manifest: bool = False) -> Any:
    """Read a model file written by :func:`save`; refuse anything else.

    The checks come before anything in the file is constructed: the file must be an
    ltvkit model file (a zip archive with ltvkit's manifest, not truncated or damaged),
    of this ltvkit's format version, written by the same ltvkit major.minor version;
    the manifest must name an ltvkit estimator or a Pipeline; and every type in the
    stored estimator must be on the allowlist (ltvkit's classes, scikit-learn, numpy and
    scipy types that skops trusts, XGBoost and LightGBM models). A file that fails a
    check raises ``ValueError`` with the reason (for a foreign type: its name).

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.
    return_manifest : bool, default=False
        Also return the manifest (versions, parameters, input schema, metadata).

    Returns
    -------
    estimator
        The fitted estimator; its predictions are identical to the saved one's.
    manifest : dict
        Only with ``return_manifest=True``.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a model file, damaged, another format or ltvkit version, or holding a type
        outside the allowlist.

    Examples
    --------
    >>> import ltvkit
    >>> model = ltvkit.load("model.ltvkit")  # doctest: +SKIP
    >>> model, manifest = ltvkit.load("model.ltvkit", return_manifest=True)  # doctest: +SKIP
    >>> manifest["input_schema"]["columns"][:3]  # doctest: +SKIP
    ['frequency', 'recency', 'tenure']
    """
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        if path.exists():
            raise _not_a_model_file(path, "a directory")
        raise FileNotFoundError(f"no such model file: {path}")
    try:
        with zipfile.ZipFile(path) as zf:
            manifest = _read_manifest(zf, path)
            _check_compatible(manifest, path)
            data = _read(zf, _ESTIMATOR, path)
            networks = manifest.get("networks") or []
            parts = {
                n: _read(zf, n, path)
                for net in networks
                for n in (net.get("weights"), net.get("history"))
            }
            tensors_data = _read(zf, _TENSORS, path) if manifest.get("tensors") else None
    except zipfile.BadZipFile as exc:
        raise _not_a_model_file(path, f"not a zip archive, or a damaged one: {exc}") from None
    except (OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise _not_a_model_file(path, f"unreadable: {exc}") from None
    try:
        untrusted, refused = _refused_types(data)
    except Exception as exc:
        raise _not_a_model_file(path, f"its estimator part is damaged: {exc}") from None
    if refused:
        raise ValueError(
            f"{path} holds object(s) of type(s) {refused}, which are not on ltvkit's "
            "allowlist of model-file types; refused without loading it. Only load model "
            "files from sources you trust."
        )
    try:
        estimator = sio.loads(data, trusted=untrusted)
    except Exception as exc:
        raise _not_a_model_file(path, f"its estimator part does not load: {exc}") from None
    if _type_name(estimator) != manifest["estimator"]["class"]:
        raise _not_a_model_file(path, "the estimator does not match the manifest")
    if networks:
        _restore_networks(estimator, networks, parts, tensors_data, path)
    return (estimator, manifest) if return_manifest else estimator


def _restore_networks(
    estimator: object,
    networks: list[dict[str, Any]],
    parts: dict[str, bytes],
    tensors_data: bytes | None,
    path: Path,
) -> None:
    from safetensors.torch import load as load_tensors

    tensors = load_tensors(tensors_data) if tensors_data is not None else {}
    for net in networks:
        try:
            est = _locate(estimator, list(net["location"]))
        except (KeyError, TypeError, AttributeError):
            raise _not_a_model_file(path, "a network's location is not in the estimator") from None
        if not _is_deep(est) or _type_name(est) != net.get("class"):
            raise _not_a_model_file(path, "a network does not match its estimator")
        for name, value in list(vars(est).items()):
            setattr(est, name, _restore_tensors(value, tensors, path))
        try:
            weights = load_tensors(parts[net["weights"]])
            history = json.loads(parts[net["history"]].decode("utf-8"))
        except Exception as exc:
            raise _not_a_model_file(path, f"damaged network weights: {exc}") from None
        est._restore_net(weights, history)
