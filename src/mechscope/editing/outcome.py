"""What an edit does to its own prompts: probabilities and text before and after.

::

    outcome = edit_outcome(model, edit)            # every request of the edit
    outcome.rows[0]                                # prompt, p(new)/p(true) before and after, top tokens
    outcome.plot().savefig("edit.png")
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from matplotlib.figure import Figure

from mechscope.editing.edit import Edit, edited
from mechscope.editing.evaluate import target_logprobs
from mechscope.results import Result


@dataclass(frozen=True, kw_only=True)
class PromptOutcome:
    """One prompt before and after the edit."""

    prompt: str
    """The prompt (the rewrite prompt or a paraphrase)."""
    target_new: str
    """The new target."""
    target_true: str
    """The old target."""
    p_new: tuple[float, float]
    """p(new) before and after (geometric mean over its tokens)."""
    p_true: tuple[float, float]
    """p(true) before and after."""
    top: tuple[str, str]
    """The most likely next token before and after."""
    text: tuple[str, str]
    """A greedy continuation before and after (empty when not generated)."""


@dataclass(frozen=True, kw_only=True)
class EditOutcome(Result):
    """An edit's effect on its requests' prompts."""

    model: str
    """The model."""
    method: str
    """The editing method."""
    layers: tuple[int, ...]
    """The edited layers."""
    rows: tuple[PromptOutcome, ...]
    """One per rewrite and paraphrase prompt."""

    def plot(self) -> Figure:
        """p(new) and p(true) before and after, per prompt."""
        fig = Figure(figsize=(7.0, 1.4 + 0.55 * len(self.rows)), layout="constrained")
        ax = fig.add_subplot()
        y = torch.arange(len(self.rows)).float()
        for offset, (label, index, color) in enumerate([("p(true) before", 0, "tab:blue"),
                                                        ("p(true) after", 1, "lightsteelblue"),
                                                        ("p(new) before", 0, "tab:orange"),
                                                        ("p(new) after", 1, "navajowhite")]):
            field = "p_true" if "true" in label else "p_new"
            values = [getattr(row, field)[index] for row in self.rows]
            ax.barh(y + (offset - 1.5) * 0.2, values, 0.2, label=label, color=color)
        ax.set_yticks(y.tolist())
        ax.set_yticklabels([f"{r.prompt!r}\n{r.target_true} → {r.target_new}" for r in self.rows], fontsize=8,
                           parse_math=False)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("probability")
        ax.set_title(f"{self.model}: {self.method} edit at layers {list(self.layers)}", fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
        return fig


def edit_outcome(model, edit: Edit, *, max_new_tokens: int = 20) -> EditOutcome:
    """Score every request's rewrite and paraphrase prompts without and with ``edit``;
    ``max_new_tokens=0`` skips the greedy continuations."""
    from mechscope.steering.generate import generate

    prompts = [(r.requested_rewrite, p) for r in edit.requests
               for p in (r.requested_rewrite.text, *r.paraphrase_prompts)]

    def measure():
        texts = [p for _, p in prompts]
        targets = [rw.target_new for rw, _ in prompts] + [rw.target_true for rw, _ in prompts]
        new, true = target_logprobs(model, texts * 2, targets).exp().split(len(texts))  # one batch for both
        with torch.no_grad():
            batch = model.tokenize(texts)
            logits = model(batch)[torch.arange(len(texts)), batch.last_positions()]
        tops = [model.tokenizer.decode([int(t)]) for t in logits.argmax(-1)]
        gens = generate(model, texts, max_new_tokens=max_new_tokens) if max_new_tokens else [""] * len(texts)
        return new.tolist(), true.tolist(), tops, gens

    before = measure()
    with edited(model, edit):
        after = measure()
    rows = tuple(
        PromptOutcome(prompt=text, target_new=rw.target_new, target_true=rw.target_true,
                      p_new=(before[0][i], after[0][i]), p_true=(before[1][i], after[1][i]),
                      top=(before[2][i], after[2][i]), text=(before[3][i], after[3][i]))
        for i, (rw, text) in enumerate(prompts)
    )
    return EditOutcome(model=model.name, method=edit.method, layers=edit.layers, rows=rows)
