"""The lenses on smollm2-135m, the default model (RMSNorm, 30 layers, tied embeddings)."""

from __future__ import annotations

import pytest

from mechscope.corpus import default_texts
from mechscope.lens import TunedLensConfig, compare_lenses, logit_lens, train_tuned_lens

pytestmark = pytest.mark.integration

EIFFEL = "The Eiffel Tower is located in the city of"


def test_logit_lens_finds_paris_in_the_last_layers(smollm2):
    result = logit_lens(smollm2, EIFFEL, answer=" Paris")
    assert result.top_tokens[-1][-1][0] == " Paris"
    assert abs(float(result.answer_probs[-1, -1]) - 0.70) < 0.05  # 0.70 seen on this machine (design.md)
    ranks = result.answer_ranks[:, -1]
    assert int(ranks[-1]) == 1 and int(ranks[-2]) == 1  # already on top before the last block
    assert int(ranks[0]) > 100  # and nowhere near it in the embedding


@pytest.mark.slow
def test_a_briefly_trained_tuned_lens_beats_the_logit_lens_at_every_layer(smollm2):
    """2,048 training tokens (about a minute on 2 cores) already win at every layer on
    1,024 held-out tokens; benchmarks/tuned_lens.py runs the longer version."""
    texts = default_texts()
    config = TunedLensConfig(token_budget=2048, batch_size=4, unembed_dtype="bfloat16", progress=False)
    lens = train_tuned_lens(smollm2, texts, config=config)
    result = compare_lenses(smollm2, lens, texts, max_tokens=1024, batch_size=4)
    margins = (result.logit_kl - result.tuned_kl)[:-1]
    assert all(result.tuned_wins), margins
    assert float(margins.min()) > 0.1
