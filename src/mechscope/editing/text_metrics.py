"""Text measures of CounterFact's generation tests: fluency and consistency.

::

    ngram_entropy("the cat sat on the mat")              # fluency: weighted bi- and trigram entropy
    idf = fit_idf(reference_texts)
    tfidf_similarity("Paris is in Italy ...", "Rome ... Italian ...", idf)   # consistency

Both follow the ROME paper's code: fluency is the mean of ⅔·H₂ and ⁴⁄₃·H₃, the entropies
(in bits) of a text's word bigram and trigram frequencies, so repetitive text scores
low; consistency is the cosine between TF-IDF vectors of the generated text and of
reference text about the new attribute. The paper's references are Wikipedia articles;
offline, the references are the unedited model's own generations about subjects that
truly have the new attribute, and the IDF is fitted on those reference texts.
Words are ``\\w+`` runs and single punctuation marks, lowercased for TF-IDF.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

WORD = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> list[str]:
    return WORD.findall(text)


def ngram_entropy(text: str, ns: Sequence[int] = (2, 3), weights: Sequence[float] = (2 / 3, 4 / 3)) -> float:
    """Mean over n of ``weight · H(n-gram frequencies)`` in bits (0 for text too short)."""
    tokens = words(text)
    parts = []
    for n, weight in zip(ns, weights):
        grams = Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
        total = sum(grams.values())
        entropy = -sum(c / total * math.log2(c / total) for c in grams.values()) if total else 0.0
        parts.append(weight * entropy)
    return sum(parts) / len(parts)


def fit_idf(texts: Sequence[str]) -> dict[str, float]:
    """Smoothed inverse document frequency, ``ln((1 + N) / (1 + df)) + 1`` (scikit-learn's)."""
    documents = [set(w.lower() for w in words(text)) for text in texts]
    counts = Counter(w for document in documents for w in document)
    n = len(documents)
    return {w: math.log((1 + n) / (1 + df)) + 1.0 for w, df in counts.items()}


def tfidf_similarity(a: str, b: str, idf: dict[str, float]) -> float:
    """Cosine of the two texts' TF-IDF vectors (words without an IDF are left out); 0 if either is empty."""
    def vector(text: str) -> dict[str, float]:
        counts = Counter(w.lower() for w in words(text))
        return {w: c * idf[w] for w, c in counts.items() if w in idf}

    va, vb = vector(a), vector(b)
    dot = sum(value * vb.get(w, 0.0) for w, value in va.items())
    norm = math.sqrt(sum(v * v for v in va.values())) * math.sqrt(sum(v * v for v in vb.values()))
    return dot / norm if norm else 0.0
