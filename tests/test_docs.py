"""Every Python code block of the documentation runs.

For every Markdown page under ``docs/`` (recursively) and ``README.md``, the fenced code
blocks tagged ``python`` (or ``py``) are executed in page order, in one fresh namespace
per page: a block may use what the blocks above it on the same page defined, never
another page. One test per page. Blocks tagged otherwise (``bash``, ``text``, ...) are
not executed, and every fence must carry a tag, so Python cannot hide in an untagged
block.

Conventions for documentation writers:

- The page runs in a temporary working directory (files the examples write land there),
  with the non-interactive matplotlib backend ``Agg``.
- Keep examples fast (small ``max_epochs`` / ``n_estimators`` or a subsample): the whole
  file should run in about a minute on one core.
- A block that needs a local, non-shipped dataset (``load_online_retail``,
  ``load_hillstrom``) runs when the data is found; when the loader raises its
  documented "not found" ``FileNotFoundError``, the rest of the page is skipped with
  that reason.
- A block can be left out only with a marker on the line right before its fence,
  giving the reason::

      <!-- docs-test: skip needs a GPU -->

  A marker without a reason, or not followed by a Python block, fails the test.
"""

from __future__ import annotations

import re
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYTHON_TAGS = frozenset({"python", "py"})
# Pages whose blocks are known to fail and are being fixed elsewhere (none).
XFAIL_PAGES: dict[str, str] = {}
# CPU seconds one block may take (one torch thread, tests/conftest.py): a guard against
# examples that train at full size; the whole file runs in well under a minute and a half.
MAX_BLOCK_CPU_S = 60.0

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_MARKER = re.compile(r"^\s*<!--\s*docs-test:(?P<body>.*?)-->\s*$")


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the first code line in the Markdown file
    lang: str
    code: str
    skip_reason: str | None = None


def _pages() -> list[Path]:
    return sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def parse_markdown(text: str, name: str = "<markdown>") -> list[Block]:
    """The fenced code blocks of a Markdown text, with their ``docs-test`` markers.

    Raises ``ValueError`` for an unclosed fence, a marker without a reason, an unknown
    marker, or a marker that is not right before a Python block.
    """
    lines = text.splitlines()
    blocks: list[Block] = []
    pending: tuple[int, str] | None = None  # (line, reason) of the last marker seen
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = _MARKER.match(line)
        if marker:
            if pending is not None:
                raise ValueError(f"{name}:{pending[0]}: docs-test marker not followed by code")
            words = marker["body"].split(None, 1)
            if not words or words[0] != "skip":
                raise ValueError(f"{name}:{i + 1}: unknown docs-test marker {line.strip()!r}")
            reason = words[1].strip() if len(words) > 1 else ""
            if not reason:
                raise ValueError(f"{name}:{i + 1}: 'docs-test: skip' needs a reason")
            pending = (i + 1, reason)
            i += 1
            continue
        opening = _FENCE.match(line)
        if not opening:
            if line.strip() and pending is not None:
                raise ValueError(f"{name}:{pending[0]}: docs-test marker not right before code")
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        lang = opening["info"].strip().split(" ", 1)[0].lower()
        closing = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not closing.match(lines[j]):
            content = lines[j]
            strip = len(content) - len(content.lstrip(" "))
            body.append(content[min(indent, strip) :])
            j += 1
        if j == len(lines):
            raise ValueError(f"{name}:{i + 1}: unclosed code fence")
        reason = None
        if pending is not None:
            if lang not in PYTHON_TAGS:
                raise ValueError(f"{name}:{pending[0]}: docs-test marker before a {lang!r} block")
            reason = pending[1]
            pending = None
        blocks.append(Block(i + 2, lang, "\n".join(body) + "\n", reason))
        i = j + 1
    if pending is not None:
        raise ValueError(f"{name}:{pending[0]}: docs-test marker not followed by code")
    return blocks


def _raised_by_dataset_loader(exc: BaseException) -> bool:
    """The "data not found" error of ``ltvkit.datasets``' local-data loaders."""
    if not isinstance(exc, FileNotFoundError):
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and Path(frames[-1].filename).match("ltvkit/datasets/_loaders.py")


def _page_params() -> list:
    params = []
    for path in _pages():
        rel = _rel(path)
        marks = []
        if rel in XFAIL_PAGES:
            marks.append(pytest.mark.xfail(strict=False, reason=XFAIL_PAGES[rel]))
        params.append(pytest.param(path, id=rel, marks=marks))
    return params


