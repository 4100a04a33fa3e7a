"""Helpers shared across ltvkit's packages: hyperparameter constraints, quantile helpers.

Hyperparameter validation is declarative. An estimator lists, in the class attribute
``_parameter_constraints``, the constraints each ``__init__`` parameter must meet (a
constraint or a list of alternatives); :func:`validate_params` checks them all once, at
``fit``, and raises a ``ValueError`` that names the parameter, what it must be and what it
got. The constraint types cover what ltvkit's models need: integers and reals in an
interval, a set of choices, booleans, unit tuples (layer widths), per-level tuples and
pairs. This is the scikit-learn / imbalanced-learn ``_parameter_constraints`` pattern,
written here because scikit-learn's implementation is private API.

Examples
--------
>>> from sklearn.base import BaseEstimator
>>> class Model(BaseEstimator):
...     _parameter_constraints = {"depth": [Int(1)], "kind": [Options("a", "b")]}
...     def __init__(self, depth=3, kind="a"):
...         self.depth = depth
...         self.kind = kind
>>> validate_params(Model(depth=0))
Traceback (most recent call last):
...
ValueError: ltvkit: Model: depth must be an integer >= 1, got 0.
"""

from __future__ import annotations

import inspect
import itertools
import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "Boolean",
    "Constraint",
    "Increasing",
    "Instance",
    "Int",
    "Options",
    "PerLevel",
    "Real",
    "Units",
    "check_quantile_levels",
    "inverted_cdf_quantile",
    "validate_params",
]


# ------------------------------------------------------------------- constraints
class Constraint:
    """One allowed form of a hyperparameter: ``is_satisfied_by`` and a description."""

    def is_satisfied_by(self, value: object) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def hint(self, name: str, value: object) -> str:
        """Extra advice for a value that fails (empty by default)."""
        return ""


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value: object) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, (bool, np.bool_))
        and math.isfinite(value)
    )


def _bound(x: float | None, default: str) -> str:
    if x is None:
        return default
    return f"{x:g}" if isinstance(x, float) else str(x)


class Int(Constraint):
    """An integer (not a bool) in ``[low, high]`` (None: unbounded)."""

    def __init__(self, low: int | None = None, high: int | None = None) -> None:
        self.low, self.high = low, high

    def is_satisfied_by(self, value: object) -> bool:
        return (
            _is_int(value)
            and (self.low is None or value >= self.low)
            and (self.high is None or value <= self.high)
        )

    def describe(self) -> str:
        if self.high is None:
            return "an integer" if self.low is None else f"an integer >= {self.low}"
        return f"an integer in [{_bound(self.low, '-inf')}, {self.high}]"


class Real(Constraint):
    """A finite real number (not a bool) in an interval.

    ``closed`` is ``"both"``, ``"left"``, ``"right"`` or ``"neither"``; a None bound is
    unbounded on that side.
    """

    def __init__(
        self, low: float | None = None, high: float | None = None, closed: str = "both"
    ) -> None:
        self.low, self.high, self.closed = low, high, closed

    def is_satisfied_by(self, value: object) -> bool:
        if not _is_real(value):
            return False
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and not (value >= self.low if left else value > self.low):
            return False
        return self.high is None or (value <= self.high if right else value < self.high)

    def describe(self) -> str:
        if self.low is None and self.high is None:
            return "a finite number"
        if self.high is None:
            op = ">=" if self.closed in ("both", "left") else ">"
            return f"a number {op} {_bound(self.low, '')}"
        if self.low is None:
            op = "<=" if self.closed in ("both", "right") else "<"
            return f"a number {op} {_bound(self.high, '')}"
        lo = "[" if self.closed in ("both", "left") else "("
        hi = "]" if self.closed in ("both", "right") else ")"
        return f"a number in {lo}{_bound(self.low, '')}, {_bound(self.high, '')}{hi}"


