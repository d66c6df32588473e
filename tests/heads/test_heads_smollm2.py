"""Head roles of smollm2-135m with the defaults (8 sequences, 2 × 40 random tokens, seed 0).

Numbers seen on the development machine (seeds 0, 1, 2 agree to ±0.04 on every value
below and on which head is top): induction L18H6 0.86, previous-token L16H0 0.88,
duplicate-token L14H3 0.69, copy suppression L23H3 0.73 and L24H4 0.71, and L23H2 the
one head with both prefix matching (0.50) and copying (0.72). The strong prefix-matching
heads of layers 17-18 barely copy directly (≤ 0.05): their output is read by later
layers, not by the unembedding.
"""

from __future__ import annotations

import pytest

from mechscope.heads import HeadRoles, head_roles

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def roles(smollm2) -> HeadRoles:
    return head_roles(smollm2)


def test_top_heads_of_each_attention_role(roles):
    for score, head, seen in (("induction", (18, 6), 0.857), ("previous_token", (16, 0), 0.883),
                              ("duplicate_token", (14, 3), 0.693)):
        layer, index, value = roles.top(score, 1)[0]
        assert (layer, index) == head, score
        assert abs(value - seen) < 0.05, score


def test_an_induction_head_that_also_copies(roles):
    assert abs(float(roles.induction[23, 2]) - 0.497) < 0.05
    assert abs(float(roles.copying[23, 2]) - 0.716) < 0.05
    for layer, head, _ in roles.top("induction", 3):  # prefix matching alone, at layers 17-18
        assert roles.copying[layer, head] < 0.1


def test_copy_suppression_heads(roles):
    top = roles.top("copy_suppression", 2)
    assert {(layer, head) for layer, head, _ in top} == {(23, 3), (24, 4)}
    assert all(abs(value - 0.72) < 0.05 for *_, value in top)


def test_successor_pairs_are_single_tokens_of_smollm2(roles):
    # SmolLM2 splits " 1" into " " + "1": its digits enter without the space.
    assert roles.successor_sequences == ("digits, no space", "number words", "ordinals", "days", "months", "letters")
    assert roles.n_successor_pairs == 68
