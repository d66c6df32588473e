"""Direct logit attribution: what each head, MLP and embedding writes toward the answer.

With the final norm's scale frozen at its value in the run, the logit difference
logit(answer) − logit(wrong) is linear in the residual stream, so it splits exactly into
one term per component that wrote to the residual (Elhage et al. 2021; Wang et al. 2022)::

    result = direct_logit_attribution(model, task)
    result.heads          # layer × head, mean over prompts
    result.total          # the mean logit difference itself
    result.heads.sum() + result.mlps.sum() + result.embed + result.attn_bias.sum() + result.bias == result.total

``bias`` is the constant the components cannot claim: the final norm's bias and the
unembedding's bias, read off the two answer columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from matplotlib.figure import Figure
from torch import Tensor

from mechscope.results import Result
from mechscope.tasks.task import Task
from mechscope.viz import heatmap


@dataclass(frozen=True, kw_only=True)
class DLAResult(Result):
    """Direct logit attribution to logit(answer) − logit(wrong), mean over the prompts."""

    heads: Float[Tensor, "layer head"]
    """Each head's direct contribution (z[h] @ W_O[h] through the frozen final norm)."""
    mlps: Float[Tensor, "layer"]
    """Each MLP's direct contribution."""
    attn_bias: Float[Tensor, "layer"]
    """Each attention output projection's bias (zero where there is none)."""
    embed: float
    """The token (and, where learned, position) embeddings' contribution."""
    bias: float
    """Constant part: final-norm bias and unembedding bias along the answer direction."""
    total: float
    """The mean logit difference; every part above sums to it."""
    per_prompt_total: Float[Tensor, "batch"]
    """The logit difference of each prompt."""
    task: str

    def plot(self) -> Figure:
        """Layer × (heads, MLP) heatmap of direct contributions."""
        grid = torch.cat([self.heads, self.mlps[:, None]], dim=1)
        columns = [f"H{h}" for h in range(self.heads.shape[1])] + ["MLP"]
        return heatmap(grid, row_labels=[f"L{layer}" for layer in range(grid.shape[0])], col_labels=columns,
                       title=f"{self.task}: direct logit attribution (total {self.total:.3f})",
                       xlabel="component", ylabel="layer", colorbar_label="Δ logit difference")

    def top(self, k: int = 10) -> list[tuple[str, float]]:
        """Components with the largest absolute direct effect."""
        items = [(f"L{layer}H{head}", float(self.heads[layer, head]))
                 for layer in range(self.heads.shape[0]) for head in range(self.heads.shape[1])]
        items += [(f"L{layer} MLP", float(v)) for layer, v in enumerate(self.mlps)]
        items.append(("embed", self.embed))
        return sorted(items, key=lambda item: -abs(item[1]))[:k]


def direct_logit_attribution(model, task: Task) -> DLAResult:
    """Split each clean prompt's logit difference at its answer position into components."""
    cfg = model.cfg
    batch = task.clean
    answer_pos = task.answer_pos.to(model.device)
    names = ["hook_embed", "ln_final.hook_scale", "blocks.*.attn.hook_z", "blocks.*.hook_mlp_out"]
    if cfg.positional == "learned":
        names.append("hook_pos_embed")
    if model.adapter.head_scale_point is not None:  # heads enter the residual through a post norm
        names.append(f"blocks.*.{model.adapter.head_scale_point}")
    with torch.no_grad():
        logits, cache = model.run_with_cache(batch, names=names)
        parts = cache.decompose_resid(split_heads=True, pos=answer_pos)
        answers, wrong = task.answers.to(model.device), task.wrong.to(model.device)
        attrs = cache.logit_attrs(parts.components, answers, wrong, pos=answer_pos).float()  # component batch
        rows = torch.arange(len(task), device=logits.device)
        totals = (logits[rows, answer_pos, answers] - logits[rows, answer_pos, wrong]).float()
        constant = _constant(model, answers, wrong)
    by_label = dict(zip(parts.labels, attrs.mean(1).cpu()))
    heads = torch.tensor([[float(by_label[f"L{l}H{h}"]) for h in range(cfg.n_heads)] for l in range(cfg.n_layers)])
    mlps = torch.tensor([float(by_label[f"{l}_mlp_out"]) for l in range(cfg.n_layers)])
    attn_bias = torch.tensor([float(by_label.get(f"L{l}_attn_bias", 0.0)) for l in range(cfg.n_layers)])
    embed = float(by_label["embed"]) + float(by_label.get("pos_embed", 0.0))
    return DLAResult(heads=heads, mlps=mlps, attn_bias=attn_bias, embed=embed, bias=float(constant.mean()),
                     total=float(totals.mean()), per_prompt_total=totals.cpu(), task=task.name)


def _constant(model, answers: Tensor, wrong: Tensor) -> Float[Tensor, "batch"]:
    """What the logit difference gets from the final norm's bias and the unembedding's."""
    adapter = model.adapter
    direction = (model.W_U[:, answers] - model.W_U[:, wrong]).float()  # d_model batch
    norm_bias = adapter.norm_bias(adapter.norm(None, "ln_final"))
    constant = torch.zeros(answers.shape[0], device=direction.device)
    if norm_bias is not None:
        constant = constant + norm_bias.float() @ direction
    if model.b_U is not None:
        constant = constant + (model.b_U[answers] - model.b_U[wrong]).float()
    return constant.detach()
