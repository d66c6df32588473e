"""A larger offline corpus: the docstrings and comments of CPython's standard library.

::

    texts = stdlib_texts()        # 1,484 documents, one per module file; 1.30M SmolLM2 tokens

:func:`default_texts` (``pydoc_data.topics``, ~113K SmolLM2 tokens) is enough for a tuned
lens, not for a sparse autoencoder, which wants a million tokens or more. The standard
library's own prose is larger and just as offline: every ``.py`` file under the
standard-library directory, read with :mod:`ast`, gives its module, class and function
docstrings and its full-line comments (consecutive lines joined into one block), in
source order, as one document. Files are visited in sorted order of their relative
paths, so the corpus is the same on every machine with the same Python version.

Test modules are kept: their docstrings and comments are English too ("Test that the
auto-squeezing creates a button"), and without them the corpus is only ~0.78M tokens.
Left out: ``site-packages`` (whatever happens to be installed), ``encodings`` (codec
tables whose comments are lists of character names), ``pydoc_data`` (that is
:func:`default_texts`), files that do not parse (Python 2 test data), shebang and coding
lines, comments after code on the same line, rules (``# ----``), and comments without a letter.

Its limits: terse English about Python's own implementation, full of identifiers and
doctest snippets, with much repetition in the tests; its size and content change with
the Python version (a distribution that strips sources gives less, and raises an
error if it gives nothing). Measured with SmolLM2's tokenizer on CPython 3.11.7: 1,484
documents, 4.8M characters, 1.30M tokens. With :func:`default_texts` (113K tokens)
added, as ``mechscope sae harvest --corpus large`` does, the train split holds 9,968
rows of 128 tokens with BOS first: 1.27M tokens to harvest. The first call parses ~30 MB
of source (5-8 s on one core); the result is cached for the process. For anything that
must look like web text, pass your own files with :func:`read_text_files`.
"""

from __future__ import annotations

import ast
import gc
import sysconfig
import tokenize
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from mechscope.errors import InputError

SKIPPED_DIRS = frozenset({"site-packages", "dist-packages", "__pycache__", "encodings", "pydoc_data"})
"""Directory names whose files :func:`stdlib_texts` leaves out, at any depth."""

_DEFS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
_BODIES = ("body", "orelse", "finalbody", "handlers", "cases")


def stdlib_texts() -> list[str]:
    """One document per standard-library module file: its docstrings and comments."""
    return list(prose_of_tree(sysconfig.get_paths()["stdlib"]))


@lru_cache(maxsize=2)
def prose_of_tree(root: str | Path) -> tuple[str, ...]:
    """The non-empty :func:`file_prose` of every wanted ``.py`` file under ``root``, in
    sorted order of relative paths."""
    base = Path(root)
    found = ((p.relative_to(base).as_posix(), p) for p in base.rglob("*.py"))
    files = [path for relative, path in sorted(found) if not SKIPPED_DIRS & set(relative.split("/")[:-1])]
    with _no_gc():
        texts = tuple(text for text in map(file_prose, files) if text)
    if not texts:
        raise InputError(
            f"found no Python sources with docstrings or comments under {root}; this Python ships without "
            "its standard-library sources. Use default_texts() or your own files (mechscope.corpus.read_text_files)"
        )
    return texts


@contextmanager
def _no_gc() -> Iterator[None]:
    # ast.parse builds millions of short-lived nodes; the cyclic collector scanning them
    # makes parsing the standard library ~5x slower (20 s instead of 4 s).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def file_prose(path: str | Path) -> str:
    """The docstrings and full-line comments of one Python file in source order, blocks
    separated by a blank line ("" if the file cannot be read or parsed)."""
    try:
        with tokenize.open(path) as file:  # honours the file's coding cookie
            source = file.read()
        tree = ast.parse(source)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return ""
    docstrings = list(_docstrings(tree))
    inside = {line for first, last, _ in docstrings for line in range(first, last + 1)}
    pieces = [(first, text) for first, _, text in docstrings] + _comments(source.splitlines(), inside)
    pieces.sort(key=lambda piece: piece[0])
    return "\n\n".join(text for _, text in pieces)


def _docstrings(node: ast.AST) -> Iterator[tuple[int, int, str]]:
    """(first line, last line, text) of each docstring, visiting statements only (walking
    every expression node too would double the time)."""
    if isinstance(node, _DEFS):
        text = ast.get_docstring(node, clean=True)
        if text and text.strip():
            first = node.body[0]
            yield first.lineno, first.end_lineno or first.lineno, text.strip()
    for field in _BODIES:
        for child in getattr(node, field, None) or ():
            if isinstance(child, (ast.stmt, ast.excepthandler)) or type(child).__name__ == "match_case":
                yield from _docstrings(child)


def _comments(lines: list[str], skip: set[int]) -> list[tuple[int, str]]:
    """Blocks of consecutive full-line comments with their first line number. A ``#`` line
    inside a docstring is not a comment; one inside another multi-line string (a rare
    template) is taken as one, a cost accepted to avoid tokenizing every file."""
    blocks: list[tuple[int, list[str]]] = []
    previous = -2
    for number, line in enumerate(lines, start=1):
        stripped = line.lstrip()
        if not stripped.startswith("#") or number in skip:
            continue
        text = stripped.lstrip("#").strip()
        if number <= 2 and (stripped.startswith("#!") or "coding" in text):
            continue
        if text and not any(c.isalnum() for c in text):  # a rule such as "# -------"
            text = ""
        if number == previous + 1 and blocks:
            blocks[-1][1].append(text)
        else:
            blocks.append((number, [text]))
        previous = number
    joined = ((number, "\n".join(block).strip()) for number, block in blocks)
    return [(number, text) for number, text in joined if any(c.isalpha() for c in text)]
