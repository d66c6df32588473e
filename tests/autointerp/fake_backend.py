"""A deterministic stand-in for a language model that follows explanations literally.

It reads the words an explanation names (quoted words, else every word of three letters
or more) and answers by finding them in the text: yes when the text (detection)
or every marked span (fuzzing) contains one of them; a 9 at a token that is one of them
(simulation); as intruder, the text whose marked words differ from the others'. Its
explanations name the most frequent marked word. A scorer run through it must therefore
rank a true explanation of a word-indicator unit above any other.
"""

from __future__ import annotations

import math
import re
from collections import Counter

YES, NO = {" Yes": math.log(0.9), " No": math.log(0.1)}, {" Yes": math.log(0.1), " No": math.log(0.9)}


def named_words(explanation: str) -> set[str]:
    quoted = re.findall(r'"([^"]+)"', explanation)
    words = quoted or [w for w in re.findall(r"[A-Za-z]+", explanation) if len(w) >= 3]
    return {w.strip().lower() for w in words}


def marked_spans(text: str) -> list[str]:
    return re.findall(r"<<(.*?)>>", text)


class FakeBackend:
    name = "fake"

    def __init__(self) -> None:
        self.calls = 0

    def describe(self) -> dict:
        return {"backend": "fake"}

    def generate(self, prompts, *, max_tokens, stop=()):
        self.calls += len(prompts)
        out = []
        for prompt in prompts:
            query = prompt.messages[-1][1]
            if "does NOT fire" in query:
                query = query.split("does NOT fire")[0]
            spans = Counter(s.strip().lower() for s in marked_spans(query))
            out.append(f' the word "{spans.most_common(1)[0][0]}"' if spans else " nothing")
        return out

    def next_token_logprobs(self, prompts, *, top=20):
        self.calls += len(prompts)
        return [self._answer(p.messages[-1][1]) for p in prompts]

    def _answer(self, query: str) -> dict:
        if "odd one out" in query:
            lines = [line.split(". ", 1)[1] for line in query.split("\n") if re.match(r"\d+\. ", line)]
            sets = [frozenset(s.strip().lower() for s in marked_spans(line)) for line in lines]
            common = Counter(sets).most_common(1)[0][0]
            odd = next((i for i, s in enumerate(sets) if s != common), 0)
            return {str(odd + 1): 0.0}
        description = query.split("Description: ", 1)[1].split("\n", 1)[0]
        text = query.split("Text: ", 1)[1].rsplit("\n", 1)[0]
        words = named_words(description)
        spans = marked_spans(text)
        # substrings: the tiny word-level tokenizer decodes tokens without spaces
        if spans:
            fits = all(any(w in s.lower() for w in words) for s in spans)
        else:
            fits = any(w in text.lower() for w in words)
        return YES if fits else NO

    def slot_logprobs(self, texts, slots, *, top=20):
        self.calls += len(texts)
        out = []
        for text, offsets in zip(texts, slots):
            explanation = text.rsplit("the main thing this neuron does is find ", 1)[1].split("\n", 1)[0]
            words = named_words(explanation)
            rows = []
            for offset in offsets:
                line_start = text.rfind("\n", 0, offset) + 1
                token = text[line_start : offset - 1].strip().lower()
                rows.append({"9": 0.0} if token in words else {"0": 0.0})
            out.append(rows)
        return out
