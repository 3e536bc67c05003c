"""A ``kind: learning_engine`` hardware config -> the learning-engine design of a task.

The config's sections ``engine``, ``neuron`` and ``mapping`` are the fields of
:class:`~emulator.learning.constants.EngineSpec`, :class:`NeuronSpec` and
:class:`MappingSpec` (schema: :data:`emulator.hwconfig.LE_SCHEMA`).  ``'auto'`` mapping
fields are chosen per task (nengo-loihi's *discretize*, done here per synapse group).
"""
from __future__ import annotations

import dataclasses

from emulator.hwconfig import HwConfig
from emulator.task import Task

from .constants import EngineSpec, MappingSpec, NeuronSpec
from .rule_design import Design, design_for_task

__all__ = ["specs", "design_for_config"]


def specs(cfg: HwConfig) -> tuple[EngineSpec, NeuronSpec, MappingSpec]:
    """The three spec records of a ``kind: learning_engine`` config."""
    if not cfg.is_learning_engine:
        raise ValueError(f"{cfg.source}: needs a learning-engine config (kind: learning_engine)")
    return (EngineSpec(**cfg["engine"]), NeuronSpec(**cfg["neuron"]),
            MappingSpec(**cfg["mapping"]))


def design_for_config(cfg: HwConfig, task: Task, eta: float) -> Design:
    """The learning-engine design of ``task`` at learning rate ``eta`` (code units) on ``cfg``."""
    engine, neuron, mapping = specs(cfg)
    kw = {f.name: getattr(mapping, f.name) for f in dataclasses.fields(mapping)}
    w_frac = kw.pop("w_frac")
    return design_for_task(task, eta, w_frac=None if w_frac == "auto" else int(w_frac),
                           engine=engine, neuron=neuron, mapping=mapping) \
        if _accepts_specs() else _legacy(task, eta, w_frac, kw, engine, neuron)


def _accepts_specs() -> bool:
    import inspect
    return "engine" in inspect.signature(design_for_task).parameters


def _legacy(task, eta, w_frac, kw, engine, neuron):
    # before the design took spec records: only Lava's engine and the default neuron
    if engine != EngineSpec() or neuron != NeuronSpec() or kw.get("hidden_bits"):
        raise ValueError("this build of the learning engine supports Lava's engine, the default "
                         "neuron and hidden_bits = 0 only")
    kw.pop("hidden_bits", None)
    return design_for_task(task, eta, w_frac=None if w_frac == "auto" else int(w_frac), **kw)
