"""Save / load neural functionals as one self-describing file, and shipped trained functionals.

File format (extension ``.pt``, read with ``torch.load(weights_only=True)``,
so loading never executes pickled code)::

    {"pwxc_xc_format": 1,
     "header": "<JSON string>",          # see below
     "state_dict": {name: Tensor, ...}}  # the module's state_dict

The JSON header holds ``class`` and ``config`` (constructor arguments; nested
models and the base functional by name or as nested {class, config}),
``module`` (where the class lives, for user-defined classes), ``pwxc_version``,
``torch_version``, ``base`` (base functional name, for information) and the
user's ``metadata``.  Built-in classes (MLP, HybridXC, EnhancedXC) rebuild
without any training code; a user-defined NeuralXC subclass must be
importable from its module (or already imported) at load time.

Trained functionals shipped with pwxc live in ``pwxc/data/functionals/<name>.pt``;
``load("<name>")`` finds them and ``available()`` lists them.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import List, Optional, Union

import torch
from torch import nn

from .functional import Functional
from .neural import SAVABLE_CLASSES

__all__ = ["save", "load", "available", "spec", "build", "DATA_DIR", "EXTENSION"]

FORMAT_VERSION = 1
EXTENSION = ".pt"
DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "functionals"


def _pwxc_version() -> str:
    try:
        from importlib.metadata import version

        return version("pwxc")
    except Exception:  # pragma: no cover - not installed
        import pwxc

        return getattr(pwxc, "__version__", "unknown")


def spec(obj: Functional) -> dict:
    """JSON-serializable description of a functional: {"name": ...} or {"class", "module", "config"}."""
    cls = type(obj)
    if hasattr(obj, "get_config") and SAVABLE_CLASSES.get(f"{cls.__module__}.{cls.__qualname__}") is cls:
        return {"class": cls.__qualname__, "module": cls.__module__, "config": obj.get_config()}
    from .registry import available_functionals, functional

    name = getattr(obj, "name", None)
    if name in available_functionals(include_trained=False) and type(functional(name)) is type(obj):
        return {"name": name}
    raise ValueError(
        f"cannot save {type(obj).__name__} (name {name!r}): give it get_config() or use a named functional"
    )


def build(s: dict) -> Functional:
    """Inverse of :func:`spec` (weights are not restored here)."""
    if "name" in s:
        from .registry import functional

        return functional(s["name"])
    full = f"{s.get('module')}.{s['class']}"
    cls = SAVABLE_CLASSES.get(full)
    if cls is None and s.get("module"):
        try:
            importlib.import_module(s["module"])
            cls = SAVABLE_CLASSES.get(full)
        except ImportError:
            pass
    if cls is None:  # e.g. a class defined in a script: match by name
        cls = SAVABLE_CLASSES.get(s["class"])
    if cls is None:
        raise ValueError(f"unknown functional class {s['class']!r}; import the module defining it first")
    if hasattr(cls, "from_config"):
        return cls.from_config(s["config"])
    return cls(**s["config"])


def save(obj: nn.Module, path: Union[str, os.PathLike], metadata: Optional[dict] = None) -> None:
    """Save a neural functional (weights + JSON header) to ``path`` (one file)."""
    head = spec(obj)
    if "name" in head:
        raise ValueError("built-in functionals have no weights to save; use their name")
    head.update(
        {
            "format": FORMAT_VERSION,
            "pwxc_version": _pwxc_version(),
            "torch_version": torch.__version__,
            "base": getattr(obj, "base_name", None),
            "metadata": metadata or {},
        }
    )
    state = {k: v.detach().cpu().clone() for k, v in obj.state_dict().items()}
    payload = {"pwxc_xc_format": FORMAT_VERSION, "header": json.dumps(head), "state_dict": state}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)


def available() -> List[str]:
    """Names of the trained functionals shipped in ``pwxc/data/functionals`` (may be empty)."""
    if not DATA_DIR.is_dir():
        return []
    return sorted(p.name[: -len(EXTENSION)] for p in DATA_DIR.glob("*" + EXTENSION))


def _resolve(name_or_path: Union[str, os.PathLike]) -> Path:
    p = Path(name_or_path)
    if p.is_file():
        return p
    key = str(name_or_path)
    shipped = DATA_DIR / (key + EXTENSION)
    if os.sep not in key and "/" not in key and shipped.is_file():
        return shipped
    known = available()
    raise FileNotFoundError(
        f"no file {str(name_or_path)!r} and no shipped functional of that name; "
        f"shipped: {', '.join(known) if known else '(none)'}"
    )


def load(name_or_path: Union[str, os.PathLike], map_location: Union[str, torch.device] = "cpu") -> Functional:
    """Load a functional saved with :func:`save`, from a path or a shipped name.

    The returned module has the saved parameters (dtype as saved) and a
    ``metadata`` attribute (dict from the header, including ``pwxc_version``).
    """
    path = _resolve(name_or_path)
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or "pwxc_xc_format" not in payload:
        raise ValueError(f"{path} is not a pwxc functional file")
    if payload["pwxc_xc_format"] > FORMAT_VERSION:
        raise ValueError(f"{path} has format {payload['pwxc_xc_format']}; upgrade pwxc")
    head = json.loads(payload["header"])
    obj = build(head)
    # assign=True keeps the saved tensors (and dtypes: a float64 model stays float64)
    obj.load_state_dict(payload["state_dict"], strict=True, assign=True)
    obj.metadata = dict(head.get("metadata", {}))
    obj.metadata.setdefault("pwxc_version", head.get("pwxc_version"))
    return obj
