"""Run records: what a command-line run did, written as JSON next to its output.

A run record answers "where does this file come from?" months later: the command and
its arguments, the input files with their SHA-256, the rows and customers read, the
date windows, the versions of ltvkit and its libraries, and the files written (also
hashed). ``ltvkit fit`` and ``ltvkit score`` write one beside their ``--out`` file
(``<out>.run.json``); any command can use :func:`write_run_record`.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["file_digest", "library_versions", "run_record_path", "write_run_record"]

#: Distributions whose versions are recorded, with alternative distribution names (the
#: CPU-only XGBoost wheel is ``xgboost-cpu``).
_LIBRARIES: dict[str, tuple[str, ...]] = {
    "ltvkit": ("ltvkit",),
    "numpy": ("numpy",),
    "pandas": ("pandas",),
    "scipy": ("scipy",),
    "scikit-learn": ("scikit-learn",),
    "torch": ("torch",),
    "skorch": ("skorch",),
    "xgboost": ("xgboost", "xgboost-cpu"),
    "lightgbm": ("lightgbm",),
    "skops": ("skops",),
    "safetensors": ("safetensors",),
    "pyarrow": ("pyarrow",),
}

_CHUNK = 1 << 20


def library_versions() -> dict[str, str | None]:
    """Versions of Python, ltvkit and the libraries it builds on (None: not installed).

    Read from the installed distributions' metadata, so nothing is imported (no torch
    import just to write a version string). ``ltvkit`` is the imported package's
    ``__version__`` (a source checkout may not be installed).

    Examples
    --------
    >>> versions = library_versions()
    >>> sorted(versions)[:3]
    ['lightgbm', 'ltvkit', 'numpy']
    """
    from ltvkit import __version__

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name, dists in _LIBRARIES.items():
        version = None
        for dist in dists:
            try:
                version = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
        out[name] = version
    out["ltvkit"] = __version__
    return out


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file, or of a directory's files (relative names and contents).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.csv"
    >>> _ = p.write_text("x\\n1\\n")
    >>> file_digest(p)[:15]
    'sha256:daff832f'
    """
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f.relative_to(path).as_posix().encode("utf-8") + b"\0")
            digest.update(_hash_file(f).encode("ascii"))
        return f"sha256:{digest.hexdigest()}"
    return f"sha256:{_hash_file(path)}"


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def run_record_path(output: str | os.PathLike) -> Path:
    """Where the run record of an output goes: ``<output>.run.json``.

    For an output directory: ``<output>/run.json``.

    Examples
    --------
    >>> run_record_path("scores.csv").name
    'scores.csv.run.json'
    """
    output = Path(output)
    if output.is_dir():
        return output / "run.json"
    return output.with_name(output.name + ".run.json")


def _describe(paths: Sequence[str | os.PathLike]) -> list[dict[str, Any]]:
    out = []
    for p in paths:
        p = Path(p)
        entry: dict[str, Any] = {"path": str(p)}
        if p.exists():
            entry["sha256"] = file_digest(p).removeprefix("sha256:")
            entry["bytes"] = _size(p)
        out.append(entry)
    return out


def write_run_record(
    path: str | os.PathLike,
    *,
    command: str,
    arguments: Mapping[str, Any],
    inputs: Sequence[str | os.PathLike] = (),
    outputs: Sequence[str | os.PathLike] = (),
    started: datetime.datetime | None = None,
    **details: Any,
) -> Path:
    """Write a JSON run record (whole or not at all).

    Parameters
    ----------
    path : str or path-like
        The record's file, usually :func:`run_record_path` of the main output.
    command : str
        E.g. ``"ltvkit fit"``.
    arguments : mapping
        The run's arguments (e.g. ``vars(args)`` of argparse).
    inputs, outputs : sequence of paths
        Files or directories read and written; each is recorded with its SHA-256 and
        size.
    started : datetime or None, default=None
        When the run started (UTC); the record also has the time it was written.
    **details
        Anything else worth keeping (rows, customers, date windows, model...); must be
        JSON-serializable (other values are written as their ``str``).

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import pathlib, tempfile, json
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "run.json"
    >>> _ = write_run_record(out, command="ltvkit fit", arguments={"model": "ziln"}, rows=10)
    >>> json.loads(out.read_text())["rows"]
    10
    """
    now = datetime.datetime.now(datetime.timezone.utc)
    record: dict[str, Any] = {
        "command": command,
        "arguments": dict(arguments),
        "started": (started or now).isoformat(timespec="seconds"),
        "finished": now.isoformat(timespec="seconds"),
        "versions": library_versions(),
        "inputs": _describe(inputs),
        "outputs": _describe(outputs),
        **details,
    }
    path = Path(path)
    text = json.dumps(record, indent=2, default=str) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
