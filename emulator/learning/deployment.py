"""A learning-engine design as files: write it, read it back exactly.

``natgrad deploy`` on a ``kind: learning_engine`` config writes a folder; this module owns
the folder's machine-readable part:

* ``design.json`` -- every field of the :class:`~emulator.learning.Design` (rule products,
  tags, weight exponent, the neuron's integer constants and tables, the engine, neuron and
  mapping records), serialized field by field so that :func:`read_design` rebuilds an
  equal Design;
* ``network.json`` -- what one Lava network of one trial needs besides the design: the
  initial integer weights, the seed and trial (the engine's random streams and the neuron's
  counter RNG derive from them).

:func:`lava_procs.deployment.build_from_deployment` builds the Lava network from these two
files alone.  Nothing here imports Lava.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from emulator.params import NeuronParams

from . import constants as _constants
from . import rule_design as _rule_design

__all__ = ["to_json", "from_json", "write_deployment", "read_design", "read_network",
           "DESIGN_FILE", "NETWORK_FILE", "FORMAT"]

DESIGN_FILE = "design.json"
NETWORK_FILE = "network.json"
FORMAT = "natgrad-learning-engine-deployment/1"


def _registry() -> dict:
    """Dataclasses that may appear in a Design, by name."""
    reg = {"NeuronParams": NeuronParams}
    for mod in (_constants, _rule_design):
        for name in dir(mod):
            obj = getattr(mod, name)
            if isinstance(obj, type) and dataclasses.is_dataclass(obj):
                reg[name] = obj
    return reg


def to_json(obj):
    """A JSON-able tree of ``obj`` (dataclasses, numpy arrays and scalars, tuples, dicts)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"__dataclass__": type(obj).__name__,
                "fields": {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype), "shape": list(obj.shape)}
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, tuple):
        return {"__tuple__": [to_json(v) for v in obj]}
    if isinstance(obj, list):
        return [to_json(v) for v in obj]
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {"__dict__": {k: to_json(v) for k, v in obj.items()}}
        return {"__items__": [[to_json(k), to_json(v)] for k, v in obj.items()]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot serialize {type(obj).__name__}")


def from_json(tree, registry: dict | None = None):
    """Inverse of :func:`to_json`."""
    reg = _registry() if registry is None else registry
    if isinstance(tree, list):
        return [from_json(v, reg) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if "__dataclass__" in tree:
        cls = reg[tree["__dataclass__"]]
        return cls(**{k: from_json(v, reg) for k, v in tree["fields"].items()})
    if "__ndarray__" in tree:
        return np.array(tree["__ndarray__"], dtype=tree["dtype"]).reshape(tree["shape"])
    if "__tuple__" in tree:
        return tuple(from_json(v, reg) for v in tree["__tuple__"])
    if "__dict__" in tree:
        return {k: from_json(v, reg) for k, v in tree["__dict__"].items()}
    if "__items__" in tree:
        return {from_json(k, reg): from_json(v, reg) for k, v in tree["__items__"]}
    raise ValueError(f"unknown record {sorted(tree)[:3]}")


def write_deployment(folder: Path, design, w_init_int: np.ndarray, seed: int, trial: int,
                     extra: dict | None = None) -> None:
    """Write ``design.json`` and ``network.json`` into ``folder`` (which must exist)."""
    folder = Path(folder)
    (folder / DESIGN_FILE).write_text(json.dumps({"format": FORMAT, "design": to_json(design)}))
    net = {"format": FORMAT, "seed": int(seed), "trial": int(trial),
           "w_init_int": np.asarray(w_init_int, np.int64).tolist()}
    if extra:
        net.update(extra)
    (folder / NETWORK_FILE).write_text(json.dumps(net, indent=1))


def _read(path: Path) -> dict:
    rec = json.loads(Path(path).read_text())
    if rec.get("format") != FORMAT:
        raise ValueError(f"{path}: not a natgrad learning-engine deployment ({FORMAT})")
    return rec


def read_design(folder: Path):
    """The Design stored in ``folder/design.json``."""
    return from_json(_read(Path(folder) / DESIGN_FILE)["design"])


def read_network(folder: Path) -> dict:
    """``network.json`` of ``folder``: seed, trial, initial integer weights (M, N)."""
    rec = _read(Path(folder) / NETWORK_FILE)
    rec["w_init_int"] = np.asarray(rec["w_init_int"], np.int64)
    return rec
