"""A learning-engine design as files: write it, read it back exactly.

``natgrad deploy`` on a ``kind: learning_engine`` config writes a folder; this module owns
the folder's machine-readable part:

* ``design.json`` -- every field of the :class:`~emulator.learning.Design` (rule products,
  tags, weight exponent, the neuron's integer constants and tables, the engine, neuron and
  mapping records), serialized field by field so that :func:`read_design` rebuilds an
  equal Design;
* ``network.json`` -- what one Lava network of one trial needs besides the design: the
  initial integer weights, the seed and trial (the engine's random streams and the neuron's
  counter RNG derive from them);
* ``manifest.json`` -- each file's SHA-256, natgrad's version and the design's digest.

:func:`lava_procs.deployment.build_from_deployment` builds the Lava network from the two
JSON files alone, after :func:`verify_deployment` has checked them against the manifest and
against each other.  ``deploy.yaml`` (written by ``natgrad deploy``) is a record for people,
never read to build; it is in the manifest too, so an edited copy is detected, not trusted.
Nothing here imports Lava.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from emulator.params import NeuronParams

from . import constants as _constants
from . import rule_design as _rule_design

__all__ = ["to_json", "from_json", "write_deployment", "read_design", "read_network",
           "verify_deployment", "DeploymentError", "DESIGN_FILE", "NETWORK_FILE",
           "MANIFEST_FILE", "RECORD_FILE", "FORMAT"]

DESIGN_FILE = "design.json"
NETWORK_FILE = "network.json"
MANIFEST_FILE = "manifest.json"
RECORD_FILE = "deploy.yaml"
FORMAT = "natgrad-learning-engine-deployment/1"


class DeploymentError(ValueError):
    """A deployment folder that must not be built (its message is one line)."""


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


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def design_digest(design) -> str:
    """SHA-256 of a Design's canonical JSON (independent of how the file is formatted)."""
    return _sha256(json.dumps(to_json(design), sort_keys=True).encode())


def _natgrad_version() -> str:
    try:
        from importlib.metadata import version
        return version("natgrad")
    except Exception:  # noqa: BLE001
        return "unknown"


def write_deployment(folder: Path, design, w_init_int: np.ndarray, seed: int, trial: int,
                     extra: dict | None = None, record: str | None = None) -> None:
    """Write ``design.json``, ``network.json``, the optional human record ``deploy.yaml``
    (``record``: its text) and last ``manifest.json`` into ``folder`` (which must exist)."""
    folder = Path(folder)
    files = {DESIGN_FILE: json.dumps({"format": FORMAT, "design": to_json(design)})}
    net = {"format": FORMAT, "seed": int(seed), "trial": int(trial),
           "w_init_int": np.asarray(w_init_int, np.int64).tolist()}
    if extra:
        net.update(extra)
    files[NETWORK_FILE] = json.dumps(net, indent=1)
    if record is not None:
        files[RECORD_FILE] = record
    for name, text in files.items():
        (folder / name).write_text(text)
    manifest = {"format": FORMAT, "natgrad_version": _natgrad_version(),
                "design_digest": design_digest(design),
                "files": {name: _sha256(text.encode()) for name, text in files.items()},
                "built_from": [DESIGN_FILE, NETWORK_FILE],
                "note": f"{RECORD_FILE} is a record for people: building never reads it, and a "
                        "changed copy makes the folder refuse to build"}
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))


def verify_deployment(folder: Path) -> dict:
    """Check a deployment folder before it is built; returns its manifest.

    Refuses (:class:`DeploymentError`, one line naming the file and the reason) a folder
    without a readable manifest, a listed file that is missing or whose SHA-256 differs from
    the manifest's, a design whose digest differs, and files that disagree with each other
    (the initial weights' shape against the design's afferents; the record's rule, tags and
    weights against the design and network)."""
    folder = Path(folder)
    mpath = folder / MANIFEST_FILE
    try:
        manifest = json.loads(mpath.read_text())
        files = dict(manifest["files"])
    except FileNotFoundError:
        raise DeploymentError(f"{mpath}: missing (not a natgrad deployment folder, or one "
                              "written before manifests: redeploy)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DeploymentError(f"{mpath}: unreadable ({type(exc).__name__})") from None
    if manifest.get("format") != FORMAT:
        raise DeploymentError(f"{mpath}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    for name in (DESIGN_FILE, NETWORK_FILE):
        if name not in files:
            raise DeploymentError(f"{mpath}: does not list {name}")
    for name, digest in files.items():
        path = folder / name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DeploymentError(f"{path}: listed in {MANIFEST_FILE} but unreadable "
                                  f"({exc.strerror or type(exc).__name__})") from None
        if _sha256(data) != digest:
            raise DeploymentError(f"{path}: changed since natgrad deploy wrote it (SHA-256 "
                                  f"differs from {MANIFEST_FILE}'s); redeploy instead of editing")
    try:
        d = read_design(folder)
        net = read_network(folder)
    except (ValueError, KeyError, TypeError) as exc:
        raise DeploymentError(f"{folder}: unreadable design or network "
                              f"({type(exc).__name__}: {exc})".splitlines()[0]) from None
    if design_digest(d) != manifest.get("design_digest"):
        raise DeploymentError(f"{folder / DESIGN_FILE}: design digest differs from "
                              f"{MANIFEST_FILE}'s")
    n = int(np.asarray(d.tags).size)
    w = net["w_init_int"]
    if w.ndim != 2 or w.shape[1] != n:
        raise DeploymentError(f"{folder / NETWORK_FILE}: w_init_int has shape {w.shape}, the "
                              f"design has {n} afferents (expected (M, {n}))")
    if RECORD_FILE in files:
        import yaml
        try:
            rec = yaml.safe_load((folder / RECORD_FILE).read_text())
            same = (rec["learning_rule"]["dw"] == d.rule
                    and list(rec["learning_dense"]["tag_1"]) == np.asarray(d.tags).tolist()
                    and np.array_equal(np.asarray(rec["learning_dense"]["weights"]), w))
        except Exception as exc:  # noqa: BLE001  (any malformed record)
            raise DeploymentError(f"{folder / RECORD_FILE}: unreadable record "
                                  f"({type(exc).__name__})") from None
        if not same:
            raise DeploymentError(f"{folder / RECORD_FILE}: its rule, tags or weights disagree "
                                  f"with {DESIGN_FILE} / {NETWORK_FILE}")
    return manifest


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
