"""head_roles on every family: shapes, ranges, determinism, results, plots and errors."""

from __future__ import annotations

import json

import pytest
import torch
from matplotlib.figure import Figure

from mechscope.errors import InputError, MechscopeError
from mechscope.heads import SCORES, HeadRoles, head_roles, repeated_tokens


@pytest.fixture
def roles(tiny) -> HeadRoles:
    return head_roles(tiny, n_seqs=2, seq_len=8, seed=0)


def test_every_score_is_layer_by_head_in_unit_range(tiny, roles):
    assert tuple(roles.scores) == SCORES
    for name, values in roles.scores.items():
        assert values.shape == (tiny.cfg.n_layers, tiny.cfg.n_heads), name
        assert torch.isfinite(values).all(), name
        assert values.min() >= 0 and values.max() <= 1, name
    assert set(roles.baselines) == set(SCORES)
    assert roles.bos and roles.n_candidates == 16  # 8 distinct tokens in each of 2 sequences (seed 0)


def test_repeated_tokens_layout(tiny):
    seqs = repeated_tokens(tiny, n_seqs=3, seq_len=10, seed=7)
    assert seqs.ids.shape == (3, 21)
    assert (seqs.ids[:, 0] == tiny.tokenizer.bos_token_id).all()
    assert torch.equal(seqs.ids[:, seqs.first], seqs.ids[:, seqs.second])
    special = set(tiny.tokenizer.all_special_ids)
    for row in seqs.ids[:, seqs.first].tolist():
        assert len(set(row)) == len(row) and not special & set(row)
    assert torch.equal(seqs.ids, repeated_tokens(tiny, n_seqs=3, seq_len=10, seed=7).ids)
    assert not torch.equal(seqs.ids, repeated_tokens(tiny, n_seqs=3, seq_len=10, seed=8).ids)
    assert repeated_tokens(tiny, n_seqs=1, seq_len=4, prepend_bos=False).ids.shape == (1, 8)


def test_same_seed_same_scores_and_model_left_as_it_was(tiny):
    ids = torch.arange(3, 13)[None]
    with torch.no_grad():
        before = tiny(ids)
    first = head_roles(tiny, n_seqs=2, seq_len=6, seed=1)
    again = head_roles(tiny, n_seqs=2, seq_len=6, seed=1)
    for name in SCORES:
        assert torch.equal(first.scores[name], again.scores[name])
    with torch.no_grad():
        assert torch.equal(tiny(ids), before)


def test_to_dict_save_and_top(roles, tmp_path):
    data = json.loads(roles.save(tmp_path / "roles.json").read_text())
    assert data["type"] == "HeadRoles"
    assert torch.tensor(data["induction"]).shape == roles.induction.shape
    top = roles.top("previous_token", 3)
    assert len(top) == 3 and [v for *_, v in top] == sorted((v for *_, v in top), reverse=True)
    layer, head, value = top[0]
    assert value == float(roles.previous_token.max()) == float(roles.previous_token[layer, head])


def test_plots(roles):
    fig = roles.plot()
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes[: len(SCORES)]] == [s.replace("_", " ") for s in SCORES]
    one = roles.plot(score="induction")
    assert isinstance(one, Figure) and "induction" in one.axes[0].get_title()


def test_unknown_score_says_what_is_known(roles):
    with pytest.raises(InputError, match=r"unknown score 'inductoin'.*did you mean 'induction'"):
        roles.top("inductoin")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_seqs": 0}, "n_seqs must be at least 1"),
        ({"seq_len": 1}, "seq_len must be at least 2"),
        ({"seq_len": 40}, "pass seq_len <= 31"),  # tiny models have 64 positions
    ],
)
def test_bad_arguments_say_how_to_fix_them(tiny, kwargs, message):
    with pytest.raises(MechscopeError, match=message):
        head_roles(tiny, **kwargs)
