"""Trial shards of an experiment: run on a local process pool or a Dask cluster, cached on
disk so that an interrupted paper-scale run resumes where it stopped.

A shard is a pure function of ``(experiment, parameters, seed, config, trials)``: every
random bit comes from the counter RNG indexed by global trial ids, so a trial's numbers do
not depend on the shard it runs in, and the merged result is identical for any sharding,
executor or order of completion (``tests/natgrad/test_shards.py``).

The cache is data, never code: each finished shard is ``CACHE/<key>.npz`` (key: a hash of
its inputs), plain numeric arrays plus a JSON skeleton, read with ``allow_pickle=False``, so
loading a shard someone else wrote on a shared filesystem cannot execute anything.  Each
file carries the inputs it was computed from (function, parameters with the config tree,
seed, trial range, natgrad's version and a digest of its source) and a SHA-256 of its own
contents.  A shard that is damaged, was computed for other inputs or by other code, or
whose digest does not match is recomputed with one warning line on stderr, never trusted.
It is written to a temporary name and renamed into place, so a file is complete or absent.
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import sys
from pathlib import Path

import numpy as np

__all__ = ["shard_ranges", "run_shards", "shard_key", "cached_shards", "write_shard",
           "read_shard", "ShardError"]

#: Bumped when the file layout changes (old files are then recomputed, not misread).
SHARD_FORMAT = 1
#: Packages whose source decides a shard's numbers (their digest is part of the key).
_CODE_PACKAGES = ("fixedpoint", "emulator", "natgrad")


class ShardError(ValueError):
    """A cached shard that cannot be trusted (damaged, other inputs, wrong digest)."""


def shard_ranges(n_trials: int, shard_trials: int) -> list[np.ndarray]:
    """Consecutive trial ids in shards of at most ``shard_trials``."""
    if shard_trials < 1:
        raise ValueError(f"shard_trials must be >= 1 (got {shard_trials})")
    ids = np.arange(n_trials, dtype=np.int64)
    return [ids[i:i + shard_trials] for i in range(0, n_trials, shard_trials)]


@functools.lru_cache(maxsize=1)
def _version() -> str:
    """natgrad's version and a digest of the source that computes shards: a shard computed
    by other code (an edited checkout, another release) is not reused."""
    try:
        from importlib.metadata import version
        v = version("natgrad")
    except Exception:  # noqa: BLE001
        v = "unknown"
    h = hashlib.sha256()
    root = Path(__file__).resolve().parents[2]
    for pkg in _CODE_PACKAGES:
        for f in sorted((root / pkg).rglob("*.py")):
            h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return f"{v}+src.{h.hexdigest()[:16]}"


def _inputs(fn_name: str, args: tuple, trials: np.ndarray) -> str:
    """The canonical JSON of a shard's inputs (what its key hashes and its file records)."""
    return json.dumps([SHARD_FORMAT, fn_name, args, [int(t) for t in np.asarray(trials)],
                       _version()], sort_keys=True, default=str)


def shard_key(fn_name: str, args: tuple, trials: np.ndarray) -> str:
    """Hash of a shard's inputs (format, function, JSON-able arguments, trial ids, natgrad's
    version and source digest)."""
    return hashlib.sha256(_inputs(fn_name, args, trials).encode()).hexdigest()[:24]


# --- the file format: a JSON skeleton + plain arrays, and a digest over both ---------------

def _encode(x, arrays: list):
    """The JSON skeleton of a result tree; arrays go to ``arrays`` (numeric dtypes only)."""
    if isinstance(x, dict):
        if not all(isinstance(k, str) for k in x):
            raise TypeError("shard results: dict keys must be strings")
        return {"d": {k: _encode(v, arrays) for k, v in x.items()}}
    if isinstance(x, (list, tuple)):
        return {"t" if isinstance(x, tuple) else "l": [_encode(v, arrays) for v in x]}
    if isinstance(x, (np.ndarray, np.generic)):
        a = np.asarray(x)
        if a.dtype.kind not in "biufc":
            raise TypeError(f"shard results: arrays must be numeric (got dtype {a.dtype})")
        arrays.append(a.copy(order="C"))       # (ascontiguousarray would make 0-d 1-d)
        return {"a": len(arrays) - 1, "scalar": isinstance(x, np.generic)}
    if x is None or isinstance(x, (bool, int, float, str)):
        return {"v": x}
    raise TypeError(f"shard results: cannot store a {type(x).__name__}")


def _decode(node, arrays: list):
    if "d" in node:
        return {k: _decode(v, arrays) for k, v in node["d"].items()}
    if "l" in node:
        return [_decode(v, arrays) for v in node["l"]]
    if "t" in node:
        return tuple(_decode(v, arrays) for v in node["t"])
    if "a" in node:
        a = arrays[node["a"]]
        return a[()] if node["scalar"] else a
    return node["v"]


