"""Counterfactual edit requests in CounterFact's layout (Meng et al. 2022).

::

    known = known_facts(model).facts
    requests = make_requests(known, n=100, seed=0)
    request = make_request("{} is located in the city of", "The Eiffel Tower", "Rome", model=model)
    requests[0].requested_rewrite          # Rewrite(prompt="{} is a city in the country of",
                                           #         subject="Lyon", target_new="Japan", target_true="France")
    save_requests(requests, "requests.json")   # CounterFact's JSON; load_requests reads CounterFact itself

A request asks to rewrite one fact to a counterfactual target (another attribute of the
same relation) and carries the prompts that score the edit:

* ``paraphrase_prompts``: the same question in other words, each behind an unrelated
  sentence (CounterFact puts generated text there) — does the edit generalise?
* ``neighborhood_prompts``: the same relation for *other* subjects with the same true
  attribute (other French cities) — does the edit stay specific?
* ``attribute_prompts``: subjects that truly have the new attribute (Japanese cities),
  whose unedited generations are the reference texts for consistency;
* ``generation_prompts``: open prompts about the subject, for fluency and consistency.

Neighbours and attribute prompts come from the facts given, so build requests from the
facts a model knows: then the unedited model gets the neighbours right.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mechscope.errors import InputError
from mechscope.facts.dataset import Fact
from mechscope.facts.relations import RELATIONS
from mechscope.results import write_json

PREFIXES = (
    "It was a quiet morning.",
    "She closed the book and looked up.",
    "The meeting ended early that day.",
    "Nobody expected the rain to stop.",
    "He wrote a short note on the back of the card.",
    "The train was late again.",
    "They walked along the river for an hour.",
    "The phone rang twice and then went silent.",
    "It had been a long winter.",
    "The children were playing outside.",
)
"""Unrelated sentences put before paraphrase prompts, as CounterFact puts generated text there."""


@dataclass(frozen=True, kw_only=True)
class Rewrite:
    """The fact to change: ``prompt`` with the subject in place of ``{}`` should now
    continue with ``target_new`` instead of ``target_true``."""

    prompt: str
    """Prompt with ``{}`` for the subject, e.g. ``"{} is a city in the country of"``."""
    subject: str
    """The subject, e.g. ``"Lyon"``."""
    target_new: str
    """The new attribute, without its leading space."""
    target_true: str
    """The attribute the model holds now, without its leading space."""
    relation_id: str | None = None
    """The relation, where known."""

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str) or self.prompt.count("{}") != 1:
            raise InputError(
                f"a rewrite prompt holds exactly one {{}} where the subject goes, e.g. '{{}} is located in'; "
                f"received {self.prompt!r}"
            )
        for name in ("subject", "target_new", "target_true"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"rewrite {name} must be a non-empty string; received {value!r}")
        if self.target_new.strip() == self.target_true.strip():
            raise InputError(f"target_new equals target_true ({self.target_new!r}): nothing to change")

    @property
    def text(self) -> str:
        """The prompt with the subject written in."""
        return self.prompt.replace("{}", self.subject, 1)


@dataclass(frozen=True, kw_only=True)
class EditRequest:
    """One CounterFact record: a rewrite and the prompts that evaluate it."""

    case_id: int
    """Identifier."""
    requested_rewrite: Rewrite
    """What to change."""
    paraphrase_prompts: tuple[str, ...] = ()
    """Rephrasings of the rewrite prompt (with the subject written in)."""
    neighborhood_prompts: tuple[str, ...] = ()
    """Prompts about other subjects whose true attribute is ``target_true``."""
    attribute_prompts: tuple[str, ...] = ()
    """Prompts about other subjects whose true attribute is ``target_new``."""
    generation_prompts: tuple[str, ...] = field(default=())
    """Open prompts about the subject."""


def make_request(prompt: str, subject: str, target_new: str, target_true: str | None = None, *,
                 model=None, case_id: int = 0) -> EditRequest:
    """One request from the command line or a notebook. ``prompt`` holds ``{}`` for the subject,
    or the subject itself; without ``target_true`` the model's greedy next token is taken."""
    if not isinstance(prompt, str) or not isinstance(subject, str) or not subject.strip():
        raise InputError(f"a request needs a prompt and a non-empty subject; received {prompt!r}, {subject!r}")
    if "{}" not in prompt:
        if subject not in prompt:
            raise InputError(
                f"the subject {subject!r} does not occur in the prompt {prompt!r}; write it in the prompt, "
                f"or put {{}} where it goes"
            )
        prompt = prompt.replace(subject, "{}", 1)
    if target_true is None:
        if model is None:
            raise InputError("give target_true, or a model whose prediction is taken as the true target")
        target_true = _greedy(model, prompt.replace("{}", subject, 1))
    rewrite = Rewrite(prompt=prompt, subject=subject, target_new=target_new.strip(), target_true=target_true.strip())
    return EditRequest(case_id=case_id, requested_rewrite=rewrite, generation_prompts=(rewrite.text,))


