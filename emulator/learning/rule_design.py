"""The rule and its discretization onto the learning engine (Path 2's :class:`Design`).

:class:`Product` is one term of the sum-of-products rule, :func:`rule_string` renders the
``dw`` string Lava parses, and :func:`design` / :func:`design_for_task` derive every constant
of Path 2: the products' mantissas and exponents, the static tags ``t = round(T / r_i)``,
the trace impulse, the event size and the learning neuron's integer constants.
Lava's counterparts: ``lava/magma/core/learning/product.py`` (a product as data) and
``lava/magma/core/learning/learning_rule.py`` (the string, its parsing into products,
the dependencies ``x0 / y0 / uK``).  ``docs/learning_engine.md`` derives every constant.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from emulator.discretize import const_mantissa
from emulator.params import NeuronParams
from emulator.task import Task

from .constants import (D_OFFSET, DEFAULT_ENGINE, DEFAULT_MAPPING, DEFAULT_NEURON, ENCODINGS,
                        RULES, EngineSpec, MappingSpec, NeuronSpec, neuron_word_problems)


def var_width(engine: EngineSpec, var: str) -> int:
    """Width (bits) a factor ``var`` is clipped to: traces ``trace_bits``, w/d/t
    ``synaptic_bits`` (Lava's ``FACTOR_TO_WIDTH_DICT``)."""
    if var in ("x1", "x2", "y1", "y2", "y3"):
        return engine.trace_bits
    if var in ("w", "t", "d"):
        return engine.synaptic_bits
    raise ValueError(f"unknown factor {var!r}")


def u_exponent(dep: str) -> int | None:
    """k of a ``u<k>`` dependency, None for x0 / y0."""
    return int(dep[1:]) if dep.startswith("u") else None


# ============================================================================ the rule
@dataclasses.dataclass(frozen=True)
class Product:
    """One product of the sum-of-products rule: ``mant * 2**exp * dep * factors``.

    ``factors`` are ``(variable, const)`` pairs meaning ``(variable + const)``.  ``mant`` is
    in [-7, 7] and is what Lava's parser keeps (it halves even mantissas above 7);
    ``exp`` in [-7, 8] is the literal exponent (Lava stores ``exp + 7``).
    """

    mant: int
    exp: int
    dep: str
    factors: tuple
    engine: EngineSpec = dataclasses.field(default=DEFAULT_ENGINE, repr=False)

    def __post_init__(self):
        if not -7 <= self.mant <= 7 or self.mant == 0:
            raise ValueError(f"mantissa {self.mant} outside [-7, 7] \\ {{0}}")
        if not -7 <= self.exp <= 8:
            raise ValueError(f"exponent {self.exp} outside [-7, 8]")
        if self.dep not in ("x0", "y0") and not (self.dep[:1] == "u" and self.dep[1:].isdigit()):
            raise ValueError(f"dependency {self.dep!r}")

    @property
    def shift(self) -> int:
        """Right shift applied by the fixed-point applier: max(0, sum(widths) + 4 - 15)."""
        e = self.engine
        return max(0, sum(var_width(e, v) for v, _ in self.factors) + e.scale_mant_bits
                   - e.accumulator_bits)

    @property
    def coef(self) -> float:
        """Accumulator units per unit of the factor product (before the floor)."""
        return self.mant * 2.0 ** (self.exp + self.engine.acc_shift - self.shift)

    def render(self) -> str:
        parts = [f"{abs(self.mant)}*2^{self.exp}", self.dep]
        for v, c in self.factors:
            parts.append(v if not c else f"({v}{'+' if c > 0 else '-'}{abs(c)})")
        return ("- " if self.mant < 0 else "+ ") + "*".join(parts)


def rule_string(products) -> str:
    """The Lava ``dw`` (or ``dd``) string of a product list ('' for none)."""
    if not products:
        return ""
    s = " ".join(p.render() for p in products)
    return s[2:] if s.startswith("+ ") else "-" + s[2:]


def product_bound(p: Product) -> int:
    """Largest |value| of the product before its right shift (must stay below 2**31)."""
    b = abs(p.mant)
    for v, _ in p.factors:
        b *= 2 ** var_width(p.engine, v)
    return b


def _scale(coef: float, shift: int, what: str, acc_shift: int) -> tuple[int, int]:
    """(mant, exp) with ``mant * 2**(exp + acc_shift - shift) == coef`` exactly, largest
    mantissa."""
    target = coef * 2.0 ** (shift - acc_shift)          # = mant * 2**exp
    for m in (7, 6, 5, 4, 3, 2, 1):
        e = math.log2(target / m)
        if abs(e - round(e)) < 1e-12 and -7 <= round(e) <= 8:
            return m, int(round(e))
    raise ValueError(f"{what}: coefficient {coef} is not m * 2**e on the learning engine")


def _representable_at_least(x: float) -> float:
    """Smallest m * 2**j (m in 1..7, j >= 0) that is >= x."""
    best = math.inf
    for m in range(1, 8):
        j = max(0, math.ceil(math.log2(max(x, 1e-300) / m)))
        while m * 2.0 ** j < x:
            j += 1
        best = min(best, m * 2.0 ** j)
    return best


# ============================================================================ design
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

    @property
    def hidden_bits(self) -> int:
        return int(self.mapping.hidden_bits)

    @property
    def encoding(self) -> str:
        """'events' or 'graded' (how the post factor reaches the synapses)."""
        return self.mapping.encoding

    @property
    def levels(self) -> int:
        """Top level of one step (1 for events)."""
        return int(self.mapping.levels)

    @property
    def unit_ratio(self) -> int:
        """E_p / E_n (1 for events)."""
        return int(self.mapping.unit_ratio)

    @property
    def y_unit(self) -> int:
        """y1 per level (graded) or of one event (64)."""
        return int(self.mapping.y_unit)

    @property
    def d_offset(self) -> int:
        """tag_2's offset: tag_2 = d_offset + residual (hidden bits)."""
        return int(self.mapping.tag_offset)

    @property
    def mapped_rule(self) -> str:
        """'approx' (the approximate natural gradient) or 'euclid'."""
        return self.mapping.rule

    @property
    def t_epoch(self) -> int:
        return int(self.engine.t_epoch)

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


def default_w_frac(w_scale: float) -> int:
    """Weight LSB 2**-w_frac with |w| <= w_scale within 128 LSB (2x headroom to 255)."""
    return int(math.floor(math.log2(128.0 / w_scale)))


def auto_c_ev(params: NeuronParams, eta: float, w_frac: int,
              g_cap: float = DEFAULT_NEURON.g_cap, hidden_bits: int = 0) -> int:
    """Smallest c_ev = 64 * 2**j (j >= -hidden_bits) whose event size E_q >= eta * g_cap.

    An event then carries up to ``g_cap`` times eta in units of gamma_s (1 - sigma) |e|: the
    event probability eta gamma_s (1 - sigma) |e| / E_q reaches 1 only where
    gamma_s (1 - sigma) |e| > g_cap (the excess is then carried to the next steps).  Smaller
    events mean less event noise; below one weight LSB (64) they need the hidden bits that
    keep their sub-LSB part.
    """
    need = 128.0 * params.c_eps * params.c_u * eta * g_cap * 2.0 ** w_frac
    j = max(-int(hidden_bits), math.ceil(math.log2(need / 64.0) - 1e-12))
    return int(round(64 * 2.0 ** j))


def auto_level_unit(params: NeuronParams, eta: float, w_frac: int, g_cap: float,
                    hidden_bits: int, levels: int, unit_ratio: int, y_unit: int) -> int:
    """Graded coding: the smallest c_ev = 2**j (accumulator units of one negative level's
    constant term) whose top positive level carries ``g_cap`` times eta,
    ``levels * unit_ratio * E_n >= eta * g_cap`` with ``E_n = c_ev / (128 c_eps c_u 2**w_frac)``,
    and whose constant product ``u0*y1`` is representable (``c_ev 2**h >= y_unit``)."""
    need = 128.0 * params.c_eps * params.c_u * eta * g_cap * 2.0 ** w_frac / (levels * unit_ratio)
    lo = math.log2(y_unit) - hidden_bits
    j = max(math.ceil(lo - 1e-12), math.ceil(math.log2(need) - 1e-12))
    return int(2 ** j) if j >= 0 else 2.0 ** j


def trace_headroom_kx(params: NeuronParams, rates, trace_bits: int, n_sd: float = 8.0) -> int:
    """The largest trace impulse K_x whose slow trace stays within ``2**trace_bits - 1`` up to
    ``mean + n_sd sd`` of the fastest afferent's count trace ``a_m`` (Poisson inputs as
    Bernoulli bins: mean r dt / (1 - d_m), variance r dt (1 - r dt) / (1 - d_m^2))."""
    r = float(np.max(rates)) if np.size(rates) else 0.0
    p = min(1.0, r * params.dt)
    dm = params.decay_m
    peak = p / (1 - dm) + n_sd * math.sqrt(max(p * (1 - p), 0.0) / (1 - dm * dm))
    top = 2 ** trace_bits - 1
    return int(max(1, min(top, math.floor(top / max(peak, 1.0)))))


_MAPPING_KW = ("c_ev", "k_x", "v_range_mv", "tag_step", "hidden_bits", "flush_log2", "encoding",
               "levels", "unit_ratio", "y_unit", "rule", "tag_offset")
#: smallest trace impulse the 'auto' K_x search tries
K_X_MIN = 8


#: how far above its mean the USP difference of an afferent may reach before tag_2's room
#: for one step runs out (the step bounds behind hidden_bits / tag_offset 'auto')
USP_N_SD = 6.0


def usp_diff_bound(params: NeuronParams, rate: float, n_sd: float = USP_N_SD) -> float:
    """mean + n_sd sd of an afferent's trace difference a_m - a_s (spike counts; x_i =
    usp_scale (a_m - a_s)) for Bernoulli(rate dt) spikes: the sums over the kernel
    d_m^k - d_s^k of its mean and variance."""
    q = min(1.0, max(rate, 0.0) * params.dt)
    dm, ds = params.decay_m, params.decay_s
    mean = q * (1 / (1 - dm) - 1 / (1 - ds))
    var = q * (1 - q) * (1 / (1 - dm * dm) + 1 / (1 - ds * ds) - 2 / (1 - dm * ds))
    return mean + n_sd * math.sqrt(max(var, 0.0))


def _design_auto_hidden_bits(params, rates, eta, mp, engine, neuron, max_tag_err, choices):
    """``hidden_bits: auto``: the most hidden bits (6 .. 1, carried every epoch) whose tag_2
    holds the largest step of either sign (``Design.info['tag_budget']``), else none.  With
    the graded coding and an 'auto' level, the level goes with them: for each h the largest
    negative level, from one tag_2 unit down to the smallest the engine represents
    (``y_unit`` accumulator units of tag_2), whose steps fit."""
    if mp.flush_log2 is not None:
        raise ValueError("mapping.hidden_bits 'auto' needs the carry (flush_log2: null)")
    graded_auto = mp.encoding in ("graded", "auto") and mp.c_ev == "auto"
    y_unit = mp.y_unit
    if y_unit == "auto":
        y_unit = 2 ** int(math.floor(math.log2((2 ** engine.trace_bits - 1)
                                               / max(int(mp.levels), 1))))
    for h in range(6, -1, -1):
        if graded_auto and h:
            units = []
            c = 2.0 ** (engine.acc_shift - h)                    # one tag_2 unit
            while c >= int(y_unit) * 2.0 ** -h - 1e-12:
                units.append(c)
                c /= 2
        else:
            units = [mp.c_ev]
        for c_ev in units:
            ch = dict(choices or {})
            d = design(params, rates, eta, mapping=dataclasses.replace(mp, hidden_bits=h,
                                                                      c_ev=c_ev),
                       engine=engine, neuron=neuron, max_tag_err=max_tag_err, choices=ch)
            tb = d.info["tag_budget"]
            if h and not tb["fits"]:
                continue
            why = (f"the most that hold one step of either sign in tag_2: residual {2 ** h} + "
                   f"{tb['down_units']:.0f} units below + {tb['up_units']:.0f} above <= "
                   f"{2 ** (engine.synaptic_bits - 1) - 1} (units of 2**-{h} LSB; the top "
                   f"levels reached, {tb['levels_pos']} / {tb['levels_neg']}, with USPs at "
                   f"mean + {USP_N_SD:g} sd)") if h else (
                "no hidden bits: even one would not hold the largest step in tag_2")
            d.choices["hidden_bits"] = (h, why)
            if graded_auto and h:
                d.choices["c_ev"] = (d.c_ev, (
                    f"the largest negative level, from one tag_2 unit (2**{engine.acc_shift - h}"
                    f" accumulator units) down, whose steps fit tag_2 with {h} hidden bits: "
                    f"E_n = {d.e_q / eta:.3g} eta, the top step {d.levels * d.unit_ratio * d.e_q / eta:.3g}"
                    " eta; what one step cannot send waits in the carry"))
            return d
    raise AssertionError("unreachable")


def _graded_order(pos, neg, ratio: int, euclid: bool) -> tuple:
    """The graded rule's products in the order Lava's applier should add them.

    ``pos`` are the bap's products (homosynaptic x1, x2 at the u0 products' size, then the
    constant and heterosynaptic ones), ``neg`` the u0 products.  Lava clips the 16-bit
    accumulator after every product, in the string's order, and each product on its own.
    A bap step needs (ratio + 1) t x (x1 - x2) against the u0 pair's t x (x1 - x2); one
    product that large exceeds the accumulator where the net update does not.  So the
    bap's homosynaptic term is ratio + 1 copies of the u0 size, ordered

        (-x2, +x1) * ratio, -x2, [u0: -x1], +x1, [u0: +x2]

    In units of one copy, a bap step's partial sums are k (x1 - x2), k x1 - (k+1) x2,
    (ratio - 1) x1 - (ratio + 1) x2, ratio x1 - (ratio + 1) x2 and the net ratio (x1 - x2):
    none above the net update (0 <= x2 <= x1), none below -(ratio + 1) x2.  Without a bap
    only the u0 pair runs: -x1, then x2 - x1, never above 0.  The accumulator starts at
    tag_2 << 7, whose room above is the scarce one (``Design.info['tag_budget']``).
    """
    x1p, x2p, rest_p = pos[0], pos[1], pos[2:]
    x1n, x2n, rest_n = neg[0], neg[1], neg[2:]
    homo = (x2p, x1p) * ratio + (x2p, x1n, x1p, x2n)
    if euclid:
        return homo
    return homo + (rest_p[0], rest_n[0], rest_p[1], rest_n[1])


def _scale_ok(coef: float, shift: int, acc_shift: int) -> bool:
    try:
        _scale(coef, shift, "", acc_shift)
        return True
    except ValueError:
        return False


def design(params: NeuronParams, rates, eta: float, w_frac: int | None = None, *,
           mapping: MappingSpec | None = None, engine: EngineSpec | None = None,
           neuron: NeuronSpec | None = None, max_tag_err: float = 0.005,
           choices: dict | None = None, **mapping_kw) -> Design:
    """Derive the rule strings, the tags and the neuron's integers.

    Parameters
    ----------
    params : NeuronParams (dt must divide tau_m and tau_s into whole steps)
    rates : (N,) input rates [Hz]
    eta : learning rate (code units) of the mapped rule (``mapping.rule``)
    w_frac : weight LSB 2**-w_frac; overrides ``mapping.w_frac`` (which must then not be
        'auto': only :func:`design_for_task` knows the weights)
    mapping : :class:`MappingSpec` (default :data:`DEFAULT_MAPPING`); its fields can also be
        given as keywords (``c_ev=``, ``k_x=``, ``encoding=`` ...), which override it.
        'auto' fields: ``encoding`` graded where the engine represents it; ``c_ev`` the
        smallest unit whose largest step carries ``neuron.g_cap`` times eta
        (:func:`auto_c_ev`, :func:`auto_level_unit`); ``k_x`` the largest impulse within the
        traces' headroom (:func:`trace_headroom_kx`) whose tags land within
        ``max_tag_err`` on multiples of the exact tag quantum; ``tag_step`` that quantum
        (16 events, 32 graded: the homosynaptic products are then exact integers) when the
        tags stay within ``max_tag_err`` of T / r_i, else 1.  ``hidden_bits`` h: the update
        is learnt into tag_2 (``dd``, units 2**-h LSB, offset 128) and carried (or flushed)
        into w.
    engine : :class:`EngineSpec` (default Lava's)
    neuron : :class:`NeuronSpec` (default natgrad's formats)
    choices : filled in by :func:`design_for_task` (why each auto value was chosen)
    """
    rates = np.asarray(rates, dtype=np.float64)
    unknown = set(mapping_kw) - set(_MAPPING_KW)
    if unknown:
        raise TypeError(f"design() got unexpected keyword(s) {sorted(unknown)}")
    mp = dataclasses.replace(mapping or DEFAULT_MAPPING, **mapping_kw)
    if w_frac is not None:
        mp = dataclasses.replace(mp, w_frac=int(w_frac))
    if mp.w_frac == "auto":
        raise ValueError("design() needs w_frac (design_for_task picks it from the weights)")
    e = engine or DEFAULT_ENGINE
    nf = neuron or DEFAULT_NEURON
    choices = dict(choices or {})
    w_frac = int(mp.w_frac)
    if e.t_epoch < 1:
        raise ValueError(f"engine.t_epoch must be >= 1 (got {e.t_epoch})")
    if e.weight_rounding not in ("shared", "per_synapse"):
        raise ValueError(f"engine.weight_rounding {e.weight_rounding!r}")
    if e.trace_rounding not in ("shared", "per_synapse"):
        raise ValueError(f"engine.trace_rounding {e.trace_rounding!r}")
    if mp.rule not in RULES:
        raise ValueError(f"mapping.rule must be one of {', '.join(RULES)} (got {mp.rule!r})")
    if mp.hidden_bits == "auto":
        return _design_auto_hidden_bits(params, rates, eta, mp, e, nf, max_tag_err, choices)
    euclid = mp.rule == "euclid"
    h = int(mp.hidden_bits)
    if not 0 <= h <= e.acc_shift:
        raise ValueError(f"hidden_bits must lie in [0, {e.acc_shift}] (got {h}): the flush "
                         "2^-h (d - 128) must be exact in the accumulator")
    half = 2 ** (e.trace_bits - 1)
    y_event = y_offset = half
    acc_shift = e.acc_shift
    gain = 2.0 ** h                      # the update is learnt in units of 2**-h LSB

    def mk(mant, exp, dep, factors):
        return Product(mant, exp, dep, factors, e)

    # ------------------------------------------------------------------ encoding
    encoding = mp.encoding
    graded_ok = mp.flush_log2 is None or h == 0
    if encoding == "auto":
        encoding = "graded" if graded_ok else "events"
        choices.setdefault("encoding", (encoding, (
            "graded levels: several update sizes per step, the sign on the bap, exact "
            "homosynaptic floors") if graded_ok else (
            "events: the periodic flush (flush_log2) takes the u dependency the graded "
            "coding needs for its negative levels")))
    if encoding not in ENCODINGS:
        raise ValueError(f"mapping.encoding must be one of {', '.join(ENCODINGS)} or 'auto' "
                         f"(got {encoding!r})")
    if encoding == "graded":
        if not graded_ok:
            raise ValueError("mapping.encoding 'graded' needs the carry (flush_log2: null): "
                             "the flush's u<k> would take the negative levels' u0")
        levels, ratio = int(mp.levels), int(mp.unit_ratio)
        if ratio not in (1, 3, 7):
            raise ValueError(f"mapping.unit_ratio must be 1, 3 or 7 (got {ratio}): the bap's "
                             "products carry unit_ratio + 1 times the u0 ones, a power of two")
        y_unit = mp.y_unit
        if y_unit == "auto":
            y_unit = 2 ** int(math.floor(math.log2((2 ** e.trace_bits - 1) / max(levels, 1))))
        y_unit = int(y_unit)
        if levels < 1 or y_unit < 1 or y_unit * levels > 2 ** e.trace_bits - 1:
            raise ValueError(f"mapping.y_unit * levels must lie in [1, {2 ** e.trace_bits - 1}] "
                             f"(y1 is a {e.trace_bits}-bit trace; got {y_unit} * {levels})")
        if y_unit & (y_unit - 1):
            raise ValueError(f"mapping.y_unit must be a power of two (got {y_unit})")
    else:
        levels, ratio, y_unit = 1, 1, y_event
    n_units = levels * ratio              # the largest step, in negative units

    p = params
    lsb = 2.0 ** -w_frac
    c, cu, cw, scale = p.c_eps, p.c_u, p.c_w, p.usp_scale
    if not euclid and (cw <= 0 or cu <= 0):
        raise ValueError("c_u and c_w must be > 0 for this mapping")
    x1_tau, x2_tau = p.tau_m / p.dt, p.tau_s / p.dt
    if abs(x1_tau - round(x1_tau)) > 1e-9 or abs(x2_tau - round(x2_tau)) > 1e-9:
        raise ValueError("tau_m / dt and tau_s / dt must be whole numbers of steps")
    x1_tau, x2_tau = int(round(x1_tau)), int(round(x2_tau))
    acc_per_w = 128.0 * 2.0 ** w_frac * 2.0 ** (acc_shift - 7)   # accumulator units per weight

    # The products of one negative unit (the u0 side) and of the bap (the y0 side), as the
    # factors of each term; 'y' marks where the level / event value y1 (or y2) enters.
    if encoding == "graded":
        neg_y, pos_y, pos_mult = ("y1", 0), ("y1", 0), float(ratio + 1)
        neg_div, pos_div = float(y_unit), float(y_unit)
    else:
        neg_y, pos_y, pos_mult = ("y1", 0), None, 1.0
        neg_div, pos_div = float(y_event), 1.0
    if h and mp.flush_log2 is not None:           # flush: every event rides on y0
        pos_y, pos_div = ("y2", 0), float(y_event)
    pos_dep, neg_dep = "y0", ("y0" if (h and mp.flush_log2 is not None) else "u0")

    def fac(base, y):
        return tuple(base) + ((y,) if y is not None else ())

    def shift_of(dep, factors):
        return mk(1, 0, dep, factors).shift

    # ------------------------------------------------------------------ the unit (c_ev)
    k_x_cap = trace_headroom_kx(p, rates, e.trace_bits)
    c_ev = mp.c_ev
    if euclid:
        # c_ev = accumulator units of one unit's update per trace count (x1 - x2 = 1)
        k_for_unit = k_x_cap if mp.k_x == "auto" else int(mp.k_x)
        mins = [2.0 ** (acc_shift - 7 - shift_of(neg_dep, fac((("x1", 0),), neg_y))) * neg_div / gain,
                2.0 ** (acc_shift - 7 - shift_of(pos_dep, fac((("x1", 0),), pos_y))) * pos_div
                / (gain * pos_mult)]
        if c_ev == "auto":
            need = eta * scale * acc_per_w / (k_for_unit * n_units)   # n_units E >= eta
            c_ev = 2.0 ** math.ceil(math.log2(max(need, max(mins))) - 1e-12)
            choices.setdefault("c_ev", (c_ev, (
                f"smallest 2**j accumulator units per trace count whose largest step "
                f"({n_units} units) carries eta (1 - sigma) |e| up to 1 (its largest value)")))
    elif c_ev == "auto":
        if encoding == "graded" and h:
            # one negative level's constant is one tag_2 unit: exact (no shared rounding of
            # the common-mode term), and the finest level the hidden bits afford; what one
            # step cannot carry waits in the neuron's carry (measured: carries are cheap,
            # a coarser level or fewer hidden bits are not)
            c_ev = max(2.0 ** (acc_shift - h), y_unit / gain)
            top = levels * ratio * c_ev / (acc_per_w * c * cu) / eta
            choices.setdefault("c_ev", (c_ev, (
                f"one negative level's constant = one tag_2 unit (2**{acc_shift - h} "
                f"accumulator units, E_n = {top / (levels * ratio):.3g} eta): exact, and the "
                f"top step carries {top:.3g} eta; the rest waits in the carry")))
        elif encoding == "graded":
            c_ev = auto_level_unit(p, eta, w_frac, nf.g_cap, h, levels, ratio, y_unit)
            choices.setdefault("c_ev", (c_ev, (
                f"smallest 2**j (>= y_unit = {y_unit}) with {levels} levels of {ratio} E_n >= "
                f"eta * g_cap (g_cap = {nf.g_cap}): the level saturates, and carries, only "
                f"where gamma_s (1 - sigma) |e| > {nf.g_cap}")))
        else:
            c_ev = auto_c_ev(p, eta, w_frac, nf.g_cap, h)
            choices.setdefault("c_ev", (c_ev, f"smallest 64 * 2**j (j >= -hidden_bits = "
                                              f"{-h}) with E_q >= eta * g_cap "
                                              f"(g_cap = {nf.g_cap}): events saturate, and "
                                              f"carry, only where gamma_s (1 - sigma) |e| > "
                                              f"{nf.g_cap}"))
    c_ev = float(c_ev)
    if euclid:
        k_x = k_for_unit
        if mp.k_x == "auto":
            choices.setdefault("k_x", (k_x, f"the largest impulse whose slow trace stays below "
                                            f"{2 ** e.trace_bits} up to mean + 8 sd of the "
                                            f"fastest afferent ({float(np.max(rates)):g} Hz)"))
        e_unit = c_ev * k_x / (scale * acc_per_w)          # E: update per unit per x_i
    else:
        e_unit = c_ev / (acc_per_w * c * cu)               # E_q / E_n

    # ------------------------------------------------------------------ homosynaptic: tags
    tmax = 2 ** (e.synaptic_bits - 1) - 1       # 255
    r_pos = rates[rates > 0]
    homo_neg = fac((("t", 0), ("x1", 0)), neg_y)
    homo_pos = fac((("t", 0), ("x1", 0)), pos_y)
    if euclid:
        homo_neg, homo_pos = fac((("x1", 0),), neg_y), fac((("x1", 0),), pos_y)
    # per homosynaptic product: (shift, multiplier of hc in the product's coefficient)
    homo_forms = [(shift_of(neg_dep, homo_neg), gain / neg_div),
                  (shift_of(pos_dep, homo_pos), gain * pos_mult / pos_div)]
    # with mantissa 4 the product (4 t x y) >> s is exact iff t y is a multiple of 2**s / 4
    q_exact = max(int(2 ** max(s - 2, 0) // math.gcd(int(2 ** max(s - 2, 0)), int(div)))
                  for (s, _), div in zip(homo_forms, (neg_div if neg_y else 1.0,
                                                      pos_div if pos_y else 1.0)))
    hc_min = max(2.0 ** (acc_shift - 7 - s) / mult for s, mult in homo_forms)

    def tags_for(k, hc, step):
        t_num = c_ev * scale / (k * cu)          # = t_i * hc * r_i (per unit)
        raw = np.where(rates > 0, t_num / hc / np.where(rates > 0, rates, 1.0), 0.0)
        return t_num, raw, (step * np.round(raw / step)).astype(np.int64)

    def hc_pow2(k):
        """The smallest power-of-two hc (>= hc_min) whose largest tag is <= 255."""
        t_num = c_ev * scale / (k * cu)
        need = t_num / (tmax * r_pos.min()) if r_pos.size else hc_min
        return 2.0 ** math.ceil(math.log2(max(need, hc_min)) - 1e-12)

    def rel_err(raw, tags):
        return float(np.max(np.abs(tags / np.where(raw > 0, raw, 1.0) - 1.0) * (raw > 0),
                            initial=0.0))

    if euclid:
        tags = np.zeros(rates.shape, np.int64)
        hc, big_t, raw, tag_step = c_ev, 0.0, np.zeros(rates.shape), 1
    else:
        tag_step = mp.tag_step
        k_cands = (range(k_x_cap, K_X_MIN - 1, -1) if mp.k_x == "auto" else [int(mp.k_x)])
        found = None
        if tag_step in ("auto", q_exact):
            for k in k_cands:
                # exact products need the mantissa 4 at an exponent >= -7: hc >= 4 hc_min
                hc = max(hc_pow2(k), 4 * hc_min)
                _, raw, tags = tags_for(k, hc, q_exact)
                ok = (bool(np.all((tags > 0) | (raw == 0))) and tags.max(initial=0) <= tmax
                      and rel_err(raw, tags) <= max_tag_err)
                if ok:
                    found = (k, hc, q_exact)
                    break
        if found is not None:
            k_x, hc, tag_step = found
            _, raw, tags = tags_for(k_x, hc, tag_step)
            if mp.tag_step == "auto":
                choices.setdefault("tag_step", (tag_step, (
                    f"multiples of {tag_step} stay within {rel_err(raw, tags):.4f} <= "
                    f"{max_tag_err} of T / r_i: homosynaptic products exact")))
            if mp.k_x == "auto":
                choices.setdefault("k_x", (k_x, (
                    f"the largest impulse <= {k_x_cap} (the slow trace's headroom up to mean + "
                    f"8 sd at {float(np.max(rates)):g} Hz) whose tags are multiples of "
                    f"{tag_step} within {max_tag_err}")))
        else:
            k_x = k_x_cap if mp.k_x == "auto" else int(mp.k_x)
            if mp.tag_step == "auto":
                tag_step = 1
                hc0 = hc_pow2(k_x)
                _, raw0, tags0 = tags_for(k_x, hc0, q_exact)
                choices.setdefault("tag_step", (1, (
                    f"no impulse in [{K_X_MIN}, {k_x_cap}] puts every tag within {max_tag_err} "
                    f"of a multiple of {q_exact} (K_x = {k_x}: off by "
                    f"{rel_err(raw0, tags0):.4f}): unquantized tags, the homosynaptic floors "
                    "lose up to one quantum")))
            if mp.k_x == "auto":
                choices.setdefault("k_x", (k_x, "the traces' headroom (no exact tag grid)"))
            tag_step = int(tag_step)
            t_num = c_ev * scale / (k_x * cu)
            need = t_num / (tmax * r_pos.min()) if r_pos.size else hc_min
            hc = hc_min * _representable_at_least(max(need, hc_min) / hc_min)
            _, raw, tags = tags_for(k_x, hc, tag_step)
        big_t = c_ev * scale / (k_x * cu) / hc            # T: t_i = T / r_i
        if tags.max(initial=0) > tmax:
            raise ValueError(f"tags exceed {tmax}: the afferents' rate ratio "
                             f"{float(r_pos.max() / r_pos.min()):.3g} is beyond what "
                             f"{e.synaptic_bits}-bit tags hold")
        lost = (rates > 0) & (tags == 0)
        if lost.any():
            # c_eps / r_i of the fastest afferents rounds to 0: their homosynaptic term
            # would vanish without a trace (a silent clip); the slowest already need tmax
            raise ValueError(
                f"the afferents' rate ratio {float(r_pos.max() / r_pos.min()):.3g}:1 "
                f"({r_pos.max():g} Hz / {r_pos.min():g} Hz) is beyond what the "
                f"{e.synaptic_bits}-bit static tags (tag_1 = c_eps / r_i, at most {tmax}) hold: "
                f"the tag of the {float(rates[lost].min()):g} Hz afferents rounds to 0 "
                f"(limit about {2 * tmax / max(int(tag_step), 1):.0f}:1 with tag quantum "
                f"{int(tag_step)})")

    # ------------------------------------------------------------------ heterosynaptic
    het_neg = fac((), neg_y) + (("y3", -y_offset), ("w", 0))
    het_pos = fac((), pos_y) + (("y3", -y_offset), ("w", 0))
    if encoding == "graded":            # y3 carries L V: no level factor in these products
        het_neg = het_pos = (("y3", -y_offset), ("w", 0))
    het_forms = [(shift_of(neg_dep, het_neg),
                  gain / (neg_div if encoding == "events" or neg_dep == "y0" else 1.0)),
                 (shift_of(pos_dep, het_pos),
                  gain * pos_mult / (pos_div if pos_y is not None and encoding == "events"
                                     else 1.0))]
    v_range_req = float(mp.v_range_mv)
    if euclid:
        coef_het, v_lsb, het_unit = 0.0, 1.0, 0.0
        v_real = v_range_req
    else:
        het_unit = c_ev * lsb * cw / (c * cu) * acc_per_w / (128.0 * 2.0 ** w_frac)  # acc/(mV W)
        het_min = max(2.0 ** (acc_shift - 7 - s) / mult for s, mult in het_forms)
        target = het_unit * levels * v_range_req / y_offset
        coef_het = het_min * _representable_at_least(max(target, het_min) / het_min)
        v_lsb = coef_het / het_unit
        v_real = y_offset * v_lsb / levels
        if target < het_min:
            # a real limit, not the m * 2**j grid's rounding: say so next to the choice
            choices["v_range_mv"] = (v_real, (
                f"asked for +-{v_range_req:g} mV; the finest heterosynaptic scale the engine "
                f"allows at this unit (m = 1, 2**-7) gives v_lsb {v_lsb:.3g} mV: Vq's "
                f"{y_offset} steps per sign cover +-{v_real:.3g} mV"
                + (f" at the top level {levels}" if levels > 1 else "")))
        elif "v_range_mv" in choices:
            vr, why = choices["v_range_mv"]
            choices["v_range_mv"] = (v_real, why + f" (realized +-{v_real:.4g} mV, v_lsb "
                                                   f"{v_lsb:.3g} mV)")

    # ------------------------------------------------------------------ the products
    def prod(coef, dep, factors, sign, what):
        pr = mk(1, 0, dep, factors)
        m, ex = _scale(coef, pr.shift, what, acc_shift)
        return mk(sign * m, ex, dep, factors)

    def terms(g):
        """The products of the update, coefficients times ``g`` (2**h in the tag)."""
        if euclid:
            hmul = 1.0 if encoding == "graded" else pos_mult
            pos = (prod(hc * g * hmul / pos_div, pos_dep, homo_pos, +1, "homo+ x1"),
                   prod(hc * g * hmul / pos_div, pos_dep,
                        fac((("x2", 0),), pos_y), -1, "homo+ x2"))
            neg = (prod(hc * g / neg_div, neg_dep, homo_neg, -1, "homo- x1"),
                   prod(hc * g / neg_div, neg_dep, fac((("x2", 0),), neg_y), +1, "homo- x2"))
            if encoding == "graded":
                return _graded_order(pos, neg, ratio, euclid)
            return pos + neg
        hdiv_pos = pos_mult / (pos_div if encoding == "events" or pos_y is None else 1.0)
        hmul = 1.0 if encoding == "graded" else pos_mult   # graded: ratio + 1 unit copies
        pos = (
            prod(hc * g * hmul / pos_div, pos_dep, homo_pos, +1, "homo+ x1"),
            prod(hc * g * hmul / pos_div, pos_dep, fac((("t", 0), ("x2", 0)), pos_y), -1,
                 "homo+ x2"),
            prod(c_ev * g * pos_mult / pos_div, pos_dep, fac((), pos_y), -1, "const+"),
            prod(coef_het * g * (pos_mult if encoding == "graded" else hdiv_pos), pos_dep,
                 het_pos, +1, "hetero+"),
        )
        neg = (
            prod(hc * g / neg_div, neg_dep, homo_neg, -1, "homo- x1"),
            prod(hc * g / neg_div, neg_dep, fac((("t", 0), ("x2", 0)), neg_y), +1, "homo- x2"),
            prod(c_ev * g / neg_div, neg_dep, fac((), neg_y), +1, "const-"),
            prod(coef_het * g / (1.0 if encoding == "graded" else neg_div), neg_dep, het_neg,
                 -1, "hetero-"),
        )
        if encoding == "graded":
            return _graded_order(pos, neg, ratio, euclid)
        return pos + neg

    # the largest step of each sign, in tag_2 units (2**-h LSB): what tag_2 must hold
    homo_lvl = (max((c_ev * k_x * usp_diff_bound(p, r) for r in rates), default=0.0) if euclid
                else max((hc * t * k_x * usp_diff_bound(p, r) for r, t in zip(rates, tags)),
                         default=0.0))
    const_lvl = 0.0 if euclid else c_ev
    # the levels each sign reaches: a positive post factor up to g_cap eta (beyond it the
    # excess is carried), a negative one up to g_cap eta phi_max dt (|e| <= phi_max dt sigma)
    g_top = 1.0 if euclid else nf.g_cap
    l_pos = min(levels, max(1, math.ceil(g_top * eta / (ratio * e_unit) - 1e-12)))
    l_neg = min(levels, max(1, math.ceil(g_top * eta * p.phi_max * p.dt / e_unit - 1e-12)))
    # y3 - 64 carries L V: at most 63 steps, and |V| at most the range asked for (|m| + 4 sd
    # of V at the task's weights, or the config's); |W| <= 128 (the weight grid's headroom)
    def het_step(lv):
        return coef_het * min(y_offset - 1, lv * v_range_req / v_lsb) * 2 ** (e.synaptic_bits - 2)
    to_d = 2.0 ** h / 2.0 ** acc_shift
    up_d = max(ratio * (l_pos * homo_lvl + het_step(l_pos)),
               l_neg * const_lvl + het_step(l_neg)) * to_d
    down_d = max(l_neg * homo_lvl + het_step(l_neg),
                 ratio * (l_pos * const_lvl + het_step(l_pos))) * to_d
    tag_top = 2 ** (e.synaptic_bits - 1) - 1                     # tag_2: 0..255
    fits = up_d + down_d + 2 ** h <= tag_top
    d_off = mp.tag_offset
    if d_off == "auto":
        if encoding == "events":
            d_off = D_OFFSET
        else:
            # room below for the largest negative step, above for the bap's; what is left
            # over is shared in proportion to the two needs
            spare = max(tag_top - 2 ** h - up_d - down_d, 0.0)
            below = down_d + spare * down_d / max(up_d + down_d, 1e-12)
            d_off = int(min(max(2 ** h + round(below), 2 ** h), tag_top - 2 ** h))
            if h:
                choices.setdefault("tag_offset", (d_off, (
                    f"tag_2 = {d_off} + residual in (-2**{h}, 0]: {d_off - 2 ** h} units of "
                    f"2**-{h} LSB below for the largest negative step (~{down_d:.0f}), "
                    f"{tag_top - d_off} above for the largest bap step (~{up_d:.0f}; levels "
                    f"{l_pos} / {l_neg}, USPs at mean + {USP_N_SD:g} sd)")))
    d_off = int(d_off)
    if h and not 2 ** h <= d_off <= 2 ** e.synaptic_bits - 1 - 2 ** h:
        raise ValueError(f"mapping.tag_offset must lie in [{2 ** h}, "
                         f"{2 ** e.synaptic_bits - 1 - 2 ** h}] with {h} hidden bits "
                         f"(got {d_off}): the residual needs 2**h units below it")
    y2_const = 0
    all_y0 = False
    if h == 0:
        products, dd_products = terms(1.0), ()
    elif mp.flush_log2 is None:
        # hidden bits, carry: d accumulates the update in units of 2**-h LSB; every epoch
        # a product u0 (d - c) y2^f, floor-shifted right by s = 7 f - 2 with the constant
        # y2 = 2**j (h = s - f j), divides by 2**h.  The applier multiplies by the (signed)
        # mantissa before the floor, so d's -1 * (d - 128) gives -ceil((d - 128) / 2**h);
        # w's +1 * (d - 128 + 2**h - 1) gives +ceil((d - 128) / 2**h): whole LSBs to w (no
        # rounding), exactly as many taken from d (d - 128 ends in (-2**h, 0])
        f = 1 if h <= 5 else 2
        j2 = mk(1, 0, "u0", (("d", 0),) + (("y2", 0),) * f).shift - h
        if j2 % f or j2 < 0 or j2 // f >= e.trace_bits:
            raise ValueError(f"hidden_bits {h} has no carry encoding (use 1..6 or flush_log2)")
        y2_const = 2 ** (j2 // f)
        y2s = (("y2", 0),) * f
        carry_w = (("d", -(d_off + 1 - 2 ** h)),) + y2s
        products = (mk(1, 0, "u0", carry_w),)                 # w += ceil((d - D) / 2**h)
        dd_products = terms(gain) + (
            mk(-1, h, "u0", (("d", -d_off),) + y2s),)         # d -= 2**h ceil(...)
    else:
        # hidden bits, periodic flush: the update goes to d in units of 2**-h LSB; every
        # event rides on y0 (sign on y2 / y1) so that the one u<k> of the rule set is the
        # flush's.  Lava reads one digit of k (learning_rule.py: int(uk_list[0][1])).
        if not 0 <= int(mp.flush_log2) <= 9:
            raise ValueError(f"flush_log2 must lie in [0, 9] (got {mp.flush_log2})")
        uk = f"u{int(mp.flush_log2)}"
        flush_w = mk(1, -h, uk, (("d", -d_off),))             # w += (d - D) 2**-h, exact
        flush_d = mk(-1, 0, uk, (("d", -d_off),))             # d -= d - D
        products = (flush_w,)
        dd_products = terms(gain) + (flush_d,)
        all_y0 = True
    for pr in products + dd_products:
        if product_bound(pr) >= 2 ** 31:
            raise ValueError(f"product {pr.render()} can overflow int32")

    # ------------------------------------------------------------------ neuron integers
    dm = int(round(p.decay_m * 2 ** nf.decay_frac))
    ds = int(round(p.decay_s * 2 ** nf.decay_frac))
    for name, tau, dq in (("tau_m", p.tau_m, dm), ("tau_s", p.tau_s, ds)):
        # the filter decay in U0.decay_frac: a time constant it cannot hold within 10 %
        # would silently change the neuron
        steps = tau / p.dt
        real = -1.0 / math.log(dq / 2 ** nf.decay_frac) if 0 < dq < 2 ** nf.decay_frac \
            else math.inf
        if not abs(real / steps - 1.0) <= 0.1:
            raise ValueError(
                f"the neuron's {name} = {tau:g} s ({steps:.0f} steps) is beyond what its "
                f"{nf.decay_frac}-bit filter decay (neuron.decay_frac) holds: exp(-dt/{name}) "
                f"rounds to {dq} / 2**{nf.decay_frac}, a time constant of {real:.4g} steps "
                f"(limit: within 10 %, about {0.2 * 2 ** nf.decay_frac:.0f} steps)")
    vk_mant, vk_shift = const_mantissa(scale * lsb, nf.mant_bits)
    span, nfr = nf.sigma_span_mv, nf.sigma_node_frac
    nodes = -span + np.arange(2 * span * 2 ** nfr + 1) * 2.0 ** -nfr
    sig = 0.5 * (1.0 + np.tanh(0.5 * p.beta * (nodes - p.theta)))
    sigma_lut = np.floor(sig * 2 ** nf.sigma_frac + 0.5).astype(np.int64)
    phidt_mant, phidt_shift = const_mantissa(p.phi_max * p.dt, nf.mant_bits)
    ginv_mant, ginv_shift = const_mantissa(1.0 / (p.phi_max * p.beta ** 2), nf.mant_bits)
    k_mant, k_shift = const_mantissa(eta / e_unit, nf.mant_bits)
    # |e| eta / E <= k_mant 2**-k_shift: as many fractional bits as one signed word holds
    ek_frac = nf.word_bits - 2 - int(np.floor(np.log2(k_mant * 2.0 ** -k_shift)))
    bad = neuron_word_problems(nf, levels, ratio)
    if bad:
        raise ValueError("; ".join(bad))
    vq_mant, vq_shift = const_mantissa(1.0 / v_lsb, nf.mant_bits)

    if euclid:
        homo_rel = 0.0
    else:
        homo_ideal = np.where(rates > 0, c_ev * scale / (k_x * cu)
                              / np.where(rates > 0, rates, 1.0), 0.0)
        homo_rel = float(np.max(np.abs(tags * hc / np.where(homo_ideal > 0, homo_ideal, 1) - 1)
                                * (homo_ideal > 0)))
    info = {
        "E_q": e_unit, "event_prob_per_unit_post": 1.0 / e_unit, "T": big_t,
        "tags_exact": raw.tolist(),
        "homo_rel_err": homo_rel,
        "acc_per_t_x1": hc, "hetero_coef": coef_het, "v_lsb_mv": v_lsb,
        "v_range_mv": v_real,
        "eta/E_q": {"float": eta / e_unit, "realised": k_mant * 2.0 ** -k_shift},
        "1/v_lsb": {"float": 1 / v_lsb, "realised": vq_mant * 2.0 ** -vq_shift},
        "usp_scale*lsb": {"float": scale * lsb, "realised": vk_mant * 2.0 ** -vk_shift},
        "decay_m": {"float": p.decay_m, "realised": dm / 2 ** nf.decay_frac},
        "decay_s": {"float": p.decay_s, "realised": ds / 2 ** nf.decay_frac},
        "phi_max_dt": {"float": p.phi_max * p.dt, "realised": phidt_mant * 2.0 ** -phidt_shift},
        "1/phi_max_beta2": {"float": 1.0 / (p.phi_max * p.beta ** 2),
                            "realised": ginv_mant * 2.0 ** -ginv_shift},
        "encoding": encoding, "rule": mp.rule,
        "tag_budget": {"up_units": up_d, "down_units": down_d, "residual_units": 2 ** h,
                       "fits": bool(fits) if h else None, "levels_pos": l_pos,
                       "levels_neg": l_neg},
    }
    if encoding == "graded":
        info.update({"E_n": e_unit, "E_p": e_unit * ratio, "levels": levels,
                     "top_step": e_unit * n_units, "y_unit": y_unit})
    c_ev_out = int(c_ev) if float(c_ev).is_integer() else float(c_ev)
    mp = dataclasses.replace(mp, w_frac=w_frac, c_ev=c_ev_out, tag_step=int(tag_step),
                             k_x=int(k_x), v_range_mv=float(v_real), encoding=encoding,
                             levels=levels, unit_ratio=ratio, y_unit=int(y_unit),
                             tag_offset=d_off)
    return Design(params=p, rates=rates, eta=float(eta), w_frac=w_frac, c_ev=c_ev_out,
                  k_x=int(k_x), x1_tau=x1_tau, x2_tau=x2_tau, tags=tags, tag_step=int(tag_step),
                  tag_scale=big_t, e_q=e_unit, v_lsb=v_lsb, products=products, weight_exp=0,
                  dm=dm, ds=ds, vk_mant=vk_mant, vk_shift=vk_shift, sigma_lut=sigma_lut,
                  phidt_mant=phidt_mant, phidt_shift=phidt_shift, ginv_mant=ginv_mant,
                  ginv_shift=ginv_shift, k_mant=k_mant, k_shift=k_shift, ek_frac=ek_frac,
                  vq_mant=vq_mant,
                  vq_shift=vq_shift, engine=e, neuron=nf, mapping=mp, dd_products=dd_products,
                  all_y0=all_y0, y_event=y_event, y_offset=y_offset, y2_const=y2_const,
                  info=info,
                  choices=choices)


def design_for_task(task: Task, eta: float, w_frac: int | None = None, *,
                    mapping: MappingSpec | None = None, engine: EngineSpec | None = None,
                    neuron: NeuronSpec | None = None, **kw) -> Design:
    """:func:`design` with ``w_frac`` and the V range 'auto' fitted to what a user knows
    before learning: the initial weights and the stated expected range ``task.w_range``.

    'auto' picks the finest LSB 2**-w_frac with the larger of max |w_init| and ``w_range``
    within 128 LSB (2x headroom to 255); ``Design.choices['w_frac']`` says so.  The
    teacher's weights are never read: a user deploying for real does not have them.
    """
    if not getattr(task.f, "is_identity", False):
        raise ValueError(f"the learning engine stores somatic weights only (parametrization "
                         f"identity); this task's weights are {type(task.f).__name__}")
    mp = dataclasses.replace(mapping or DEFAULT_MAPPING,
                             **{k: kw.pop(k) for k in list(kw) if k in _MAPPING_KW})
    if w_frac is not None:
        mp = dataclasses.replace(mp, w_frac=int(w_frac))
    choices = {}
    if mp.w_frac == "auto":
        wmax, source = expected_max_abs_weight(task)
        wf = default_w_frac(wmax)
        if not 0 <= wf <= 40:
            raise ValueError(
                f"the task's weights (largest |w| {wmax:.4g}, {source}) are beyond the engine's "
                f"weight range at every exponent: {e_bits(engine)}-bit weights with an LSB "
                f"2**-w_frac, w_frac in [0, 40], hold |w| in [{2.0 ** -40 * 128:.3g}, 128]")
        choices["w_frac"] = (wf, f"largest |w| {wmax:.4g} ({source}) uses "
                                 f"{wmax * 2.0 ** wf:.0f} of 255 LSB (<= 128: 2x headroom)")
        mp = dataclasses.replace(mp, w_frac=wf)
    if mp.v_range_mv == "auto":
        vr, why = auto_v_range(task)
        choices["v_range_mv"] = (vr, why)
        mp = dataclasses.replace(mp, v_range_mv=vr)
    return design(task.params, task.rates, eta, mapping=mp, engine=engine, neuron=neuron,
                  choices=choices, **kw)


def expected_max_abs_weight(task: Task) -> tuple[float, str]:
    """(largest |w| the design must hold, where it comes from): the larger of the initial
    weights' and the stated expected range ``task.w_range``; the teacher's weights are
    never read."""
    w0 = float(np.max(np.abs(task.w_init)))
    if task.w_range is None:
        return w0, "initial weights; no expected weight range stated"
    if task.w_range >= w0:
        return float(task.w_range), "the stated expected weight range"
    return w0, "initial weights, beyond the stated expected weight range"


def auto_v_range(task: Task, n_sd: float = 4.0, floor_mv: float = 10.0) -> tuple[float, str]:
    """|V| range that y3 = 64 + Vq must cover for ``task``, from what a user knows before
    learning (never the teacher's weights), rounded up to 1 mV and at least ``floor_mv``:

    - at the initial weights of every trial, the largest ``|m| + n_sd sqrt(v)`` of the
      membrane potential's Gaussian (docs/model.md#membrane-potential-statistics:
      m = sum f(w) r, v = sum f(w)^2 r / c_eps);
    - with a stated expected range ``w_range``, ``n_sd`` standard deviations of V over
      weights spread uniformly in [-w_range, w_range] and the input noise:
      ``sqrt(sum_i f(w_range)_i^2 / 3 * (r_i^2 + r_i / c_eps))``.

    A wider range makes Vq coarser (64 levels per sign), so the smallest covering one is
    chosen.
    """
    p = task.params
    ws = task.f.f(np.asarray(task.w_init, dtype=np.float64))
    m = ws @ task.rates
    v = (ws * ws) @ task.rates / p.c_eps
    worst = float(np.max(np.abs(m) + n_sd * np.sqrt(v)))
    why = f"|m| + {n_sd:g} sd of V at the initial weights reaches {worst:.3g} mV"
    if task.w_range is not None:
        r = np.asarray(task.rates, dtype=np.float64)
        fr = np.abs(task.f.f(np.full(r.shape, task.w_range)))      # per afferent
        spread = n_sd * math.sqrt(float(np.sum(fr * fr / 3.0 * (r * r + r / p.c_eps))))
        why += (f", {n_sd:g} sd of V over weights uniform in +-{task.w_range:.3g} "
                f"{spread:.3g} mV")
        worst = max(worst, spread)
    vr = float(max(floor_mv, math.ceil(worst)))
    return vr, f"{why}; Vq's 64 levels per sign cover +-{vr:g} mV"


def mis_scaled(d: Design, index: int, delta: int = 1) -> Design:
    """The same design with product ``index`` scaled by 2**delta (an off-by-one shift)."""
    prods = list(d.products)
    p = prods[index]
    prods[index] = dataclasses.replace(p, exp=p.exp + delta)
    return dataclasses.replace(d, products=tuple(prods))


def quantize_weights(d: Design, w: np.ndarray) -> np.ndarray:
    """Float weights -> even integers on the 2**-w_frac grid in [-256, 254].

    Even because LearningDense's first run_spk truncates the lowest bit (sign mode MIXED);
    later updates can make weights odd.
    """
    top = 2 ** (d.engine.synaptic_bits - 1)
    q = 2 * np.floor(np.asarray(w, dtype=np.float64) * 2.0 ** d.w_frac / 2 + 0.5)
    return np.clip(q, -top, top - 2).astype(np.int64)


def expected_update(d: Design, W: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Expected weight update of the engine for float weights W (S, N), USPs X (S, N) and
    expected teacher counts y (S,), up to a positive factor per sample (only the direction
    is meaningful): the expectation over the engine's event draws and unbiased stochastic
    roundings, i.e. ``eta (1 - sigma) e`` times the engine's bracket

        c_eps x_i / r_i * (t_i / (T / r_i)) - c_eps c_u + c_w clip(V, +-63 v_lsb) w_q,i

    with the weights on the design's grid (even integers, as LearningDense stores them),
    the quantized tags and V's clipped range.  Neglected: event-probability saturation, the
    online gamma_s estimate (a positive scalar per neuron), and the floor of the
    heterosynaptic products (-0.5 accumulator unit per event).
    """
    p = d.params
    W = np.asarray(W, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    wq = quantize_weights(d, W) * d.lsb_w
    V = np.sum(wq * X, axis=-1)
    Vc = np.clip(V, -(d.y_offset - 1) * d.v_lsb, (d.y_offset - 1) * d.v_lsb)
    s = 0.5 * (1.0 + np.tanh(0.5 * p.beta * (V - p.theta)))
    e = np.asarray(y, dtype=np.float64) - p.phi_max * p.dt * s
    rates = np.asarray(d.rates, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        homo = np.where(rates > 0, p.c_eps / np.where(rates > 0, rates, 1.0)
                        * d.tags * rates / d.tag_scale, 0.0)
    bracket = homo * X - p.c_eps * p.c_u + p.c_w * Vc[..., None] * wq
    return ((1.0 - s) * e)[..., None] * bracket
