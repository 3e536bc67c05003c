"""A ``kind: learning_engine`` hardware config -> the learning-engine design of a task.

The config's sections ``engine``, ``neuron`` and ``mapping`` are the fields of
:class:`~emulator.learning.constants.EngineSpec`, :class:`NeuronSpec` and
:class:`MappingSpec` (schema: :data:`emulator.hwconfig.LE_SCHEMA`).  ``'auto'`` mapping
fields are chosen per task (nengo-loihi's *discretize*, done here per synapse group).
"""
from __future__ import annotations

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
    """The learning-engine design of ``task`` at learning rate ``eta`` (code units) on ``cfg``:
    'auto' mapping fields chosen for the task, each choice and its reason in
    ``Design.choices``."""
    engine, neuron, mapping = specs(cfg)
    return design_for_task(task, eta, mapping=mapping, engine=engine, neuron=neuron)
