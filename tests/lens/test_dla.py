"""Direct logit attribution: the parts add up to the logit difference."""

from __future__ import annotations

import torch

from mechscope.lens.dla import direct_logit_attribution
from mechscope.tasks import Task

CLEAN = ["when mary and john went to the store , john gave a drink to", "the cat sat on the red mat"]
CORRUPT = ["when bob and alice went to the store , tom gave a drink to", "the dog sat on the red mat"]


def test_parts_sum_to_the_logit_difference(tiny):
    task = Task.from_prompts(tiny, name="t", clean=CLEAN, corrupt=CORRUPT, answers=[" mary", " big"],
                             wrong=[" john", " small"])
    result = direct_logit_attribution(tiny, task)
    assert result.heads.shape == (tiny.cfg.n_layers, tiny.cfg.n_heads)
    parts = result.heads.sum() + result.mlps.sum() + result.attn_bias.sum() + result.embed + result.bias
    assert abs(float(parts) - result.total) < 1e-4
    assert abs(result.total - float(result.per_prompt_total.mean())) < 1e-6
    assert len(result.top(3)) == 3 and result.plot() is not None


def test_a_last_layer_head_is_its_direct_effect(tiny):
    """For a head in the last layer only the last MLP and the final norm lie downstream:
    with both frozen at their clean values, removing the head's output changes the logit
    difference by exactly its attribution."""
    task = Task.from_prompts(tiny, name="t", clean=CLEAN[:1], corrupt=CORRUPT[:1], answers=[" mary"], wrong=[" john"])
    result = direct_logit_attribution(tiny, task)
    last, head = tiny.cfg.n_layers - 1, 2
    mlp_out = f"blocks.{last}.hook_mlp_out"
    _, cache = tiny.run_with_cache(task.clean, names=["ln_final.hook_scale", mlp_out])
    frozen = cache["ln_final.hook_scale"]

    def remove(z, hook):
        z = z.clone()
        z[:, :, head] = 0
        return z

    fwd = [(f"blocks.{last}.attn.hook_z", remove), ("ln_final.hook_scale", lambda s, hook: frozen),
           (mlp_out, lambda t, hook: cache[mlp_out])]
    if tiny.cfg.post_norms:
        _, post = tiny.run_with_cache(task.clean, names=[f"blocks.{last}.ln1_post.hook_scale"])
        fwd.append((f"blocks.{last}.ln1_post.hook_scale", lambda s, hook: post[f"blocks.{last}.ln1_post.hook_scale"]))
    with torch.no_grad():
        logits = tiny.run_with_hooks(task.clean, fwd=fwd)[0, -1]
    drop = result.total - float(logits[task.answers[0]] - logits[task.wrong[0]])
    assert abs(drop - float(result.heads[last, head])) < 1e-4
