"""Emulator mode ``learning_engine``: the arithmetic of Path 2 (Loihi 2 learning engine).

Path 2 maps the approximate natural-gradient rule (docs/model.md#approximate-rule)

    dw_i = eta gamma_s (1 - sigma(V)) e [c_eps x_i / r_i - c_eps c_u + c_w V w_i]

onto Lava 0.10's ``LearningDense`` (its ``fixed_pt`` model, ``PyLearningDenseModelBitApproximate``)
with a ``Loihi3FLearningRule`` sum-of-products string, plus a custom learning neuron that
computes V, sigma(V), the error e and gamma_s in integers and sends third factors.  This
package knows nothing of Lava: it builds the rule (as data, and as the string Lava parses),
computes every constant, implements the learning neuron's integer step (which the Lava
neuron model calls, so neuron arithmetic is shared) and re-implements, independently, what
``LearningDense`` does to traces, third factors and weights, including which numpy random
generator Lava draws from and in what order.  ``docs/learning_engine.md`` derives every
constant and the loss each step brings.

The mapping in one paragraph
----------------------------
The post factor ``P = eta gamma_s (1 - sigma) e`` travels to the synapses in one of two
codings (``MappingSpec.encoding``).  *Graded* (the shipped ``loihi2``): each epoch the neuron
sends a level ``L`` in ``0..levels`` as ``y1 = y_unit L``, the sign on the back-propagating
spike; a negative level is worth ``E_n`` and a positive one ``unit_ratio E_n``; ``L`` is the
amount stochastically rounded (unbiased) and whatever exceeds the top level waits in the
neuron's carry.  *Events*: one event of size ``E_q`` with probability ``|P| / E_q``, positive
as the bap, negative as ``y1 = 64``, the excess beyond probability 1 carried likewise.  The
membrane potential for the heterosynaptic term travels as ``y3 = 64 + (L) V / v_lsb``.  With
these codings every product of the rule has a fixed, known scale, and the homosynaptic
products are exact integers (no loss to the engine's floor shift) when the tags are
multiples of 32 (graded) or 16 (events).  The per-afferent ``c_eps / r_i`` rides on the
static tag ``t`` (``tag_1``); with hidden bits the update is learnt in ``tag_2`` below the
weight LSB and carried into the weight every epoch.  The Euclidean rule maps onto the same
engine and coding (``MappingSpec.rule = 'euclid'``).

    graded dd =  c y0 t x_j y1 (unit_ratio + 1 copies each, ordered)  -/+  c u0 t x_j y1
               - (r+1) K y0 y1 + K u0 y1 + (r+1) H y0 (y3 - 64) w - H u0 (y3 - 64) w
               - 2^h u0 (d - D) y2

Modules (split the way Lava splits ``lava/magma/core/learning/``)
----------------------------------------------------------------
* :mod:`.constants`    -- engine widths and the neuron's formats (Lava: ``constants.py``),
  and the records :class:`EngineSpec`, :class:`NeuronSpec`, :class:`MappingSpec` that a
  :class:`Design` carries: the arithmetic reads only ``d.engine`` / ``d.neuron``
* :mod:`.rule_design`       -- :class:`Product`, :func:`rule_string`, :class:`Design`,
  :func:`design`, :func:`design_for_task` (Lava: ``product.py``, ``learning_rule.py``),
  gathered from :mod:`.products`, :mod:`.design_record`, :mod:`.unit_choice`,
  :mod:`.neuron_constants`, :mod:`.derivation`, :mod:`.task_fit`, :mod:`.expected`; the
  neuron's sigmoid table and decays come from :mod:`emulator.rule_math`
* :mod:`.neuron`       -- the learning neuron's integer step, numpy
* :mod:`.lava_replica` -- LearningDense's fixed-point model: randoms, traces, products,
  weights (Lava: ``learning_rule_applier.py``, ``random.py``, ``model/py/connection.py``)
* :mod:`.kernel`       -- the fused numba kernel, bit-identical twin of neuron + replica
* :mod:`.driver`       -- :class:`LEResult` and :func:`run`

"""
from __future__ import annotations

from .constants import (ACC_HI, ACC_LO, ACC_SHIFT, F_A, F_D, F_E, F_G, F_H, F_P, F_S, F_V,
                        G_BITS, G_CAP, GAMMA_EVERY, H_TAU_SHIFT, MANT_BITS, NEURON_COUNTERS,
                        SIG_NODE_FRAC, SIG_SPAN, SR_SEED, STREAM_EVENT, STREAM_VQ, TRACE_MAX,
                        V_BITS, W_ACC_U, W_HI, W_LO, W_S_MANT, W_SYN, W_TRACE, WIDTH, Y_EVENT,
                        Y_OFFSET, Y_TAU, D_OFFSET, DEFAULT_ENGINE, DEFAULT_MAPPING,
                        DEFAULT_NEURON, EngineSpec, MappingSpec, NeuronSpec)
from .rule_design import (Design, Product, auto_c_ev, default_w_frac, design, design_for_task,
                          expected_update,
                          lava_incompatibilities, mis_scaled, product_bound, quantize_weights,
                          rule_string, var_width)
from .lava_replica import (SYNAPSE_COUNTERS, LavaRandoms, SynapseState, apply_products,
                           lava_trace_seed, synapse_init, synapse_step)
from .neuron import NeuronState, neuron_counters, neuron_init, neuron_step, sigma_lookup
from .driver import LEResult, run
from .config import design_for_config, specs
from . import deployment

__all__ = [
    "design_for_config", "specs",
    # constants
    "W_TRACE", "W_SYN", "W_S_MANT", "W_ACC_U", "ACC_SHIFT", "WIDTH", "ACC_LO", "ACC_HI",
    "W_LO", "W_HI", "TRACE_MAX", "Y_TAU", "Y_EVENT", "Y_OFFSET", "SR_SEED",
    "F_A", "F_D", "F_V", "V_BITS", "F_S", "SIG_SPAN", "SIG_NODE_FRAC", "F_E", "F_H",
    "H_TAU_SHIFT", "GAMMA_EVERY", "F_G", "G_BITS", "F_P", "MANT_BITS", "STREAM_EVENT",
    "STREAM_VQ", "G_CAP", "NEURON_COUNTERS", "D_OFFSET",
    # config records
    "EngineSpec", "NeuronSpec", "MappingSpec", "DEFAULT_ENGINE", "DEFAULT_NEURON",
    "DEFAULT_MAPPING",
    # design
    "Product", "rule_string", "product_bound", "Design", "default_w_frac", "auto_c_ev",
    "design", "design_for_task", "expected_update", "mis_scaled", "quantize_weights", "var_width",
    "lava_incompatibilities",
    # neuron
    "NeuronState", "neuron_init", "sigma_lookup", "neuron_step", "neuron_counters",
    # LearningDense replica
    "lava_trace_seed", "LavaRandoms", "SynapseState", "synapse_init", "apply_products",
    "SYNAPSE_COUNTERS",
    "synapse_step",
    # run
    "LEResult", "run",
]
