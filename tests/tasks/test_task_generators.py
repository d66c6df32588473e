"""Built-in task generators on a word-level tokenizer: shapes, answers, seeds, corruptions."""

from __future__ import annotations

import pytest
import torch
from task_word_models import LEFT_OUT

from mechscope.errors import InputError
from mechscope.tasks import factual, ioi, sva
from mechscope.tasks.factual import RELATIONS
from mechscope.tasks.greater_than import greater_than
from mechscope.tasks.induction import induction
from mechscope.tasks.registry import TASKS, make_task
from mechscope.tasks.vocab import is_single_token


def _words(model, text: str) -> list[str]:
    return [w for w, _ in model.tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str(text)]


@pytest.mark.parametrize("name", list(TASKS))
def test_pairs_have_equal_lengths_and_single_token_answers(words, name):
    task = make_task(name, words, n=12, seed=0)
    assert len(task) == 12
    assert task.clean.ids.shape == task.corrupt.ids.shape
    assert torch.equal(task.clean.attention_mask, task.corrupt.attention_mask)
    assert not torch.equal(task.clean.ids, task.corrupt.ids)
    assert (task.answers != task.wrong).all()
    for token in [*task.answers.tolist(), *task.wrong.tolist()]:
        assert is_single_token(words.tokenizer, words.tokenizer.decode([token]))
    used = " ".join(task.prompts + task.corrupt_prompts) + words.to_string(torch.cat([task.answers, task.wrong]))
    assert not LEFT_OUT & set(_words(words, used))


@pytest.mark.parametrize("name", list(TASKS))
def test_generators_are_deterministic_in_the_seed(words, name):
    a, b, c = (make_task(name, words, n=8, seed=s) for s in (0, 0, 1))
    assert torch.equal(a.clean.ids, b.clean.ids) and torch.equal(a.corrupt.ids, b.corrupt.ids)
    assert torch.equal(a.answers, b.answers) and torch.equal(a.wrong, b.wrong)
    assert not torch.equal(a.clean.ids, c.clean.ids)


@pytest.mark.parametrize("name", list(TASKS))
def test_bad_count_is_refused(words, name):
    with pytest.raises(InputError, match="n .* positive integer; received 0"):
        make_task(name, words, n=0)


def _names(model, prompt: str) -> list[str]:
    return [w for w in _words(model, prompt) if w in ioi.NAMES]


@pytest.mark.parametrize("order, first_is_io", [("ABBA", [True]), ("BABA", [False]), ("both", [True, False])])
def test_ioi_orders(words, order, first_is_io):
    task = ioi.ioi(words, n=8, order=order)
    for i, prompt in enumerate(task.prompts):
        io, s = words.to_string(task.answers[i : i + 1]).strip(), words.to_string(task.wrong[i : i + 1]).strip()
        expected = [io, s, s] if first_is_io[i % len(first_is_io)] else [s, io, s]
        assert _names(words, prompt) == expected


def test_ioi_abc_corruption_uses_three_new_names(words):
    task = ioi.ioi(words, n=16)
    for i, (clean, corrupt) in enumerate(zip(task.prompts, task.corrupt_prompts)):
        names = _names(words, corrupt)
        assert len(names) == 3 and len(set(names)) == 3
        assert not set(names) & set(_names(words, clean))
        assert words.to_string(task.answers[i : i + 1]).strip() not in names
        # Only the names change: the rest of the prompt is the clean one.
        assert [w for w in _words(words, corrupt) if w not in names] == [
            w for w in _words(words, clean) if w not in _names(words, clean)
        ]


def test_ioi_one_template_lines_up_and_mixing_pads(words):
    one = ioi.ioi(words, n=16)
    assert bool(one.clean.attention_mask.all())
    assert all(p.startswith("When ") for p in one.prompts)
    mixed = ioi.ioi(words, n=32, mix_templates=True)
    assert not bool(mixed.clean.attention_mask.all())
    assert (mixed.clean.attention_mask[:, -1] == 1).all()  # left-padded: answers read at the end
    assert len({p.split(" ")[0] for p in mixed.prompts}) > 2


def test_ioi_held_out_templates_and_names(words):
    """Discovery and held-out sets share no template and no name."""
    names = ioi.NAMES[::2]
    train = ioi.ioi(words, n=32, mix_templates=True, templates=range(8), names=names)
    held = ioi.ioi(words, n=32, seed=1, mix_templates=True, templates=range(8, 16), names=ioi.NAMES[1::2])
    openings = lambda task: {" ".join(p.split(" ")[:1]) for p in task.prompts}  # noqa: E731
    assert all(set(_names(words, p)) <= set(names) for p in train.prompts + train.corrupt_prompts)
    assert not any(set(_names(words, p)) & set(names) for p in held.prompts + held.corrupt_prompts)
    first = lambda indices: {ioi.IOI_TEMPLATES[i].split(" ")[0] for i in indices}  # noqa: E731
    assert openings(train) <= first(range(8)) and openings(held) <= first(range(8, 16))
    assert "Friends" in openings(held) and "Friends" not in openings(train)  # template 15 only
    with pytest.raises(InputError, match="pass mix_templates=True"):
        ioi.ioi(words, templates=[1, 2])


