"""Settings that let edits succeed on tiny random models (see test_methods)."""

from __future__ import annotations

import random

from tiny import WORDS

from mechscope.editing import CovarianceConfig, FtConfig, MemitConfig, RomeConfig, ValueConfig
from mechscope.facts import make_request

_rng = random.Random(0)
TEXTS = tuple(" ".join(_rng.choice(WORDS) for _ in range(200)) for _ in range(20))
COVARIANCE = CovarianceConfig(n_tokens=2000, texts=TEXTS, seq_len=32)
# Random weights need a larger value than trained ones; there is no essence to keep.
VALUE = ValueConfig(steps=30, clamp_norm=50.0, weight_decay=0.0, kl_factor=0.0)
CONFIGS = {
    "rome": RomeConfig(layer=0, covariance=COVARIANCE, value=VALUE),
    "memit": MemitConfig(layers=(0,), covariance=COVARIANCE, value=VALUE, update_weight=0.1),
    "ft-l": FtConfig(layer=0, norm_constraint=0.05, lr=0.01),
}


def request(model, target: str = "rome"):
    """In a two-layer model the subject must end the prompt: its state at layer 0 then reaches
    the prediction directly (a middle token's MLP output barely moves the last position)."""
    return make_request("located in city of {}", "eiffel tower", target, model=model)
