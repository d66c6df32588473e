"""Where facts live: causal tracing (Meng et al. 2022), attention knockout and attribute
extraction (Geva et al. 2023).

    trace = causal_trace(model, fact)                    # one fact: token × layer, hidden / mlp / attn
    average = average_trace(model, known_facts(model).facts[:100])
    attention_knockout(model, facts).plot()              # % change of p(attribute) per layer
    attribute_extraction(model, facts).plot()            # extraction rate of attention and MLPs
"""

from mechscope.tracing.average import average_trace
from mechscope.tracing.causal import causal_trace, causal_trace_reference, embedding_std
from mechscope.tracing.config import KINDS, TraceConfig, TraceKind
from mechscope.tracing.extraction import ExtractionResult, attribute_extraction
from mechscope.tracing.knockout import (
    SOURCES,
    KnockoutResult,
    attention_knockout,
    attention_knockout_reference,
)
from mechscope.tracing.result import BUCKETS, AverageTrace, CausalTrace

__all__ = [
    "BUCKETS",
    "KINDS",
    "SOURCES",
    "AverageTrace",
    "CausalTrace",
    "ExtractionResult",
    "KnockoutResult",
    "TraceConfig",
    "TraceKind",
    "attention_knockout",
    "attention_knockout_reference",
    "attribute_extraction",
    "average_trace",
    "causal_trace",
    "causal_trace_reference",
    "embedding_std",
]
