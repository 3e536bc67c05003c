"""Widths of Lava's learning engine and the fixed-point formats of the learning neuron.

Engine widths (traces, synaptic variables, scale mantissa, accumulator) and the random
seed of the weight rounding are Lava 0.10's, from ``lava/magma/core/learning/constants.py``
(``W_TRACE``, ``W_WEIGHTS_S``, ``W_S_MANT``, ``W_ACCUMULATOR_U``) and
``lava/magma/core/learning/random.py`` (``ConnVarRandom``'s fixed seed).  The neuron's
formats (``F_*``) are natgrad's own choices; ``docs/learning_engine.md`` derives them.
"""
from __future__ import annotations

# ------------------------------------------------------------------ learning-engine widths
W_TRACE = 7                   #: traces x1, x2, y1, y2, y3 (unsigned 0..127)
W_SYN = 9                     #: w, d, t (8 bits + sign)
W_S_MANT = 4                  #: mantissa of a product's scale
W_ACC_U = 15                  #: accumulator magnitude bits (16 bits signed)
ACC_SHIFT = 7                 #: accumulator = w << 7
WIDTH = {"x1": W_TRACE, "x2": W_TRACE, "y1": W_TRACE, "y2": W_TRACE, "y3": W_TRACE,
         "w": W_SYN, "t": W_SYN, "d": W_SYN}
ACC_LO, ACC_HI = -(2 ** W_ACC_U) - 1, 2 ** W_ACC_U - 1      # Lava's clip bounds, verbatim
W_LO, W_HI = -256, 255        #: weights after learning (clip_weights, 8 bits, MIXED)
TRACE_MAX = 2 ** W_TRACE - 1
Y_TAU = 65535                 #: Loihi3FLearningRule's y taus (np.iinfo(np.uint16).max)
Y_EVENT = 64                  #: value of y1 on a negative event
Y_OFFSET = 64                 #: y3 = 64 + Vq
SR_SEED = 2                   #: ConnVarRandom's fixed seed

# ------------------------------------------------------------------ neuron formats
F_A = 8          #: fractional bits of the neuron's current filters (unit: weight LSB * spike)
F_D = 16         #: decay factors U0.16
F_V = 8          #: V in mV, S16.8 (saturated to +-128 mV)
V_BITS = 16
F_S = 16         #: sigma, 1 - sigma, sigma (1-sigma)^2: U0.16
SIG_SPAN = 64    #: sigma table over V in [-64, 64) mV ...
SIG_NODE_FRAC = 2  #: ... with nodes every 2**-2 mV (513 nodes), linear interpolation
F_E = 16         #: error e = y - phi_max dt sigma, S.16
F_H = 28         #: running mean of sigma (1-sigma)^2, U0.28
H_TAU_SHIFT = 12  #: EMA time constant 2**12 steps (2.048 s)
GAMMA_EVERY = 64  #: gamma_s = 1 / (phi_max beta^2 hbar) refreshed every 64 steps
F_G = 16         #: gamma_s U8.16 (saturates at 256)
G_BITS = 24
F_P = 24         #: event probability U0.24
MANT_BITS = 16   #: mantissa width of the neuron's constants
STREAM_EVENT = 32  #: counter-RNG stream of the event draws
STREAM_VQ = 33     #: counter-RNG stream of the stochastic rounding of Vq
G_CAP = 4.0        #: gamma_s (1 - sigma) |e| at which the event probability reaches 1

# neuron counters (in this order in NeuronState.counts)
NEURON_COUNTERS = ("potential_saturation", "event_saturation", "vq_saturation",
                   "gamma_saturation")