class Options(Constraint):
    """One of a fixed set of values (strings, True/False/None...)."""

    def __init__(self, *options: object) -> None:
        self.options = options

    def is_satisfied_by(self, value: object) -> bool:
        # ``in`` would let 1 stand for True; compare types for bools and None
        return any(value is o or (type(value) is type(o) and value == o) for o in self.options)

    def describe(self) -> str:
        return "one of " + ", ".join(repr(o) for o in self.options)


class Boolean(Constraint):
    """True or False (a numpy bool too)."""

    def is_satisfied_by(self, value: object) -> bool:
        return isinstance(value, (bool, np.bool_))

    def describe(self) -> str:
        return "True or False"


class Instance(Constraint):
    """An instance of one of ``types``, or a callable / a class (see ``kind``)."""

    def __init__(self, *types: type, kind: str = "instance", text: str | None = None) -> None:
        self.types, self.kind, self.text = types, kind, text

    def is_satisfied_by(self, value: object) -> bool:
        if self.kind == "callable":
            return callable(value)
        if self.kind == "subclass":
            return inspect.isclass(value) and issubclass(value, self.types)
        return isinstance(value, self.types)

    def describe(self) -> str:
        if self.text is not None:
            return self.text
        names = " or ".join(t.__name__ for t in self.types)
        return f"a subclass of {names}" if self.kind == "subclass" else f"a {names}"


class Units(Constraint):
    """Layer widths: a tuple/list of positive integers (``()`` only if ``allow_empty``).

    ``length`` fixes the number of entries.
    """

    def __init__(self, allow_empty: bool = True, length: int | None = None) -> None:
        self.allow_empty, self.length = allow_empty, length

    def is_satisfied_by(self, value: object) -> bool:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            return False
        if self.length is not None and len(value) != self.length:
            return False
        return (self.allow_empty or len(value) > 0) and all(_is_int(u) and u >= 1 for u in value)

    def describe(self) -> str:
        if self.length is not None:
            return f"a tuple of {self.length} positive ints"
        return "a tuple of positive ints" + ("" if self.allow_empty else " (at least one)")

    def hint(self, name: str, value: object) -> str:
        return f" Write ({value},) for one layer." if _is_int(value) else ""


class PerLevel(Constraint):
    """A non-empty tuple whose every entry meets ``item`` (a per-level setting).

    ``length``: exact number of entries (e.g. 2 for a ``(start, end)`` pair).
    """

    def __init__(self, item: Constraint, length: int | None = None, what: str = "") -> None:
        self.item, self.length, self.what = item, length, what

    def is_satisfied_by(self, value: object) -> bool:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
            return False
        if self.length is not None and len(value) != self.length:
            return False
        return all(self.item.is_satisfied_by(v) for v in value)

    def describe(self) -> str:
        what = self.what or (
            f"a tuple of {self.length}" if self.length is not None else "a non-empty tuple"
        )
        return f"{what} of {_plural(self.item.describe())}"


class Increasing(Constraint):
    """A 1-D sequence or array of strictly increasing numbers, each meeting ``item``.

    Accepts lists, tuples, numpy arrays and pandas Series (cut points, quantile levels).
    """

    def __init__(self, item: Constraint, allow_empty: bool = False) -> None:
        self.item, self.allow_empty = item, allow_empty

    def is_satisfied_by(self, value: object) -> bool:
        if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
            if not hasattr(value, "to_numpy"):  # a pandas Series or Index
                return False
        values = list(np.asarray(value, dtype=object).ravel())
        if np.ndim(np.asarray(value, dtype=object)) != 1 and len(values):
            return False
        if not values:
            return self.allow_empty
        return all(self.item.is_satisfied_by(v) for v in values) and all(
            b > a for a, b in itertools.pairwise(values)
        )

    def describe(self) -> str:
        empty = " (possibly empty)" if self.allow_empty else ""
        return f"a strictly increasing sequence{empty} of {_plural(self.item.describe())}"


