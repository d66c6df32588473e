"""Token streams to run models on: an offline default corpus, your own text files, and
fixed-length batches with a held-out split."""

from mechscope.corpus.batches import HELDOUT_EVERY, token_batches
from mechscope.corpus.text import default_texts, read_text_files

__all__ = ["HELDOUT_EVERY", "default_texts", "read_text_files", "token_batches"]
