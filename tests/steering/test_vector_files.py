"""Steering vectors on disk: safetensors with their record, and llama.cpp's GGUF layout."""

from __future__ import annotations

import gguf
import numpy as np
import pytest
import torch
from tiny import tiny_hf_model, tiny_tokenizer

from mechscope import HookedModel
from mechscope.activations.manifest import ModelIdentity
from mechscope.errors import InputError
from mechscope.steering import SteeringVector, VectorMismatchError, export_gguf, import_gguf, random_like


@pytest.fixture(scope="module")
def model() -> HookedModel:
    return HookedModel(tiny_hf_model("llama-gqa"), tiny_tokenizer(), name="llama-gqa")


def _vector(model, layers=(1,)) -> SteeringVector:
    generator = torch.Generator().manual_seed(0)
    return SteeringVector(directions={f"blocks.{l}.hook_resid_post": torch.randn(64, generator=generator)
                                      for l in layers}, model=ModelIdentity.of(model), method="mean-diff",
                          position="word:cat@last", source="tiny: 5 pairs, digest 0123")


def test_safetensors_round_trip_keeps_directions_and_record(model, tmp_path):
    vector = _vector(model, layers=(0, 1))
    loaded = SteeringVector.load(vector.save(tmp_path / "v.safetensors"))
    for name in vector.hook_names:
        assert torch.equal(loaded.directions[name], vector.directions[name])
    assert loaded.to_dict() == vector.to_dict()
    assert loaded.model.matches(ModelIdentity.of(model)) and loaded.model.model_type == "llama"
    loaded.check_fits(model)
    assert not list(tmp_path.glob(".*tmp"))  # written through a temporary file


def test_a_file_that_is_not_a_vector_is_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(InputError, match="not a version-1 mechscope steering vector"):
        SteeringVector.load(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(InputError, match="not a readable safetensors file"):
        SteeringVector.load(tmp_path / "junk.safetensors")


def test_gguf_round_trips_in_repengs_layout(model, tmp_path):
    vector = _vector(model, layers=(1,))
    path = export_gguf(vector, tmp_path / "v.gguf")
    reader = gguf.GGUFReader(str(path))
    text = lambda key: bytes(reader.get_field(key).parts[-1]).decode()  # noqa: E731
    assert text("general.architecture") == "controlvector" and text("controlvector.model_hint") == "llama"
    assert int(reader.get_field("controlvector.layer_count").parts[-1][0]) == 1
    assert [t.name for t in reader.tensors] == ["direction.1"]
    assert np.array(reader.tensors[0].data).dtype == np.float32
    back = import_gguf(path, model)
    assert back.hook_names == ("blocks.1.hook_resid_post",) and back.method == "gguf"
    assert torch.equal(back.directions["blocks.1.hook_resid_post"], vector.directions["blocks.1.hook_resid_post"])


def test_gguf_refuses_what_llama_cpp_cannot_use_or_another_model_type(model, tmp_path):
    with pytest.raises(InputError, match=r"refuses a control vector for block 0 \(direction.0\)"):
        export_gguf(_vector(model, layers=(0, 1)), tmp_path / "v.gguf")
    mlp = SteeringVector(directions={"blocks.1.hook_mlp_out": torch.ones(64)}, model=ModelIdentity.of(model),
                         method="probe", position="", source="")
    with pytest.raises(InputError, match="add to each block's output"):
        export_gguf(mlp, tmp_path / "v.gguf")
    path = export_gguf(_vector(model), tmp_path / "v.gguf")
    gpt2 = HookedModel(tiny_hf_model("gpt2"), tiny_tokenizer(), name="gpt2")
    with pytest.raises(VectorMismatchError, match="for a 'llama' model; gpt2 is 'gpt2'"):
        import_gguf(path, gpt2)
    (tmp_path / "junk.gguf").write_bytes(b"GGUFjunk")
    with pytest.raises(InputError, match="not a readable GGUF file"):
        import_gguf(tmp_path / "junk.gguf", model)


def test_random_controls_keep_each_layers_norm(model):
    vector = _vector(model, layers=(0, 1))
    control = random_like(vector, seed=3)
    assert control.method == "random" and control.hook_names == vector.hook_names
    for name in vector.hook_names:
        torch.testing.assert_close(control.directions[name].norm(), vector.directions[name].norm())
        assert abs(torch.nn.functional.cosine_similarity(control.directions[name], vector.directions[name],
                                                         dim=0)) < 0.5
