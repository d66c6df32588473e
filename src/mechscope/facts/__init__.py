"""Facts to trace and to edit: a known_1000-layout dataset and CounterFact-layout requests.

    facts = builtin_facts()                          # 793 facts written for mechscope
    known = known_facts(model, facts)                # those the model completes correctly
    requests = make_requests(known.facts, n=100)     # counterfactual rewrites with eval prompts
"""

from mechscope.facts.counterfact import (
    EditRequest,
    Rewrite,
    load_requests,
    make_request,
    make_requests,
    save_requests,
)
from mechscope.facts.dataset import Fact, KnownFacts, builtin_facts, known_facts, load_facts, save_facts
from mechscope.facts.relations import RELATIONS, Relation
from mechscope.facts.tokens import subject_span

__all__ = [
    "RELATIONS",
    "EditRequest",
    "Fact",
    "KnownFacts",
    "Relation",
    "Rewrite",
    "builtin_facts",
    "known_facts",
    "load_facts",
    "load_requests",
    "make_request",
    "make_requests",
    "save_facts",
    "save_requests",
    "subject_span",
]
