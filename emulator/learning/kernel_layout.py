"""Where the learning-engine kernel finds its constants and counters: the layout of
:func:`.kernel.pack`'s constant array ``kc`` and the indices of the counters it adds to.

Each ``KC_*`` is written out (no generated names), so grep and an IDE find its uses; they
are the positions of :data:`KC_NAMES` in order (``tests/emulator/learning/test_le_kernel_layout.py`` checks
it).  numba reads these module-level integers as compile-time constants.
"""
from __future__ import annotations

from .constants import NEURON_COUNTERS
from .lava_replica import SYNAPSE_COUNTERS

#: The fields of ``kc`` in order: field ``"DM"`` sits at index ``KC_DM``, and so on.
KC_NAMES = (
    # design integers
    "DM", "DS", "VK_MANT", "VK_SH", "PHIDT_MANT", "PHIDT_SH", "GINV_MANT", "GINV_SH",
    "K_MANT", "K_SH", "EK_FRAC", "VQ_MANT", "VQ_SH", "KX", "WEXP", "WORD_BITS",
    # neuron formats (NeuronSpec)
    "F_A", "F_D", "F_V", "V_BITS", "F_S", "SIG_SPAN", "SIG_NODE_FRAC", "SIG_INTERP", "F_E",
    "F_H", "H_TAU_SHIFT", "GAMMA_EVERY", "F_G", "G_BITS", "F_P", "Y_EVENT", "Y_OFFSET",
    # engine (EngineSpec) and the rule layout
    "TRACE_BITS", "SYN_BITS", "ACC_BITS", "ACC_SHIFT", "T_EPOCH", "W_PER_SYN", "T_PER_SYN",
    "ALL_Y0", "U_K", "N_DW", "Y2_CONST",
    # third-factor coding and rule
    "GRADED", "LEVELS", "UNIT_RATIO", "Y_UNIT", "USE_GAMMA", "CARRY_BITS")
N_KC = len(KC_NAMES)

# ---- design integers (mantissas, right shifts, fractions of :class:`.rule_design.Design`)
KC_DM = 0               #: decay of the membrane filter a_m, U0.F_D
KC_DS = 1               #: decay of the synaptic filter a_s, U0.F_D
KC_VK_MANT = 2          #: filters -> V (S.F_V mV): mantissa
KC_VK_SH = 3            #: filters -> V: right shift
KC_PHIDT_MANT = 4       #: phi_max dt: mantissa
KC_PHIDT_SH = 5         #: phi_max dt: right shift
KC_GINV_MANT = 6        #: 1 / (phi_max beta^2): mantissa
KC_GINV_SH = 7          #: 1 / (phi_max beta^2): right shift
KC_K_MANT = 8           #: eta / E_q, the scale of |e|: mantissa
KC_K_SH = 9             #: eta / E_q: right shift
KC_EK_FRAC = 10         #: fraction bits of |e| eta / E_q
KC_VQ_MANT = 11         #: 1 / v_lsb (V -> Vq): mantissa
KC_VQ_SH = 12           #: 1 / v_lsb: right shift
KC_KX = 13              #: x-trace impulse per spike, trace units
KC_WEXP = 14            #: weight exponent of Dense (a_out = sum w << WEXP)
KC_WORD_BITS = 15       #: neuron word width
# ---- neuron formats (:class:`.neuron_constants` NeuronSpec)
KC_F_A = 16             #: fraction bits of a_m, a_s
KC_F_D = 17             #: fraction bits of the decays
KC_F_V = 18             #: fraction bits of V (mV)
KC_V_BITS = 19          #: width of V
KC_F_S = 20             #: fraction bits of sigma
KC_SIG_SPAN = 21        #: the sigmoid table covers [-SIG_SPAN, SIG_SPAN) mV
KC_SIG_NODE_FRAC = 22   #: table nodes every 2**-SIG_NODE_FRAC mV
KC_SIG_INTERP = 23      #: 1: interpolate between table nodes
KC_F_E = 24             #: fraction bits of the error e
KC_F_H = 25             #: fraction bits of hbar
KC_H_TAU_SHIFT = 26     #: hbar's averaging shift
KC_GAMMA_EVERY = 27     #: steps between gamma_s updates
KC_F_G = 28             #: fraction bits of gamma_s
KC_G_BITS = 29          #: width of gamma_s (unsigned)
KC_F_P = 30             #: fraction bits of the event probability
KC_Y_EVENT = 31         #: y1 / y2 value of an event
KC_Y_OFFSET = 32        #: offset of the y3 code
# ---- engine (EngineSpec) and the rule layout
KC_TRACE_BITS = 33      #: trace width
KC_SYN_BITS = 34        #: synaptic variable width
KC_ACC_BITS = 35        #: accumulator width
KC_ACC_SHIFT = 36       #: accumulator fraction bits (w << ACC_SHIFT; rounded away per epoch)
KC_T_EPOCH = 37         #: steps per learning epoch
KC_W_PER_SYN = 38       #: 1: weight rounding draws a word per synapse (0: Lava's shared r_w)
KC_T_PER_SYN = 39       #: 1: trace rounding draws a word per synapse (0: shared r_x, r_y)
KC_ALL_Y0 = 40          #: 1: both signs' events as y0-dependent products
KC_U_K = 41             #: the products' u<k> (u ticks every 2**k epochs)
KC_N_DW = 42            #: how many products of ``ptab`` are dw products (the rest: dd)
KC_Y2_CONST = 43        #: y2 when it is a constant
# ---- third-factor coding and rule
KC_GRADED = 44          #: 1: graded levels (0: events)
KC_LEVELS = 45          #: graded levels 0 .. LEVELS
KC_UNIT_RATIO = 46      #: a positive level's unit / a negative level's
KC_Y_UNIT = 47          #: y1 per level
KC_USE_GAMMA = 48       #: 1: approximate natural rule (gamma_s); 0: Euclidean
KC_CARRY_BITS = 49      #: width of the carried excess (signed)

#: Indices of the neuron's counters (``LEKernelState.counts``, :data:`NEURON_COUNTERS`).
C_POTENTIAL = NEURON_COUNTERS.index("potential_saturation")
C_POST_CARRY = NEURON_COUNTERS.index("post_carry")
C_VQ = NEURON_COUNTERS.index("vq_saturation")
C_GAMMA = NEURON_COUNTERS.index("gamma_saturation")
C_CARRY = NEURON_COUNTERS.index("carry_saturation")
C_WORD = NEURON_COUNTERS.index("word_saturation")
C_INPUT = NEURON_COUNTERS.index("input_saturation")
#: Indices of the synapses' counters (``LEKernelState.scounts``, ``SYNAPSE_COUNTERS``).
S_TAG = SYNAPSE_COUNTERS.index("tag_saturation")
S_WEIGHT = SYNAPSE_COUNTERS.index("weight_saturation")
S_ACC = SYNAPSE_COUNTERS.index("acc_saturation")
S_TRACE = SYNAPSE_COUNTERS.index("trace_saturation")

#: Variable codes of a product's factors (``ptab`` columns 5..7): the first five are traces
#: (x1, x2 per synapse; y1, y2, y3 per neuron), then the synaptic variables.
VAR_CODE = {"x1": 0, "x2": 1, "y1": 2, "y2": 3, "y3": 4, "w": 5, "t": 6, "d": 7}
