"""Lenses: read next-token predictions out of the residual stream, layer by layer.

    from mechscope.lens import logit_lens, train_tuned_lens, compare_lenses
    result = logit_lens(model, "The Eiffel Tower is located in the city of", answer=" Paris")
    lens = train_tuned_lens(model, texts)          # per-layer affine translators
    compare_lenses(model, lens, texts).plot()      # KL and perplexity per layer, both lenses
    direct_logit_attribution(model, task)          # each head's and MLP's share of the logit difference
"""

from mechscope.lens.comparison import LensComparison, compare_lenses
from mechscope.lens.dla import DLAResult, direct_logit_attribution
from mechscope.lens.logit_lens import LogitLensResult, logit_lens
from mechscope.lens.training import TunedLensConfig, train_tuned_lens
from mechscope.lens.tuned_lens import LensModelInfo, TunedLens

__all__ = [
    "DLAResult",
    "LensComparison",
    "LensModelInfo",
    "LogitLensResult",
    "TunedLens",
    "TunedLensConfig",
    "compare_lenses",
    "direct_logit_attribution",
    "logit_lens",
    "train_tuned_lens",
]
