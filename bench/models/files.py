"""Reading checkpoint files as other codebases write them (CIRKD, mmseg/mmengine) and as this one does.

:func:`load_file` with :func:`unwrap_state_dict` accept what ``torch.save`` wrote in CIRKD (a bare
state dict, DDP's ``module.`` prefix possible), mmseg/mmengine (``{"meta", "state_dict",
"message_hub", ...}``, whose pickles name mmengine classes) and this project. It never runs code
from the file: tensors are read with ``weights_only=True`` where possible, otherwise every class the
pickle names outside torch and the standard containers becomes an inert placeholder.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from bench.errors import CheckpointError

_SAFE_BUILTINS = {
    "dict",
    "list",
    "tuple",
    "set",
    "frozenset",
    "int",
    "float",
    "str",
    "bytes",
    "bool",
    "slice",
}


def _real(module: str, name: str) -> bool:
    """What the lenient reader rebuilds for real: tensors, storages, dtypes and plain containers."""
    if module == "builtins":
        return name in _SAFE_BUILTINS
    if module in ("collections", "_codecs", "copyreg"):
        return name in ("OrderedDict", "encode", "_reconstructor")
    if module in ("torch._utils", "torch._tensor"):
        return name.startswith("_rebuild")
    if module == "torch":
        return (
            name.endswith("Storage")
            or name in ("Size", "device")
            or isinstance(getattr(torch, name, None), torch.dtype)
        )
    return False


class _Placeholder:
    """Stands in for an object of a library that is not needed (mmengine's HistoryBuffer, numpy)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Placeholder:
        return _Placeholder()


class _LenientUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(module, name) if _real(module, name) else _Placeholder


_lenient_pickle = ModuleType("lenient_pickle")  # torch.load's pickle_module: a module-like object
_lenient_pickle.Unpickler = _LenientUnpickler  # type: ignore[attr-defined]
_lenient_pickle.load = lambda f, **kw: _LenientUnpickler(f, **kw).load()  # type: ignore[attr-defined]
_lenient_pickle.__dict__.update({k: getattr(pickle, k) for k in ("UnpicklingError", "HIGHEST_PROTOCOL")})


def load_file(path: Path) -> Any:
    """The object ``torch.save`` wrote to ``path``; :class:`CheckpointError` naming the file if none."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as e:
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint (truncated or another format: {_first(e)})"
        ) from None
    except Exception:  # other libraries' classes (mmengine's meta), or no pickle at all
        pass
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_lenient_pickle)
    except Exception as e:  # any failure here means the file is not a checkpoint
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({_first(e)})") from None


def _first(e: BaseException) -> str:
    """The error's first sentence (torch's zip errors go on for lines)."""
    line = (str(e).splitlines() or [type(e).__name__])[0]
    return line.split(". ")[0][:200] or type(e).__name__


def unwrap_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """The state dict inside what a training script saved: ``state_dict``/``model`` wrappers and
    DDP's ``module.`` prefix removed."""
    for _ in range(3):
        if isinstance(obj, dict) and not _is_state_dict(obj):
            inner = next((obj[k] for k in ("state_dict", "model", "net") if k in obj), None)
            if inner is None:
                raise CheckpointError(
                    f"{path}: no state dict inside (top-level keys: {sorted(map(str, obj))[:8]})"
                )
            obj = inner
    if not isinstance(obj, dict) or not _is_state_dict(obj):
        raise CheckpointError(f"{path}: not a state dict of a network (found {type(obj).__name__})")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return dict(obj)


def _is_state_dict(d: dict) -> bool:
    return bool(d) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in d.items())
