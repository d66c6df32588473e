"""CounterFact evaluation (Meng et al. 2022) of an editing method, or of the unedited model.

::

    requests = make_requests(known_facts(model).facts, n=100)
    refs = reference_texts(model, requests)              # once, shared by every method
    rome_eval = evaluate_edits(model, requests, method="rome", references=refs)
    base_eval = evaluate_edits(model, requests, method=None, references=refs)   # unedited
    rome_eval.summary()     # {"ES": 100.0, "PS": 81.0, "NS": 72.3, "S": ..., "fluency": ..., ...}

Per request, with the edit applied (ROME and FT-L: one edit per request; MEMIT: one edit
for all requests, as it is meant to be used), probabilities are mean per-token
log-probabilities of ``" " + target`` after the prompt:

* ES (efficacy): p(new) > p(true) on the rewrite prompt;
* PS (paraphrase): the fraction of paraphrase prompts with p(new) > p(true);
* NS (neighbourhood specificity): the fraction of neighbourhood prompts with p(true) > p(new);
* S: the harmonic mean of ES, PS and NS;
* fluency: n-gram entropy of text generated from the generation prompts (top-k 5, seeded);
* consistency: TF-IDF cosine of that text with reference text about the new attribute
  (:mod:`mechscope.editing.text_metrics`).

ES, PS, NS are means over requests of those fractions, in percent.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from mechscope.editing.edit import edited
from mechscope.editing.methods import edit_model, get_method
from mechscope.editing.scores import CaseScores, EditEvaluation
from mechscope.editing.text_metrics import fit_idf, ngram_entropy, tfidf_similarity
from mechscope.errors import InputError
from mechscope.facts.counterfact import EditRequest
from mechscope.hooks.tokens import batch_from_ids, pad_id


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    """How requests are scored."""

    generation: bool = True
    """Generate text for fluency and consistency (the slow part)."""
    max_new_tokens: int = 60
    """Tokens generated per generation prompt (the paper: 100)."""
    n_reference: int = 3
    """Attribute prompts whose unedited generations are a request's reference text."""
    seed: int = 0
    """Seeds the sampling."""

    def __post_init__(self) -> None:
        for name in ("max_new_tokens", "n_reference"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"EvalConfig.{name} must be a positive integer; received {value!r}")


@torch.no_grad()
def target_logprobs(model, prompts: Sequence[str], targets: Sequence[str]) -> torch.Tensor:
    """Mean per-token log-probability of ``" " + target`` after each prompt (pairwise)."""
    rows, spans = [], []
    for prompt, target in zip(prompts, targets):
        ids = model.to_tokens(prompt)[0].tolist()
        tail = model.tokenizer(" " + target.strip(), add_special_tokens=False)["input_ids"]
        spans.append((len(ids), tail))
        rows.append(ids + tail)
    batch = batch_from_ids(rows, pad_id=pad_id(model.tokenizer), padding_side="right").to(model.device)
    logprobs = model(batch).float().log_softmax(-1)
    out = []
    for row, (start, tail) in enumerate(spans):
        positions = torch.arange(start - 1, start - 1 + len(tail), device=logprobs.device)
        out.append(logprobs[row, positions, torch.tensor(tail, device=logprobs.device)].mean())
    return torch.stack(out).cpu()


def _generate(model, prompts: Sequence[str], config: EvalConfig) -> list[str]:
    from mechscope.steering.generate import generate

    if not prompts:
        return []
    return generate(model, list(prompts), max_new_tokens=config.max_new_tokens, do_sample=True, top_k=5,
                    seed=config.seed)


def reference_texts(model, requests: Sequence[EditRequest], *, config: EvalConfig = EvalConfig(),
                    progress: bool = True) -> dict[int, str]:
    """Per case id: the unedited model's text about subjects that truly have target_new."""
    out = {}
    for request in tqdm(requests, desc="reference texts", disable=not progress, leave=False):
        prompts = list(request.attribute_prompts[: config.n_reference])
        out[request.case_id] = " ".join(p + t for p, t in zip(prompts, _generate(model, prompts, config)))
    return out


def score_case(model, request: EditRequest, *, config: EvalConfig, reference: str | None,
               idf: dict[str, float]) -> CaseScores:
    """One request's scores under whatever edit is applied to ``model`` now."""
    rewrite = request.requested_rewrite
    groups = [[rewrite.text], list(request.paraphrase_prompts), list(request.neighborhood_prompts)]
    prompts = [p for group in groups for p in group]
    n = len(prompts)  # both targets after every prompt, in one batch
    new, true = target_logprobs(model, prompts * 2, [rewrite.target_new] * n + [rewrite.target_true] * n).split(n)
    sizes = [len(g) for g in groups]
    (new_r, new_p, new_n), (true_r, true_p, true_n) = new.split(sizes), true.split(sizes)
    frac = lambda mask: float(mask.float().mean()) if mask.numel() else float("nan")  # noqa: E731
    fluency = consistency = None
    texts: tuple[str, ...] = ()
    if config.generation and request.generation_prompts:
        texts = tuple(_generate(model, request.generation_prompts, config))
        fluency = sum(ngram_entropy(t) for t in texts) / len(texts)
        if reference:
            consistency = tfidf_similarity(" ".join(texts), reference, idf)
    return CaseScores(
        case_id=request.case_id, rewrite=frac(new_r > true_r), paraphrase=frac(new_p > true_p),
        neighborhood=frac(true_n > new_n), rewrite_margin=float((new_r.exp() - true_r.exp()).mean()),
        paraphrase_margin=float((new_p.exp() - true_p.exp()).mean()) if len(new_p) else float("nan"),
        neighborhood_margin=float((true_n.exp() - new_n.exp()).mean()) if len(new_n) else float("nan"),
        fluency=fluency, consistency=consistency, generations=texts,
    )


def evaluate_edits(model, requests: Sequence[EditRequest], *, method: str | None = "rome", layer: int | None = None,
                   method_config=None, config: EvalConfig = EvalConfig(), references: dict[int, str] | None = None,
                   progress: bool = True) -> EditEvaluation:
    """Edit with ``method`` (None: the unedited model) and score every request."""
    requests = list(requests)
    if not requests:
        raise InputError("no requests to evaluate; build some with make_requests(known_facts(model).facts)")
    chosen = get_method(method) if method is not None else None
    if config.generation and references is None:
        references = reference_texts(model, requests, config=config, progress=progress)
    idf = fit_idf(list((references or {}).values()))
    cases, edit_seconds = [], 0.0
    shared = None
    if chosen is not None and chosen.batched:
        started = time.perf_counter()
        shared = edit_model(model, requests, method=method, layer=layer, config=method_config, progress=progress)
        edit_seconds += time.perf_counter() - started
    for request in tqdm(requests, desc=f"evaluating {method or 'unedited'}", disable=not progress, leave=False):
        edit = shared
        if chosen is not None and not chosen.batched:
            started = time.perf_counter()
            edit = edit_model(model, [request], method=method, layer=layer, config=method_config)
            edit_seconds += time.perf_counter() - started
        with edited(model, edit) if edit is not None else nullcontext():
            cases.append(score_case(model, request, config=config, idf=idf,
                                    reference=(references or {}).get(request.case_id)))
    return EditEvaluation.of(model.name, method or "unedited", cases, edit_seconds=edit_seconds)
