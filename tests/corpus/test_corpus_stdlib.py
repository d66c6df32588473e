"""The larger offline corpus: docstrings and comments of the standard library."""

from __future__ import annotations

import sysconfig

import pytest

from mechscope.corpus import default_texts, stdlib_texts, token_batches
from mechscope.corpus.stdlib import file_prose, prose_of_tree
from mechscope.errors import InputError

SOURCE = '''#!/usr/bin/env python3
# -*- coding: utf-8 -*-
"""Module docstring.

# not a comment: inside the docstring
"""
import os  # a trailing comment is left out

# A comment block
# over two lines.
#------------------


class Thing:
    """Class docstring."""

    def method(self):
        """Method docstring."""
        # inside the method
        return 1
'''


def test_file_prose_keeps_docstrings_and_comments_in_source_order(tmp_path):
    path = tmp_path / "mod.py"
    path.write_text(SOURCE)
    assert file_prose(path) == (
        "Module docstring.\n\n# not a comment: inside the docstring\n\n"
        "A comment block\nover two lines.\n\nClass docstring.\n\nMethod docstring.\n\ninside the method"
    )
    (tmp_path / "bad.py").write_text("print 'python 2'\n")
    assert file_prose(tmp_path / "bad.py") == ""


def test_prose_of_tree_is_sorted_and_skips_generated_and_installed_code(tmp_path):
    for relative in ("b.py", "a/z.py", "a/c.py", "encodings/cp1252.py", "site-packages/pkg/m.py", "empty.py"):
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("" if relative == "empty.py" else f'"""{relative}"""\n')
    assert prose_of_tree(str(tmp_path)) == ("a/c.py", "a/z.py", "b.py")
    (tmp_path / "nothing").mkdir()
    with pytest.raises(InputError, match="ships without its standard-library sources"):
        prose_of_tree(str(tmp_path / "nothing"))


def test_stdlib_texts_reads_this_pythons_library():
    texts = stdlib_texts()
    assert len(texts) > 1000 and sum(map(len, texts)) > 3_000_000
    assert any(text.startswith("JSON (JavaScript Object Notation)") for text in texts)
    assert texts == stdlib_texts() and texts is not stdlib_texts()
    assert prose_of_tree.cache_info().currsize >= 1 and sysconfig.get_paths()["stdlib"]


@pytest.mark.integration
def test_large_corpus_gives_over_a_million_smollm2_tokens(smollm2):
    rows = sum(b.shape[0] for b in token_batches(smollm2, default_texts() + stdlib_texts(), seq_len=128,
                                                  batch_size=1024, prepend_bos=True))
    assert rows * 127 > 1_100_000
