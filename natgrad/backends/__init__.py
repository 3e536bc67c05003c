"""One backend per config kind: the only place that reads ``HwConfig.kind``.

:func:`backend_for` turns a validated config into the backend of its kind; every command
(``run``, ``budget``, ``sweep``, ``deploy``, ``formats``, the experiments) asks the backend
instead of testing the kind.  A new chip kind is one module here (a :class:`Backend`
subclass) plus its schema in :mod:`emulator.hwconfig` and its engine in :mod:`emulator`.
"""
from __future__ import annotations

from natgrad.backends.base import Backend, ReportSections
from natgrad.backends.datapath import DatapathBackend
from natgrad.backends.float64 import Float64Backend
from natgrad.backends.learning_engine import LearningEngineBackend

__all__ = ["BACKENDS", "Backend", "ReportSections", "backend_for", "describe"]

#: config kind -> its backend class
BACKENDS = {cls.kind: cls for cls in (Float64Backend, DatapathBackend, LearningEngineBackend)}


#: the backends of the last few configs asked for, so that a run that asks several times
#: (the experiments' helpers) compiles each task's design once: id(cfg) -> (cfg, backend)
_RECENT: dict = {}
_RECENT_MAX = 4


def backend_for(cfg) -> Backend:
    """The backend of a validated config (or a bundled name / path, loaded first)."""
    if isinstance(cfg, Backend):
        return cfg
    if not hasattr(cfg, "kind"):
        from emulator.hwconfig import load
        cfg = load(cfg)
    hit = _RECENT.get(id(cfg))
    if hit is not None and hit[0] is cfg:
        return hit[1]
    backend = BACKENDS[cfg.kind](cfg)
    _RECENT[id(cfg)] = (cfg, backend)
    while len(_RECENT) > _RECENT_MAX:
        del _RECENT[next(iter(_RECENT))]
    return backend


def describe(cfg) -> str:
    """``natgrad check-config``: the config is valid, and its kind's table of formats."""
    lines = [f"config {cfg.name} ({cfg.source}): kind {cfg.kind}: valid"]
    return "\n".join(lines + backend_for(cfg).describe_lines())
