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
F_H = 25         #: running mean of sigma (1-sigma)^2, U0.25 (its update fits a 24-bit word)
H_TAU_SHIFT = 12  #: EMA time constant 2**12 steps (2.048 s)
GAMMA_EVERY = 64  #: gamma_s = 1 / (phi_max beta^2 hbar) refreshed every 64 steps
F_G = 16         #: gamma_s U8.16 (saturates at 256)
G_BITS = 24
F_P = 14         #: post amounts, levels, event probability: units 2**-14 (+-512 units in 24 bits)
MANT_BITS = 16   #: mantissa width of the neuron's constants
STREAM_EVENT = 32  #: counter-RNG stream of the event draws
STREAM_VQ = 33     #: counter-RNG stream of the stochastic rounding of Vq
# streams of the emulator-only per-synapse roundings (EngineSpec.*_rounding = 'per_synapse')
STREAM_W_ROUND = 34  #: weight (accumulator -> weight grid), index trial << 32 | m N + i
STREAM_D_ROUND = 35  #: hidden-bits tag d, same index
STREAM_X_ROUND = 36  #: x-trace decay, index trial << 32 | j N + i (j = 0: x1, 1: x2)
STREAM_Y_ROUND = 37  #: y-trace decay, index trial << 32 | j M + m (j = 0, 1, 2: y1..y3)
D_OFFSET = 128       #: hidden-bits tag d = D + residual, the events coding's D (tag_2 in [0, 255])
G_CAP = 4.0        #: gamma_s (1 - sigma) |e| at which the event probability reaches 1
CARRY_BITS = 24    #: signed width of the neuron's post-factor carry (units 2**-prob_frac)
#: Loihi 2's neuron word: every state variable and intermediate of the learning neuron is a
#: signed (or, for magnitudes, unsigned) word of this many bits; products of two words are
#: double words shifted straight back into a word (docs/learning_neuron_program.md)
WORD_BITS = 24
#: Dense's a_out as Lava declares it (``proc/dense/models.py``: precision 16, signed); the
#: neuron saturates its input to this width (counted: ``input_saturation``)
A_OUT_BITS = 16

# neuron counters (in this order in NeuronState.counts).  ``post_carry``: steps whose post
# factor exceeded what one step can send (event probability 1, or the top level) and whose
# excess was carried into the next steps; ``carry_saturation``: the carry register clipped.
# ``word_saturation``: an intermediate clipped to the neuron word (:data:`WORD_BITS`);
# ``input_saturation``: the dendritic input clipped to Dense's 16-bit a_out.
NEURON_COUNTERS = ("potential_saturation", "post_carry", "vq_saturation",
                   "gamma_saturation", "carry_saturation", "word_saturation",
                   "input_saturation")

#: Third-factor encodings (``MappingSpec.encoding``) and rules the engine can learn.
ENCODINGS = ("events", "graded")
RULES = ("approx", "euclid")


# ------------------------------------------------------------------ as config records
import dataclasses as _dc  # noqa: E402


@_dc.dataclass(frozen=True)
class EngineSpec:
    """What Lava 0.10's ``LearningDense`` bit-approximate model computes (config section
    ``engine`` of a ``kind: learning_engine`` config).  The defaults are Lava's; other
    values model a different engine (the emulator honours them; Lava itself only runs the
    defaults).

    Attributes
    ----------
    trace_bits : width of the traces x1, x2, y1, y2, y3 and of the third factors (W_TRACE)
    synaptic_bits : width of w, d, t incl. sign (W_WEIGHTS_S = 9)
    scale_mant_bits : mantissa width of a product's scale (W_S_MANT)
    accumulator_bits : magnitude bits of the update accumulator (W_ACCUMULATOR_U)
    acc_shift : accumulator = w << acc_shift (bits kept below the weight LSB during an epoch)
    y_tau : decay time constant of the post traces (Loihi3FLearningRule uses uint16 max)
    t_epoch : time steps per learning epoch
    weight_rounding : 'shared' (one random number per epoch for all synapses, Lava's
        ConnVarRandom) or 'per_synapse' (an idealization: an independent counter-RNG word
        per synapse and epoch)
    trace_rounding : 'shared' (one random per step for all traces, Lava's TraceRandom) or
        'per_synapse' (idealization)
    sr_seed : ConnVarRandom's fixed seed
    """

    trace_bits: int = W_TRACE
    synaptic_bits: int = W_SYN
    scale_mant_bits: int = W_S_MANT
    accumulator_bits: int = W_ACC_U
    acc_shift: int = ACC_SHIFT
    y_tau: int = Y_TAU
    t_epoch: int = 1
    weight_rounding: str = "shared"
    trace_rounding: str = "shared"
    sr_seed: int = SR_SEED


@_dc.dataclass(frozen=True)
class NeuronSpec:
    """The learning neuron's integer formats (config section ``neuron``); natgrad's own
    choices, derived in ``docs/learning_engine.md``.  Defaults are the module constants."""

    filter_frac: int = F_A
    decay_frac: int = F_D
    v_frac: int = F_V
    v_bits: int = V_BITS
    sigma_frac: int = F_S
    sigma_span_mv: int = SIG_SPAN
    sigma_node_frac: int = SIG_NODE_FRAC
    sigma_interpolate: bool = True
    error_frac: int = F_E
    hbar_frac: int = F_H
    hbar_tau_shift: int = H_TAU_SHIFT
    gamma_every: int = GAMMA_EVERY
    gamma_frac: int = F_G
    gamma_bits: int = G_BITS
    prob_frac: int = F_P
    mant_bits: int = MANT_BITS
    g_cap: float = G_CAP
    carry_bits: int = CARRY_BITS
    word_bits: int = WORD_BITS


