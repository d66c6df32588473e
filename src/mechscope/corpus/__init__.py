"""Token streams to run models on: offline corpora (a small default and the standard
library's prose), your own text files, and fixed-length rows with a held-out split."""

from mechscope.corpus.batches import HELDOUT_EVERY, token_batches
from mechscope.corpus.rows import token_rows
from mechscope.corpus.stdlib import stdlib_texts
from mechscope.corpus.text import default_texts, read_text_files

__all__ = ["HELDOUT_EVERY", "default_texts", "read_text_files", "stdlib_texts", "token_batches", "token_rows"]
