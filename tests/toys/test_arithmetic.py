"""Addition accuracy: the pairs, and the digit-by-digit greedy check on a stand-in model
that knows (or is off by one on) every answer."""

from __future__ import annotations

import pytest
import torch

from mechscope.errors import InputError
from mechscope.toys.arithmetic import addition_accuracy, addition_pairs, answers_correct

_VOCAB = list("0123456789+=\n")


class _Tokenizer:
    def encode(self, text, add_special_tokens=False):
        return [_VOCAB.index(c) for c in text]


class _Calculator:
    """A stand-in model over characters: after ``a+b=`` it predicts ``a+b`` (plus ``off``),
    digit by digit, then a newline; elsewhere, a newline."""

    name, device, tokenizer = "calculator", torch.device("cpu"), _Tokenizer()

    def __init__(self, off: int = 0, add_digit: bool = False) -> None:
        self.off, self.add_digit = off, add_digit
        self.hf_model = self

    def to_tokens(self, text):
        return torch.tensor([self.tokenizer.encode(text)])

    def __call__(self, input_ids, logits_to_keep=0):
        logits = self._logits(input_ids)
        return type("Out", (), {"logits": logits[:, -logits_to_keep:] if logits_to_keep else logits})()

    def _logits(self, ids):
        logits = torch.zeros(*ids.shape, len(_VOCAB))
        for row, seq in enumerate(ids.tolist()):
            text = "".join(_VOCAB[i] for i in seq)
            for pos in range(len(text)):
                prefix = text[: pos + 1].split("\n")[-1]
                nxt = "\n"
                if "=" in prefix:
                    question, written = prefix.split("=")
                    a, b = map(int, question.split("+"))
                    answer = str(a + b + self.off) + ("7" if self.add_digit else "")
                    nxt = answer[len(written)] if len(written) < len(answer) else "\n"
                logits[row, pos, _VOCAB.index(nxt)] = 1.0
        return logits


def test_pairs_below_the_limit():
    pairs = addition_pairs(100)
    assert len(pairs) == 5050 and max(a + b for a, b in pairs) == 99 and (0, 0) in pairs


def test_greedy_check_accepts_exact_answers_only():
    pairs = [(3, 4), (12, 25), (60, 39), (0, 0), (9, 1)]
    template = "1+1=2\n{a}+{b}="
    assert answers_correct(_Calculator(), template, pairs).all()
    assert not answers_correct(_Calculator(off=1), template, pairs).any()
    assert not answers_correct(_Calculator(add_digit=True), template, pairs).any()  # writes one digit too many


def test_accuracy_result_and_bad_input():
    result = addition_accuracy(_Calculator(), max_result=6, formats=("plain",), progress=False)
    assert result.accuracy == {"plain": 1.0} and result.n_pairs == 21
    assert result.grid["plain"][2][3] == 1.0 and result.grid["plain"][5][5] != result.grid["plain"][5][5]  # NaN
    with pytest.raises(InputError, match="unknown prompt format"):
        addition_accuracy(_Calculator(), formats=("chat",))
