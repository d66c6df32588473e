"""Built-in tasks on smollm2-135m (accuracy) and on Gemma 3's SentencePiece tokenizer.

Seen on the development machine (seed 0): IOI clean accuracy 0.97 at n=32 (0.92 at
n=64); every other task's margin accuracy 1.0 at n=8, so the bounds below leave room.
"""

from __future__ import annotations

import pytest
import torch

from mechscope import HookedModel
from mechscope.tasks.evaluate import batched_answer_logits, evaluate_task
from mechscope.tasks.registry import TASKS, make_task

pytestmark = pytest.mark.integration


def test_ioi_clean_accuracy_on_smollm2(smollm2):
    task = make_task("ioi", smollm2, n=32, seed=0)
    logits = batched_answer_logits(smollm2, task.clean, batch_size=32)  # the clean run is all accuracy needs
    assert float((logits.argmax(-1) == task.answers).float().mean()) >= 0.9
    rows = torch.arange(len(task))
    assert float((logits[rows, task.answers] - logits[rows, task.wrong]).mean()) > 3


@pytest.mark.parametrize("name", [name for name in TASKS if name != "ioi"])
def test_every_task_runs_on_smollm2(smollm2, name):
    report = evaluate_task(smollm2, make_task(name, smollm2, n=8, seed=0))
    assert report.margin_accuracy >= 0.75
    assert report.clean_metric - report.corrupt_metric > 1


@pytest.fixture(scope="module")
def gemma_tokenizer_model() -> HookedModel:
    """Gemma 3's real tokenizer over a one-layer random Gemma 3 (no weights needed)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, Gemma3TextConfig

    from mechscope.models import BUNDLED
    from mechscope.models.cache import entry_dir, is_complete

    directory = entry_dir(BUNDLED["gemma3-270m"].cache_key())
    if not is_complete(directory):
        pytest.skip("gemma3-270m is not cached here (load it once with mechscope.load_model)")
    tokenizer = AutoTokenizer.from_pretrained(directory)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, head_dim=8, max_position_embeddings=128, layer_types=["full_attention"],
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    return HookedModel(AutoModelForCausalLM.from_config(config).eval(), tokenizer, name="gemma3-tokenizer")


@pytest.mark.parametrize("name", list(TASKS))
def test_generators_work_with_gemma_sentencepiece(gemma_tokenizer_model, name):
    model = gemma_tokenizer_model
    task = make_task(name, model, n=8, seed=0)
    assert task.clean.ids.shape == task.corrupt.ids.shape
    assert bool(task.clean.attention_mask.all())  # one template: every prompt the same length
    assert (task.clean.ids[:, 0] == model.tokenizer.bos_token_id).all()  # Gemma's tokenizer adds <bos>
    assert torch.equal(task.clean.attention_mask, task.corrupt.attention_mask)
