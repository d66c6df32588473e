"""The investigation on the bundled models: smollm2-135m in the default suite (a reduced
quick run), gemma3-270m's quick investigation as a slow test."""

from __future__ import annotations

import pytest

from mechscope.investigate import InvestigateOptions, investigate
from mechscope.report import render_investigation

pytestmark = pytest.mark.integration


def _check(found) -> None:
    assert not found.refused, found.behaviour.refusal
    assert found.behaviour.discovery.clean_accuracy > 0.5
    check = found.circuit.check
    assert check.n_edges <= round(0.05 * found.circuit.scores.graph.n_edges) + 1
    assert -1.0 < check.f_heldout < 3.0 and found.where.top_heads
    html = render_investigation(found)
    assert all(f'<section id="{s}">' in html for s in ("summary", "behaviour", "split", "where", "who", "circuit"))


def test_smollm2_does_ioi_and_the_reduced_investigation_completes(smollm2):
    options = InvestigateOptions.quick(n=6, patch_prompts=2, exact_layers=1, role_seqs=2, ig_steps=1,
                                       minimality_edges=2)
    _check(investigate(smollm2, "ioi", options, progress=False))


@pytest.mark.slow
def test_gemma3_quick_investigation(gemma3):
    _check(investigate(gemma3, "ioi", InvestigateOptions.quick(), progress=False))