def test_ioi_custom_template_and_bad_templates(words):
    task = ioi.ioi(words, n=4, template="Then {IO} and {S} met. {S} gave a {OBJECT} to")
    assert all(p.startswith("Then ") for p in task.prompts)
    with pytest.raises(InputError, match=r"names \{IO\} once and then \{S\} twice"):
        ioi.ioi(words, template="{S} and {IO} met, {S} waved to")
    with pytest.raises(InputError, match="space before"):
        ioi.ioi(words, template="Then {IO} and {S} met.{S} waved to")
    with pytest.raises(InputError, match="template index"):
        ioi.ioi(words, template=99)
    with pytest.raises(InputError, match="order must be one of"):
        ioi.ioi(words, order="AABB")


def test_ioi_refuses_a_tokenizer_without_names(tiny):
    with pytest.raises(InputError, match="IOI names need at least 5 words"):
        ioi.ioi(tiny)


def test_greater_than_asks_for_the_ones_digit_when_digits_split(words):
    task = greater_than(words, n=16)
    for i, (clean, corrupt) in enumerate(zip(task.prompts, task.corrupt_prompts)):
        start, end = clean.split("from the year ")[1].split(" to the year ")
        assert end == start[:3]  # century and decade given; the ones digit is asked for
        d = int(start[3])
        assert words.tokenizer.decode([int(task.answers[i])]) == str(d + 1)
        assert words.tokenizer.decode([int(task.wrong[i])]) == str(d - 1)
        assert corrupt == clean.replace(f"year {start} ", f"year {start[:3]}0 ")


def test_greater_than_keeps_hanna_design_for_two_digit_tokens(pair_words):
    task = greater_than(pair_words, n=16)
    for i, (clean, corrupt) in enumerate(zip(task.prompts, task.corrupt_prompts)):
        start, end = clean.split("from the year ")[1].split(" to the year ")
        assert end == start[:2]
        yy = int(start[2:])
        assert pair_words.tokenizer.decode([int(task.answers[i])]) == f"{yy + 1:02d}"
        assert pair_words.tokenizer.decode([int(task.wrong[i])]) == f"{yy - 1:02d}"
        assert f"year {start[:2]}01 to" in corrupt


def test_greater_than_refuses_other_year_splits(tiny):
    with pytest.raises(InputError, match="splits ' 1732' into"):
        greater_than(tiny)


@pytest.mark.parametrize("relation", list(RELATIONS))
def test_factual_corruption_swaps_the_subject(words, relation):
    task = factual.factual(words, n=16, relation=relation)
    facts = dict(RELATIONS[relation].facts)
    template = RELATIONS[relation].template
    head, tail = template.split("{subject}")
    for i, (clean, corrupt) in enumerate(zip(task.prompts, task.corrupt_prompts)):
        subject, other = clean[len(head) : len(clean) - len(tail)], corrupt[len(head) : len(corrupt) - len(tail)]
        assert subject != other
        assert words.tokenizer.decode([int(task.answers[i])]) == facts[subject]
        assert words.tokenizer.decode([int(task.wrong[i])]) == facts[other]
    with pytest.raises(InputError, match="unknown relation 'rivers'; expected one of capital, language"):
        factual.factual(words, relation="rivers")


@pytest.mark.parametrize("bos", [None, True])
def test_induction_repeats_and_the_corruption_breaks_the_repeat(words, bos):
    seq_len = 6
    task = induction(words, n=8, seq_len=seq_len, prepend_bos=bos)
    start = 1 if bos else 0
    assert task.clean.ids.shape == (8, start + 2 * seq_len - 1)
    if bos:
        assert (task.clean.ids[:, 0] == words.tokenizer.bos_token_id).all()
    for clean, corrupt, answer, wrong in zip(task.clean.ids, task.corrupt.ids, task.answers, task.wrong):
        first = clean[start : start + seq_len]
        assert torch.equal(clean[start + seq_len :], first[:-1])
        assert answer == first[-1]
        assert torch.equal(corrupt[: start + seq_len], clean[: start + seq_len])
        assert not set(corrupt[start + seq_len :].tolist()) & set(first.tolist())
        assert int(wrong) not in clean.tolist() + corrupt.tolist()


def test_sva_flips_the_subject_number(words):
    task = sva.sva(words, n=16)
    singular = {s for s, _ in sva.NOUNS}
    for i, (clean, corrupt) in enumerate(zip(task.prompts, task.corrupt_prompts)):
        subject, other = clean.split()[1], corrupt.split()[1]
        assert subject != other and clean.split()[2:] == corrupt.split()[2:]
        verb = words.tokenizer.decode([int(task.answers[i])])
        assert verb == ("has" if subject in singular else "have")
        assert words.tokenizer.decode([int(task.wrong[i])]) == ("have" if subject in singular else "has")
    assert sum(p.split()[1] in singular for p in task.prompts) == 8
    with pytest.raises(InputError, match=r"\{subject\} and \{attractor\}"):
        sva.sva(words, template="The {noun} is")