def neuron_word_problems(nf: NeuronSpec, levels: int = 3, unit_ratio: int = 3) -> list[str]:
    """Why the formats of ``nf`` do not fit its ``word_bits``-bit words (empty: they fit).

    Each entry names the field and its allowed range.  Checked where a value is *declared*
    (a format that cannot hold its variable's range); what a run pushes beyond a word at
    run time is saturated and counted (``word_saturation``).
    """
    w = nf.word_bits
    out = []

    def need(field, value, hi, why):
        if value > hi:
            out.append(f"neuron.{field}: {value} does not fit the {w}-bit neuron word "
                       f"(allowed <= {hi}: {why})")

    need("v_bits", nf.v_bits, w, "V is one signed word")
    need("gamma_bits", nf.gamma_bits, w, "gamma_s is one unsigned word")
    need("carry_bits", nf.carry_bits, w, "the carry is one signed word")
    need("sigma_frac", nf.sigma_frac, w - 2, "1 - sigma reaches 1.0")
    need("error_frac", nf.error_frac, w - 2, "the error reaches +-1")
    need("hbar_frac", nf.hbar_frac, w + 1, "the running mean's update (h - hbar) reaches "
         "+-4/27 and must be one signed word")
    need("filter_frac", nf.filter_frac, w - A_OUT_BITS, f"the {A_OUT_BITS}-bit input shifted "
         "by filter_frac must be one word")
    need("decay_frac", nf.decay_frac, w - 1, "the decays are unsigned words below 1.0")
    need("mant_bits", nf.mant_bits, w - 1, "the constants are one word")
    top = levels * unit_ratio
    need("prob_frac", nf.prob_frac, w - 2 - int(top).bit_length(),
         f"the top level's amount ({top} units) must fit one signed word with a spare bit")
    return out


@_dc.dataclass(frozen=True)
class MappingSpec:
    """How the rule is discretized onto the engine (config section ``mapping``); ``'auto'``
    fields are chosen per task by :func:`emulator.learning.design_for_task`.

    Attributes
    ----------
    w_frac : weight LSB 2**-w_frac (the LearningDense weight exponent), or 'auto'
    k_x : trace impulse per spike, or 'auto' (the largest impulse <= the traces' headroom
        for which the tags land on exact multiples of the tag quantum)
    c_ev : accumulator units of one event's constant term ('events'), of one negative
        level's ('graded'), or 'auto'
    v_range_mv : |V| range that y3 = 64 + Vq must cover (resolved: the range realized)
    tag_step : tag quantum (16 'events' / 32 'graded' make the homosynaptic products
        exact integers) or 1, or 'auto'
    hidden_bits : low-order update bits kept below the weight LSB in a synaptic tag and
        flushed into the weight periodically (0: none, as the bare engine), or 'auto' (the
        most whose tag_2 holds the largest step of either sign)
    flush_log2 : with hidden_bits > 0, how the tag reaches the weight.  None (default):
        a carry every epoch: w gets the whole LSBs of d exactly and d keeps the rest
        (error diffusion; needs h in 1..6; the neuron sends a constant y2 = 2**j whose
        product's floor shift does the division; w gets ceil((d - 128) / 2**h)).  An int
        k in 0..9: the whole tag is flushed every 2**k epochs (Lava's ``u<k>`` dependency; every event then rides on y0)
    encoding : how the post factor P travels to the synapses: 'events' (one event of size
        E_q with probability |P| / E_q; positive on the bap, negative as y1 = 64),
        'graded' (a level L in 0..levels per epoch, y1 = y_unit L, the sign on the bap;
        negative levels are E_n, positive ones unit_ratio E_n), or 'auto' (graded where
        the engine can represent it)
    levels : graded: the top level (y_unit * levels must fit the 7-bit trace)
    unit_ratio : graded: E_p / E_n (the y0 products carry unit_ratio + 1 times the u0
        ones, which must be m * 2**j)
    y_unit : graded: y1 per level, or 'auto' (the largest power of two with
        y_unit * levels < 2**trace_bits)
    rule : the rule mapped onto the engine: 'approx' (the approximate natural gradient)
        or 'euclid' (the Euclidean rule, dw = eta (1 - sigma) e x_i)
    tag_offset : with hidden bits, tag_2 = tag_offset + residual (tag_2 is unsigned, 0..255):
        the room left below and above for one epoch's update; 'auto': 128 (events, both
        signs alike) or 2**(h + 1) (graded: one LSB below the residual for the negative
        steps, the rest for the bap's steps, unit_ratio times larger)
    """

    w_frac: int | str = "auto"
    k_x: int | str = 16
    c_ev: int | str = "auto"
    v_range_mv: float | str = 30.0
    tag_step: int | str = "auto"
    hidden_bits: int | str = 0
    flush_log2: int | None = None
    encoding: str = "events"
    levels: int = 3
    unit_ratio: int = 3
    y_unit: int | str = "auto"
    rule: str = "approx"
    tag_offset: int | str = "auto"


DEFAULT_ENGINE = EngineSpec()
DEFAULT_NEURON = NeuronSpec()
DEFAULT_MAPPING = MappingSpec()
