"""Facts in the layout of ROME's ``known_1000.json``: a prompt, its subject, the attribute.

::

    facts = builtin_facts()                     # 793 facts over 13 relations, written for mechscope
    known = known_facts(model, facts)           # the ones this model completes correctly
    known.summary()                             # "smollm2-135m knows 360 of 793 facts ..."
    save_facts(known.facts, "known.json")       # the known_1000 layout; load_facts reads it back

A record is ``{"known_id", "prompt", "subject", "attribute"}`` plus, optionally,
``template`` (the prompt with ``{}`` for the subject), ``relation_id`` and
``prediction`` (what the model said), exactly the fields ``known_1000.json`` has, so
that file loads as it is. A model *knows* a fact when its most likely next token after
the prompt is the first token of ``" " + attribute`` (greedy, as known_1000 was built
from GPT-2 XL's greedy predictions).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from mechscope.errors import InputError
from mechscope.facts.relations import RELATIONS
from mechscope.results import Result, write_json

FIELDS = ("known_id", "prompt", "subject", "attribute")
"""The fields every record must have."""


@dataclass(frozen=True, kw_only=True)
class Fact:
    """One fact: the prompt names the subject and stops where the attribute comes next."""

    known_id: int
    """Identifier, unique within a file."""
    prompt: str
    """The full prompt, e.g. ``"The Eiffel Tower is located in the city of"``."""
    subject: str
    """The subject as it appears in the prompt (``"Eiffel Tower"``)."""
    attribute: str
    """The attribute without its leading space (``"Paris"``); scored as ``" " + attribute``."""
    template: str | None = None
    """The prompt with ``{}`` in place of the subject."""
    relation_id: str | None = None
    """The relation (for the built-in facts, a key of :data:`~mechscope.facts.RELATIONS`)."""
    prediction: str | None = None
    """The model's greedy next token, when a model was checked against the fact."""

    def __post_init__(self) -> None:
        for name in ("prompt", "subject", "attribute"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"fact {self.known_id}: {name} must be a non-empty string; received {value!r}")
        if self.subject not in self.prompt:
            raise InputError(
                f"fact {self.known_id}: the subject {self.subject!r} does not occur in the prompt {self.prompt!r}; "
                f"the subject must be written in the prompt exactly as given"
            )
        if self.template is not None and self.template.replace("{}", self.subject, 1) != self.prompt:
            raise InputError(
                f"fact {self.known_id}: template {self.template!r} with the subject {self.subject!r} does not give "
                f"the prompt {self.prompt!r}"
            )

    @property
    def relation(self) -> str:
        """What groups facts of one kind: the relation id, else the template, else the prompt."""
        return self.relation_id or self.template or self.prompt


def builtin_facts(relations: Sequence[str] | None = None) -> tuple[Fact, ...]:
    """The facts written for mechscope (see :mod:`mechscope.facts.relations`), numbered in order."""
    names = list(RELATIONS) if relations is None else list(relations)
    unknown = [name for name in names if name not in RELATIONS]
    if unknown:
        raise InputError(f"unknown relations {unknown}; the built-in ones are {', '.join(RELATIONS)}")
    facts = []
    for name in names:
        relation = RELATIONS[name]
        for subject, attribute in relation.pairs():
            facts.append(Fact(known_id=len(facts), prompt=relation.template.format(subject), subject=subject,
                              attribute=attribute, template=relation.template, relation_id=name))
    return tuple(facts)


def load_facts(path: str | Path) -> tuple[Fact, ...]:
    """Facts from a JSON list (``known_1000.json``) or a JSONL file of records."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"no such facts file: {path}") from None
    try:
        if path.suffix == ".jsonl":
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            records = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{path} is not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(records, list) or not records:
        raise InputError(f"{path} must hold a non-empty list of fact records with fields {', '.join(FIELDS)}")
    facts = [_fact(record, i, path) for i, record in enumerate(records)]
    ids = Counter(fact.known_id for fact in facts)
    repeated = [known_id for known_id, count in ids.items() if count > 1]
    if repeated:
        raise InputError(f"{path}: known_id values must be unique; repeated: {repeated[:5]}")
    return tuple(facts)


def _fact(record, index: int, path: Path) -> Fact:
    if not isinstance(record, dict):
        raise InputError(f"{path}: record {index} is a {type(record).__name__}, expected an object")
    missing = [name for name in FIELDS if name not in record]
    if missing:
        raise InputError(f"{path}: record {index} lacks {', '.join(missing)}; every record needs {', '.join(FIELDS)}")
    known_id = record["known_id"]
    if isinstance(known_id, bool) or not isinstance(known_id, int):
        raise InputError(f"{path}: record {index} has known_id {known_id!r}; expected an integer")
    optional = {name: record.get(name) for name in ("template", "relation_id", "prediction")}
    return Fact(known_id=known_id, prompt=record["prompt"], subject=record["subject"],
                attribute=str(record["attribute"]).strip(), **optional)


def save_facts(facts: Sequence[Fact], path: str | Path) -> Path:
    """Write facts as a JSON list in the known_1000 layout (atomically)."""
    return write_json(path, [{k: v for k, v in asdict(fact).items() if v is not None} for fact in facts])


@dataclass(frozen=True)
class KnownFacts(Result):
    """Which facts a model completes correctly."""

    model: str
    """The model checked."""
    facts: tuple[Fact, ...]
    """The facts it knows, with its prediction filled in."""
    total: int
    """How many facts were checked."""
    by_relation: dict[str, tuple[int, int]]
    """Per relation: (known, checked)."""

    def summary(self) -> str:
        parts = ", ".join(f"{name} {k}/{n}" for name, (k, n) in self.by_relation.items())
        return f"{self.model} knows {len(self.facts)} of {self.total} facts ({parts})"


@torch.no_grad()
def known_facts(model, facts: Sequence[Fact] | None = None, *, batch_size: int = 64) -> KnownFacts:
    """The facts whose attribute's first token is the model's greedy next token."""
    facts = builtin_facts() if facts is None else tuple(facts)
    if not facts:
        raise InputError("no facts to check; pass a non-empty list (builtin_facts() or load_facts(path))")
    predictions: list[int] = []
    for start in range(0, len(facts), batch_size):
        batch = model.tokenize([fact.prompt for fact in facts[start : start + batch_size]])
        logits = model(batch)
        rows = torch.arange(logits.shape[0], device=logits.device)
        predictions += logits[rows, batch.last_positions()].argmax(-1).tolist()
    kept, counts = [], {}
    for fact, predicted in zip(facts, predictions):
        known = predicted == attribute_token(model, fact.attribute)
        k, n = counts.get(fact.relation, (0, 0))
        counts[fact.relation] = (k + known, n + 1)
        if known:
            kept.append(replace(fact, prediction=model.tokenizer.decode([predicted])))
    return KnownFacts(model=model.name, facts=tuple(kept), total=len(facts), by_relation=counts)


def attribute_token(model, attribute: str) -> int:
    """The first token of ``" " + attribute``: what the model should predict next."""
    ids = model.tokenizer(" " + attribute.strip(), add_special_tokens=False)["input_ids"]
    if not ids:
        raise InputError(f"the attribute {attribute!r} tokenizes to nothing; give a non-empty attribute")
    return int(ids[0])
