"""Control vectors for llama.cpp: repeng's GGUF layout, both ways.

::

    export_gguf(vector, "weddings.gguf")              # llama-cli --control-vector-scaled weddings.gguf 4 ...
    vector = import_gguf("someones.gguf", model)      # checked against the model, then steer(model, vector)

The layout (repeng's ``ControlVector.export_gguf``, which llama.cpp reads): architecture
``controlvector``, the string ``controlvector.model_hint`` (Hugging Face's model type,
e.g. ``llama``), the integer ``controlvector.layer_count``, and one float32 tensor
``direction.N`` per layer. Direction N is added to the output of block N, which is
mechscope's ``blocks.N.hook_resid_post`` (repeng reads its hidden states there and
llama.cpp adds the vector there); llama.cpp refuses ``direction.0``, so a vector at
block 0 is refused on export. A GGUF file says nothing about the model but its type, so
importing needs the model: the type and the widths are checked, and the imported vector
records that model's identity.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch

from mechscope.activations.manifest import ModelIdentity
from mechscope.errors import InputError
from mechscope.steering.vector import SteeringVector, VectorMismatchError, layer_of

ARCH = "controlvector"
_RESID_POST = re.compile(r"^blocks\.(\d+)\.hook_resid_post$")


def export_gguf(vector: SteeringVector, path: str | Path) -> Path:
    """Write ``vector`` as a llama.cpp control vector (atomically)."""
    import gguf

    wrong = [name for name in vector.hook_names if not _RESID_POST.match(name)]
    if wrong:
        raise InputError(f"llama.cpp control vectors add to each block's output (blocks.N.hook_resid_post); this "
                         f"vector has directions at {', '.join(wrong)}")
    if 0 in vector.layers:
        raise InputError("llama.cpp refuses a control vector for block 0 (direction.0); drop layer 0 "
                         "(vector.at([...]) with the other layers)")
    if vector.model.model_type is None:
        raise InputError("this vector does not record its model's type (made before it was recorded); remake it")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        writer = gguf.GGUFWriter(str(tmp), ARCH)
        writer.add_string(f"{ARCH}.model_hint", vector.model.model_type)
        writer.add_uint32(f"{ARCH}.layer_count", len(vector.directions))
        for name in vector.hook_names:
            writer.add_tensor(f"direction.{layer_of(name)}", vector.directions[name].numpy().astype(np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def import_gguf(path: str | Path, model) -> SteeringVector:
    """Read a llama.cpp/repeng control vector for ``model`` (its type and width checked)."""
    import gguf

    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such control vector file: {path}")
    try:
        reader = gguf.GGUFReader(str(path))
    except (ValueError, OSError) as error:
        raise InputError(f"{path} is not a readable GGUF file ({error})") from None
    arch = _string(reader, "general.architecture")
    hint = _string(reader, f"{ARCH}.model_hint")
    if arch != ARCH or hint is None:
        raise InputError(f"{path} is not a control vector (architecture {arch!r}, model hint {hint!r}); expected "
                         f"architecture {ARCH!r} with {ARCH}.model_hint")
    if hint != model.cfg.model_type:
        raise VectorMismatchError(f"{path} is a control vector for a {hint!r} model; {model.name} is "
                                  f"{model.cfg.model_type!r}")
    directions = {}
    for tensor in reader.tensors:
        if not tensor.name.startswith("direction."):
            continue
        try:
            layer = int(tensor.name.split(".", 1)[1])
        except ValueError:
            raise InputError(f"{path}: tensor {tensor.name!r} is not direction.<layer>") from None
        if not 0 <= layer < model.cfg.n_layers:
            raise VectorMismatchError(f"{path} has a direction for layer {layer}; {model.name} has "
                                      f"{model.cfg.n_layers} layers")
        directions[f"blocks.{layer}.hook_resid_post"] = torch.from_numpy(np.array(tensor.data, dtype=np.float32))
    if not directions:
        raise InputError(f"{path} holds no direction.<layer> tensors")
    vector = SteeringVector(directions=directions, model=ModelIdentity.of(model), method="gguf", position="",
                            source=f"llama.cpp control vector {path.name} (model hint {hint})")
    vector.check_fits(model)
    return vector


def _string(reader, key: str) -> str | None:
    field = reader.get_field(key)
    if field is None or not field.parts:
        return None
    return bytes(field.parts[-1]).decode("utf-8", errors="replace")