def _greedy(model, text: str) -> str:
    import torch

    with torch.no_grad():
        token = int(model(text)[0, -1].argmax())
    return model.tokenizer.decode([token]).strip() or model.tokenizer.decode([token])


def make_requests(
    facts: Sequence[Fact],
    *,
    n: int | None = None,
    seed: int = 0,
    n_neighbors: int = 10,
) -> tuple[EditRequest, ...]:
    """Counterfactual requests from facts: each target_new is another attribute of the same
    relation; facts without a neighbour (no other subject shares the attribute) are skipped."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise InputError(f"n must be a positive integer or None; received {n!r}")
    groups: dict[str, dict[str, list[Fact]]] = defaultdict(lambda: defaultdict(list))
    for fact in facts:
        groups[fact.relation][fact.attribute].append(fact)
    rng = random.Random(seed)
    eligible = [f for f in facts if len(groups[f.relation][f.attribute]) > 1 and len(groups[f.relation]) > 1]
    rng.shuffle(eligible)
    if not eligible:
        raise InputError(
            "no fact has a neighbour (another subject of the same relation with the same attribute) and an "
            "alternative attribute; give more facts of each relation"
        )
    chosen = eligible if n is None else eligible[:n]
    return tuple(_request(i, fact, groups[fact.relation], rng, n_neighbors) for i, fact in enumerate(chosen))


def _request(case_id: int, fact: Fact, by_attribute: dict[str, list[Fact]], rng: random.Random,
             n_neighbors: int) -> EditRequest:
    target_new = rng.choice(sorted(a for a in by_attribute if a != fact.attribute))
    template = fact.template or fact.prompt.replace(fact.subject, "{}", 1)
    relation = RELATIONS.get(fact.relation_id or "")
    neighbors = [f.prompt for f in by_attribute[fact.attribute] if f.subject != fact.subject]
    holders = [f.prompt for f in by_attribute[target_new]]
    paraphrases = relation.paraphrases if relation else ()
    generation = relation.generation if relation else ()
    return EditRequest(
        case_id=case_id,
        requested_rewrite=Rewrite(prompt=template, subject=fact.subject, target_new=target_new,
                                  target_true=fact.attribute, relation_id=fact.relation_id),
        paraphrase_prompts=tuple(f"{rng.choice(PREFIXES)} {p.format(fact.subject)}" for p in paraphrases),
        neighborhood_prompts=tuple(rng.sample(neighbors, min(n_neighbors, len(neighbors)))),
        attribute_prompts=tuple(rng.sample(holders, min(n_neighbors, len(holders)))),
        generation_prompts=tuple(p.format(fact.subject) for p in generation),
    )


def request_dict(request: EditRequest) -> dict:
    """A request as CounterFact writes it (targets as ``{"str": ...}``)."""
    rewrite = asdict(request.requested_rewrite)
    rewrite["target_new"] = {"str": rewrite["target_new"]}
    rewrite["target_true"] = {"str": rewrite["target_true"]}
    data = asdict(request)
    data["requested_rewrite"] = rewrite
    return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}


def save_requests(requests: Sequence[EditRequest], path: str | Path) -> Path:
    """Write requests as a CounterFact JSON list (atomically)."""
    return write_json(path, [request_dict(r) for r in requests])


def load_requests(path: str | Path) -> tuple[EditRequest, ...]:
    """Requests from a CounterFact-layout JSON list (CounterFact's own file loads as is)."""
    path = Path(path)
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"no such requests file: {path}") from None
    except json.JSONDecodeError as error:
        raise InputError(f"{path} is not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(records, list) or not records:
        raise InputError(f"{path} must hold a non-empty list of CounterFact records")
    return requests_from_records(records, source=str(path))


def requests_from_records(records: Sequence, *, source: str = "requests") -> tuple[EditRequest, ...]:
    """Requests from CounterFact records already parsed from JSON."""
    return tuple(_from_record(record, i, source) for i, record in enumerate(records))


def _from_record(record, index: int, path: str) -> EditRequest:
    rewrite = record.get("requested_rewrite") if isinstance(record, dict) else None
    if not isinstance(rewrite, dict):
        raise InputError(f"{path}: record {index} lacks requested_rewrite {{prompt, subject, target_new, target_true}}")
    try:
        parsed = Rewrite(prompt=rewrite["prompt"], subject=rewrite["subject"],
                         target_new=_target(rewrite["target_new"]), target_true=_target(rewrite["target_true"]),
                         relation_id=rewrite.get("relation_id"))
    except KeyError as missing:
        raise InputError(f"{path}: record {index}'s requested_rewrite lacks {missing}") from None
    prompts = {name: tuple(record.get(name, ())) for name in
               ("paraphrase_prompts", "neighborhood_prompts", "attribute_prompts", "generation_prompts")}
    return EditRequest(case_id=int(record.get("case_id", index)), requested_rewrite=parsed, **prompts)


def _target(value) -> str:
    return (value.get("str", "") if isinstance(value, dict) else str(value)).strip()
