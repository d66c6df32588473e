"""Text to run a model on, with no download: a default that ships with Python, or your files.

::

    texts = default_texts()                       # 79 documents, ~465 KB (CPython 3.11)
    texts = read_text_files(["notes.txt", "books/"])

The default is the reference text CPython ships for ``help()``: the module
``pydoc_data.topics``, the language reference and library chapters on statements,
operators, types and special methods. It is in every standard CPython installation, so
it works offline and is the same on every machine with the same Python version.

Its limits: it is technical English about one programming language, dense with grammar
rules and code, and small (~110K tokens with SmolLM2's tokenizer). That is enough to fit
a tuned lens or collect activations on a CPU, and to compare runs on one machine, but
its statistics are not those of web text or of a model's training data, and its exact
content changes with the Python version. For anything beyond a first look, pass your
own text with :func:`read_text_files`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mechscope.errors import InputError

TEXT_SUFFIXES = (".txt", ".md", ".rst")
"""What :func:`read_text_files` reads from a directory."""


def default_texts() -> list[str]:
    """The ``pydoc_data.topics`` documents, in sorted order of their names."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some Linux distributions package it separately
        raise InputError(
            "the default corpus (pydoc_data.topics, part of CPython) is missing from this Python; "
            "install your distribution's full Python standard library, or pass your own text files "
            "(mechscope.corpus.read_text_files)"
        ) from None
    return [topics[name] for name in sorted(topics)]


def read_text_files(paths: str | Path | Sequence[str | Path]) -> list[str]:
    """The UTF-8 text of each file, one string per file; a directory contributes its
    ``.txt``, ``.md`` and ``.rst`` files (recursively, in sorted order). Empty files are skipped."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not paths:
        raise InputError("no text files given; pass one or more file or directory paths")
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
            if not found:
                raise InputError(f"directory {path} holds no {', '.join(TEXT_SUFFIXES)} files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"no such file or directory: {path}")
    texts = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise InputError(
                f"{file} is not UTF-8 text ({error.reason} at byte {error.start}); convert it first"
            ) from None
        if text.strip():
            texts.append(text)
    if not texts:
        raise InputError(f"the given files hold no text: {', '.join(map(str, files))}")
    return texts