def _plural(text: str) -> str:
    # "an integer >= 0" -> "integers >= 0", "a number in [0, 1)" -> "numbers in [0, 1)"
    for article in ("an ", "a "):
        if text.startswith(article):
            head, _, rest = text[len(article) :].partition(" ")
            return f"{head}s {rest}".strip()
    return text


def validate_params(estimator: object) -> None:
    """Check every parameter listed in ``estimator._parameter_constraints``.

    A parameter passes when it satisfies at least one of its constraints (``None``
    stands for the value None). Raises ``ValueError`` naming the estimator, the
    parameter, what it must be and the value it got.

    Parameters
    ----------
    estimator : object
        Has ``_parameter_constraints`` (dict: name -> list of constraints) and the
        parameters as attributes.

    Examples
    --------
    >>> from sklearn.base import BaseEstimator
    >>> class M(BaseEstimator):
    ...     _parameter_constraints = {"units": [Units(allow_empty=False)]}
    ...     def __init__(self, units=(8,)):
    ...         self.units = units
    >>> validate_params(M(units=8))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: ltvkit: M: units must be a tuple of positive ints (at least one), got 8. Write...
    """
    constraints: dict[str, list[Any]] = getattr(type(estimator), "_parameter_constraints", {})
    for name, allowed in constraints.items():
        value = getattr(estimator, name)
        if any(
            (c is None and value is None) or (c is not None and c.is_satisfied_by(value))
            for c in allowed
        ):
            continue
        texts = ["None" if c is None else c.describe() for c in allowed]
        hints = "".join(c.hint(name, value) for c in allowed if c is not None)
        raise ValueError(
            f"ltvkit: {type(estimator).__name__}: {name} must be {' or '.join(texts)}, "
            f"got {value!r}.{hints}"
        )


# --------------------------------------------------------------------- quantiles
def check_quantile_levels(quantiles: float | Sequence[float]) -> tuple[bool, np.ndarray]:
    """Validate the ``quantiles`` argument of ``predict_quantiles``.

    Returns ``(scalar, levels)``: whether a single float was given, and the levels as a
    1-D float64 array in [0, 1].

    Examples
    --------
    >>> check_quantile_levels(0.9)
    (True, array([0.9]))
    """
    scalar = np.ndim(quantiles) == 0
    try:
        raw = np.asarray(quantiles)
        # numbers only: numpy would parse the text "0.5" as 0.5
        q = np.atleast_1d(raw.astype(np.float64)) if raw.dtype.kind in "iuf" else None
    except (TypeError, ValueError):
        q = None
    if q is None:
        q = np.asarray([np.nan])
    if q.ndim != 1 or q.size == 0 or not np.all((q >= 0) & (q <= 1)):
        raise ValueError(
            f"ltvkit: quantiles must be a number or a sequence of numbers in [0, 1], "
            f"got {quantiles!r}."
        )
    return scalar, q


def inverted_cdf_quantile(
    values: np.ndarray, qs: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """``np.quantile(values, qs, method="inverted_cdf")``, with frequency weights.

    Weighted, the result is the first sorted value whose cumulative weight reaches
    ``N * q`` (``N`` the total weight, the product rounded as numpy rounds it): numpy's
    unweighted rule applied to the rows repeated, exactly so for integer weights.
    ``np.quantile(..., weights=...)`` compares ``cumsum / N`` with ``q`` instead, which
    can be one rank off the repeated rows when ``N * q`` is a whole number up to
    rounding (``q = 0.675``, an MDME default level, with ``N = 680``; the
    ``0.7000000000000001`` of ``np.linspace(0, 1, 11)`` with ``N = 50``).

    Examples
    --------
    >>> inverted_cdf_quantile(np.array([1.0, 2.0, 3.0]), np.array([0.5]), np.array([1, 1, 2]))
    array([2.])
    """
    if weights is None:
        return np.quantile(values, qs, method="inverted_cdf")
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order], dtype=np.float64)
    idx = np.searchsorted(cum, cum[-1] * np.asarray(qs, dtype=np.float64), side="left")
    return values[order][np.minimum(idx, values.size - 1)]