def _digest(meta: bytes, arrays: list) -> str:
    h = hashlib.sha256(meta)
    for a in arrays:
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes(order="C"))
    return h.hexdigest()


def write_shard(path: str | Path, result, inputs: str) -> None:
    """Store ``result`` (dicts, lists, numeric arrays, plain scalars) at ``path`` (.npz) with
    the ``inputs`` it was computed from and a digest; a temporary file renamed into place."""
    arrays: list = []
    meta = json.dumps({"format": SHARD_FORMAT, "inputs": inputs,
                       "tree": _encode(result, arrays)}, sort_keys=True).encode()
    buf = io.BytesIO()
    np.savez(buf, __meta__=np.frombuffer(meta, np.uint8),
             __digest__=np.frombuffer(_digest(meta, arrays).encode(), np.uint8),
             **{f"a{i}": a for i, a in enumerate(arrays)})
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(buf.getbuffer())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_shard(path: str | Path, inputs: str):
    """The result stored at ``path``; :class:`ShardError` (with the reason) if the file is
    damaged, was computed for other ``inputs`` or its digest does not match."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = z["__meta__"].tobytes()
            digest = z["__digest__"].tobytes().decode()
            tree = json.loads(meta)
            arrays = [z[f"a{i}"] for i in range(sum(1 for k in z.files if k[0] == "a"))]
    except (OSError, ValueError, KeyError, EOFError, UnicodeDecodeError) as exc:
        raise ShardError(f"unreadable ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # noqa: BLE001  (zipfile.BadZipFile and kin)
        raise ShardError(f"unreadable ({type(exc).__name__}: {exc})") from None
    if tree.get("format") != SHARD_FORMAT or tree.get("inputs") != inputs:
        raise ShardError("computed for other inputs (config, task, seed, trials or code)")
    if _digest(meta, arrays) != digest:
        raise ShardError("contents do not match their digest")
    try:
        return _decode(tree["tree"], arrays)
    except (KeyError, IndexError, TypeError) as exc:
        raise ShardError(f"malformed ({type(exc).__name__}: {exc})") from None


def _warn(path: Path, reason: str) -> None:
    print(f"natgrad: cache shard {path} ignored: {reason}; recomputing", file=sys.stderr,
          flush=True)


def _shard_path(cache, fn_name: str, args: tuple, trials) -> Path:
    return Path(cache) / f"{shard_key(fn_name, args, trials)}.npz"


def _load_valid(path: Path, inputs: str, warn: bool = True):
    """(True, result) for a trustworthy cached shard, else (False, None) with a warning."""
    if not path.exists():
        return False, None
    try:
        return True, read_shard(path, inputs)
    except ShardError as exc:
        if warn:
            _warn(path, str(exc))
        return False, None


def _cached_call(fn, args: tuple, trials, cache: str | None):
    """Run one shard, or load it from the cache; worker side of :func:`run_shards`."""
    trials = np.asarray(trials, np.int64)
    name = fn.__module__ + "." + fn.__name__
    path = None
    if cache:
        inputs = _inputs(name, args, trials)
        path = _shard_path(cache, name, args, trials)
        ok, out = _load_valid(path, inputs)
        if ok:
            return out
    out = fn(*args, trials)
    if path is not None:
        write_shard(path, out, inputs)
    return out


def cached_shards(fn, args: tuple, shards: list[np.ndarray], cache: str | Path) -> list:
    """The shards of ``shards`` whose result is in ``cache`` and can be trusted (in order);
    a damaged or foreign file is reported with one warning line and left out."""
    name = fn.__module__ + "." + fn.__name__
    return [s for s in shards
            if _load_valid(_shard_path(cache, name, args, np.asarray(s)),
                           _inputs(name, args, np.asarray(s)))[0]]


def run_shards(fn, args: tuple, shards: list[np.ndarray], executor: str = "serial",
               workers: int = 2, scheduler: str | None = None, cache: str | Path | None = None,
               progress=None) -> list:
    """``fn(*args, trials)`` for every shard, results in shard order.

    ``executor``: ``serial`` (this process), ``local`` (a process pool of ``workers``) or
    ``dask`` (``scheduler`` address, or a LocalCluster of ``workers``).  ``cache``: folder of
    finished shards (created); shards found there are not recomputed.  ``fn`` must be a
    module-level function and ``args`` JSON-able (the cache key) and picklable.
    """
    from natgrad.executors import execute
    if cache is not None:
        Path(cache).mkdir(parents=True, exist_ok=True)
    tasks = [(fn, args, [int(t) for t in s], None if cache is None else str(cache))
             for s in shards]
    return execute(_cached_call, tasks, executor=executor, scheduler=scheduler,
                   workers=workers, progress=progress)
