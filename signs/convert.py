"""One converter between every weight format the project knows (Hugging Face layout).

Formats, all holding the canonical tensors W1, W2, W3, b3 (reference/spec.py):

=============  ===========================================  ==================================
format         files                                        implemented in
=============  ===========================================  ==================================
safetensors    ``*.safetensors`` (canonical, with metadata)  reference/weights_io.py
npz            ``*.npz``                                     reference/weights_io.py
keras          ``*.weights.h5`` (Keras 3 ``save_weights``)   tf_model/convert.py
torch          ``*.pt``, ``*.pth`` (a ``state_dict``)        torch_model/convert.py
tf1            a TF1 checkpoint prefix (``model.ckpt``,      tf_model/tf1_checkpoint.py
               with ``.index``/``.data-*``), or its
               ``.index`` path, or its folder
=============  ===========================================  ==================================

Every layout move (HWIO <-> OIHW, (in, out) <-> (out, in)) is written once, in the framework
package that needs it; this module only dispatches, and imports a framework only when a format
needs it. Live objects (a ``keras.Model`` or a ``torch.nn.Module``) go through ``params_from_model``
and ``params_into_model``.
"""

from __future__ import annotations

import os
from pathlib import Path

from reference.spec import COURSE_MODEL, PARAM_NAMES
from reference.validate import check_params

__all__ = ["FORMATS", "detect_format", "load_weights", "save_weights", "params_from_model", "params_into_model"]

FORMATS = ("safetensors", "npz", "keras", "torch", "tf1")


def detect_format(path, *, for_writing: bool = False) -> str:
    """The format of ``path`` from its name (and, for TF1 checkpoints, the files beside it)."""
    text = os.fspath(path)
    name = Path(text).name.lower()
    if name.endswith(".safetensors"):
        return "safetensors"
    if name.endswith(".npz"):
        return "npz"
    if name.endswith(".weights.h5"):
        return "keras"
    if name.endswith((".pt", ".pth")):
        return "torch"
    if name.endswith((".ckpt", ".index")) or ".ckpt-" in name or ".ckpt." in name:
        return "tf1"
    if not for_writing and (Path(text + ".index").is_file() or (Path(text) / "checkpoint").is_file()):
        return "tf1"
    raise ValueError(
        f"{text}: cannot tell the weight format from the name; expected a name ending in .safetensors, "
        f".npz, .weights.h5, .pt/.pth or a TF1 checkpoint prefix (.ckpt): rename the file so that "
        f"it ends in one of these (`signs convert` also takes --from/--to, one of {', '.join(FORMATS)})"
    )


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    return fmt


def load_weights(path, fmt: str | None = None, *, spec=COURSE_MODEL, allow_nonfinite: bool = False) -> tuple[dict, dict]:
    """Read canonical params from any format: (params, metadata).

    Weights holding NaN or inf are refused with a ValueError naming the tensor and the count
    (``reference.weights_io.check_finite``) unless ``allow_nonfinite`` (``signs convert
    --allow-nonfinite``; ``signs verify``, which reports them as a failure).
    """
    fmt = _check_format(fmt or detect_format(path))
    if fmt in ("safetensors", "npz"):
        from reference import weights_io

        loader = weights_io.load_safetensors if fmt == "safetensors" else weights_io.load_npz
        return loader(path, spec=spec, allow_nonfinite=allow_nonfinite)
    if not Path(os.fspath(path)).exists() and not Path(os.fspath(path) + ".index").exists():
        raise FileNotFoundError(f"{os.fspath(path)}: weight file not found")
    if fmt == "keras":
        from tf_model.convert import load_keras_weights

        params = load_keras_weights(path, spec=spec, allow_nonfinite=allow_nonfinite)
    elif fmt == "torch":
        from torch_model.convert import load_state_dict_file

        params = load_state_dict_file(path, spec=spec, allow_nonfinite=allow_nonfinite)
    else:
        from tf_model.tf1_checkpoint import load_tf1_checkpoint

        params = load_tf1_checkpoint(path, spec=spec, allow_nonfinite=allow_nonfinite)
    check_params(params, spec, source=os.fspath(path))
    return params, {"source_format": fmt}


def save_weights(params, path, fmt: str | None = None, *, metadata=None, force=False, spec=COURSE_MODEL) -> str:
    """Write canonical params in any format; returns the format used."""
    fmt = _check_format(fmt or detect_format(path, for_writing=True))
    check_params(params, spec)
    if fmt in ("safetensors", "npz"):
        from reference import weights_io

        saver = weights_io.save_safetensors if fmt == "safetensors" else weights_io.save_npz
        saver(params, path, metadata, force=force, spec=spec)
    elif fmt == "keras":
        from tf_model.convert import save_keras_weights

        save_keras_weights(params, path, force=force, spec=spec)
    elif fmt == "torch":
        from torch_model.convert import save_state_dict

        save_state_dict(params, path, force=force)
    else:
        from tf_model.tf1_checkpoint import save_tf1_checkpoint

        save_tf1_checkpoint(params, path, force=force, spec=spec)
    return fmt


def _framework_of(model) -> str:
    modules = {cls.__module__.split(".")[0] for cls in type(model).__mro__}
    if "keras" in modules:
        return "keras"
    if "torch" in modules:
        return "torch"
    raise ValueError(f"model: expected a keras.Model or a torch.nn.Module, got {type(model).__name__}")


def params_from_model(model) -> dict:
    """Canonical params of a live Keras model or torch module."""
    if _framework_of(model) == "keras":
        from tf_model.convert import get_keras_weights

        return get_keras_weights(model)
    from torch_model.convert import params_from_module

    return params_from_module(model)


def params_into_model(params, model) -> None:
    """Copy canonical params into a live Keras model or torch module (shapes checked, no reshaping)."""
    check_params(params, None)
    if _framework_of(model) == "keras":
        from tf_model.convert import set_keras_weights

        set_keras_weights(model, params)
    else:
        from torch_model.convert import load_params_into_module

        load_params_into_module(model, params)


def describe(params) -> str:
    """One line per tensor: name, shape, dtype."""
    return "\n".join(f"  {n:3s} {str(params[n].shape):16s} {params[n].dtype}" for n in PARAM_NAMES)
