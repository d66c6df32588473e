"""Causal tracing averaged over a set of facts, by token group (Meng et al. 2022, Figure 2).

::

    known = known_facts(model).facts
    average = average_trace(model, known[:100])
    average.summary()      # {"mlp @ last subject token": (layer, effect), "attn @ last token": ...}
    average.plot().savefig("aie.png")

Prompts differ in length and in where the subject lies, so effects are grouped by the
paper's six token groups (first, middle and last subject token, the first token after
the subject, further tokens, the last token) before averaging. The noise scale is
measured once over all the facts' subjects, as the paper does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from mechscope.errors import InputError
from mechscope.facts.dataset import Fact
from mechscope.tracing.causal import causal_trace, embedding_std
from mechscope.tracing.config import TraceConfig
from mechscope.tracing.result import AverageTrace


def average_trace(model, facts: Sequence[Fact], *, config: TraceConfig = TraceConfig(),
                  progress: bool = True, keep_traces: bool = True) -> AverageTrace:
    """Trace every fact (fast path) and average the indirect effects per token group and layer."""
    facts = list(facts)
    if not facts:
        raise InputError("no facts to trace; pass at least one (e.g. known_facts(model).facts)")
    std = config.noise_std if config.noise_std is not None else config.noise * embedding_std(model, facts)
    traces = [causal_trace(model, fact, config=config, noise_std=std)
              for fact in tqdm(facts, desc="causal tracing", disable=not progress, leave=False)]
    return AverageTrace(
        model=model.name,
        kinds=config.kinds,
        effects=torch.stack([trace.buckets() for trace in traces]).nanmean(0),
        low=sum(t.low for t in traces) / len(traces),
        high=sum(t.high for t in traces) / len(traces),
        n_facts=len(traces),
        window=config.window,
        traces=tuple(traces) if keep_traces else (),
    )