@pytest.fixture
def docs_env(tmp_path, monkeypatch):
    """A temporary working directory and the non-interactive matplotlib backend."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    try:
        import matplotlib
    except ImportError:  # the plot extra is not installed
        yield tmp_path
        return
    backend = matplotlib.get_backend()
    matplotlib.use("Agg", force=True)
    yield tmp_path
    import matplotlib.pyplot as plt

    plt.close("all")
    matplotlib.use(backend, force=True)


@pytest.mark.parametrize("path", _page_params())
def test_page_python_blocks_run(path, docs_env):
    rel = _rel(path)
    blocks = parse_markdown(path.read_text(encoding="utf-8"), rel)
    python = [b for b in blocks if b.lang in PYTHON_TAGS]
    if not python:
        return  # nothing to run
    namespace: dict = {"__name__": "__docs__"}
    for block in python:
        if block.skip_reason is not None:
            continue
        # leading newlines: tracebacks give the line number in the Markdown file
        code = compile("\n" * (block.line - 1) + block.code, rel, "exec")
        start = time.process_time()
        error = None
        try:
            exec(code, namespace)
        except Exception as exc:
            if _raised_by_dataset_loader(exc):
                pytest.skip(f"{rel}:{block.line} needs a local dataset: {exc}")
            # the traceback from the block on, not the whole page as pytest would show it
            tb = traceback.format_exception(type(exc), exc, exc.__traceback__.tb_next)
            error = f"{rel}, block at line {block.line}:\n{''.join(tb)}"
        if error is not None:
            pytest.fail(error, pytrace=False)
        cpu = time.process_time() - start
        assert cpu < MAX_BLOCK_CPU_S, (
            f"{rel}:{block.line} took {cpu:.0f} CPU s; keep documentation examples small"
        )
    if all(b.skip_reason is not None for b in python):
        pytest.skip(f"every Python block of {rel} is marked docs-test: skip")


def test_every_fence_has_a_language_and_markers_are_valid():
    """An untagged fence would hide Python from the test above; tag text as ``text``."""
    problems = []
    for path in _pages():
        rel = _rel(path)
        try:
            blocks = parse_markdown(path.read_text(encoding="utf-8"), rel)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        problems += [
            f"{rel}:{b.line - 1}: code fence without a language" for b in blocks if not b.lang
        ]
    assert not problems, "\n".join(problems)


def test_docs_are_found():
    rels = {_rel(p) for p in _pages()}
    assert {"README.md", "docs/index.md", "docs/models/ziln.md"} <= rels


# ----------------------------------------------------------------------- the parser itself


def test_parse_markdown_tags_indentation_and_markers():
    text = "\n".join(
        [
            "# t",
            "```python",
            "a = 1",
            "```",
            "- item",
            "",
            "  ```py",
            "  b = a + 1",
            "  ```",
            "<!-- docs-test: skip needs a GPU -->",
            "```python",
            "c = 3",
            "```",
            "````text",
            "```python",
            "````",
            "```bash",
            "ls",
            "```",
        ]
    )
    blocks = parse_markdown(text)
    assert [(b.line, b.lang, b.code, b.skip_reason) for b in blocks] == [
        (3, "python", "a = 1\n", None),
        (8, "py", "b = a + 1\n", None),
        (12, "python", "c = 3\n", "needs a GPU"),
        (15, "text", "```python\n", None),
        (18, "bash", "ls\n", None),
    ]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("<!-- docs-test: skip -->\n```python\nx\n```", "needs a reason"),
        ("<!-- docs-test: skip why -->\ntext\n```python\nx\n```", "not right before code"),
        ("<!-- docs-test: skip why -->\n```bash\nx\n```", "before a 'bash' block"),
        ("<!-- docs-test: run -->\n```python\nx\n```", "unknown docs-test marker"),
        ("```python\nx\n", "unclosed"),
    ],
)
def test_parse_markdown_rejects_bad_markup(text, match):
    with pytest.raises(ValueError, match=match):
        parse_markdown(text)


def test_missing_dataset_is_recognised(tmp_path):
    from ltvkit.datasets import load_hillstrom

    with pytest.raises(FileNotFoundError) as info:
        load_hillstrom(path=tmp_path / "no-such-dir")
    assert _raised_by_dataset_loader(info.value)
    assert not _raised_by_dataset_loader(FileNotFoundError("some other file"))
