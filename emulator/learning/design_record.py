"""The record of one learning-engine design: :class:`Design`, every constant of Path 2
(``docs/learning_engine.md`` derives them), and what Lava 0.10 cannot run of it."""
from __future__ import annotations

import dataclasses

import numpy as np

from emulator.params import NeuronParams

from .constants import (DEFAULT_ENGINE, DEFAULT_MAPPING, DEFAULT_NEURON, EngineSpec, MappingSpec,
                        NeuronSpec)
from .products import rule_string, u_exponent


def _field_of(spec: str, name: str, cast, doc: str) -> property:
    """A read-only property: ``cast(self.<spec>.<name>)``."""
    return property(lambda self: cast(getattr(getattr(self, spec), name)), doc=doc)


@dataclasses.dataclass(frozen=True)
class Design:
    """Every constant of Path 2 (see ``docs/learning_engine.md`` for the derivation).

    ``engine`` / ``neuron`` are the widths and formats every backend reads (no module
    constant enters the arithmetic); ``mapping`` is the resolved :class:`MappingSpec` (no
    'auto' left) and ``choices`` says, per auto field, the value chosen and why.
    """

    params: NeuronParams
    rates: np.ndarray
    eta: float
    w_frac: int               #: weight LSB = 2**-w_frac
    c_ev: int                 #: constant term of one event, accumulator units (1/128 LSB)
    k_x: int                  #: trace impulse (x1, x2 per spike)
    x1_tau: int               #: tau_m / dt (steps)
    x2_tau: int               #: tau_s / dt
    tags: np.ndarray          #: (N,) tag_1 = round(T / r_i), multiples of tag_step
    tag_step: int
    tag_scale: float          #: T
    e_q: float                #: event size in units of eta gamma_s (1-sigma) e
    v_lsb: float              #: mV per unit of Vq
    products: tuple           #: the dw rule
    weight_exp: int
    # neuron integers
    dm: int
    ds: int
    vk_mant: int
    vk_shift: int
    sigma_lut: np.ndarray
    phidt_mant: int
    phidt_shift: int
    ginv_mant: int            #: 1 / (phi_max beta^2)
    ginv_shift: int
    k_mant: int               #: eta / E_q
    k_shift: int
    ek_frac: int              #: fractional bits of |e| eta / E (one signed neuron word)
    vq_mant: int              #: 1 / v_lsb
    vq_shift: int
    engine: EngineSpec = DEFAULT_ENGINE
    neuron: NeuronSpec = DEFAULT_NEURON
    mapping: MappingSpec = DEFAULT_MAPPING
    #: the dd rule (hidden bits: the update in units of 2**-hidden_bits LSB, minus the flush)
    dd_products: tuple = ()
    #: True when every event travels on the back-propagating spike (y0) and its sign on
    #: y2 (positive) / y1 (negative): the hidden-bits encoding, which leaves the u
    #: dependency free for the flush (Lava allows one u<k> per rule set)
    all_y0: bool = False
    y_event: int = 64         #: y1 (y2) of one event: 2**(trace_bits - 1)
    y2_const: int = 0         #: y2 sent every step (hidden-bits carry divisor), 0: none
    y_offset: int = 64        #: y3 = y_offset + Vq
    info: dict = dataclasses.field(default_factory=dict, compare=False)
    choices: dict = dataclasses.field(default_factory=dict, compare=False)

    @property
    def rule(self) -> str:
        return rule_string(self.products)

    @property
    def rule_dd(self) -> str:
        return rule_string(self.dd_products)

    # the resolved mapping and engine fields a backend reads, by name
    hidden_bits = _field_of("mapping", "hidden_bits", int, "hidden weight bits below the LSB")
    encoding = _field_of("mapping", "encoding", str,
                         "'events' or 'graded' (how the post factor reaches the synapses)")
    levels = _field_of("mapping", "levels", int, "top level of one step (1 for events)")
    unit_ratio = _field_of("mapping", "unit_ratio", int, "E_p / E_n (1 for events)")
    y_unit = _field_of("mapping", "y_unit", int, "y1 per level (graded) or of one event (64)")
    d_offset = _field_of("mapping", "tag_offset", int,
                         "tag_2's offset: tag_2 = d_offset + residual (hidden bits)")
    mapped_rule = _field_of("mapping", "rule", str,
                            "'approx' (the approximate natural gradient) or 'euclid'")
    t_epoch = _field_of("engine", "t_epoch", int, "steps per learning epoch")

    @property
    def u_exponent(self) -> int:
        """k of the rule set's u<k> dependency (0 when only u0 or no u product is used)."""
        ks = {u_exponent(p.dep) for p in self.products + self.dd_products} - {None}
        return ks.pop() if ks else 0

    @property
    def lsb_w(self) -> float:
        return 2.0 ** -self.w_frac

    @property
    def n_afferents(self) -> int:
        return int(self.rates.shape[0])

    @property
    def lava_compatible(self) -> bool:
        """Whether Lava 0.10's LearningDense computes this design (engine = Lava's, shared
        roundings, sigma table etc. are the neuron's own and always fine)."""
        return not lava_incompatibilities(self)


def lava_incompatibilities(d: Design) -> list[str]:
    """Engine settings of ``d`` that Lava 0.10 cannot run (empty: it can)."""
    e, ref = d.engine, DEFAULT_ENGINE
    bad = [f"engine.{f}={getattr(e, f)!r} (Lava: {getattr(ref, f)!r})"
           for f in ("trace_bits", "synaptic_bits", "scale_mant_bits", "accumulator_bits",
                     "acc_shift", "y_tau", "weight_rounding", "trace_rounding", "sr_seed")
           if getattr(e, f) != getattr(ref, f)]
    return bad


def e_bits(engine: EngineSpec | None) -> int:
    return (engine or DEFAULT_ENGINE).synaptic_bits

