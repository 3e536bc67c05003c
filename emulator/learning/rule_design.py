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

from .constants import (D_OFFSET, DEFAULT_ENGINE, DEFAULT_MAPPING, DEFAULT_NEURON, EngineSpec,
                        MappingSpec, NeuronSpec)


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
    a_mant: int               #: phi_max beta^2
    a_shift: int
    k_mant: int               #: eta / E_q
    k_shift: int
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


def default_w_frac(w_scale: float) -> int:
    """Weight LSB 2**-w_frac with |w| <= w_scale within 128 LSB (2x headroom to 255)."""
    return int(math.floor(math.log2(128.0 / w_scale)))


def auto_c_ev(params: NeuronParams, eta: float, w_frac: int,
              g_cap: float = DEFAULT_NEURON.g_cap, hidden_bits: int = 0) -> int:
    """Smallest c_ev = 64 * 2**j (j >= -hidden_bits) whose event size E_q >= eta * g_cap.

    An event then carries up to ``g_cap`` times eta in units of gamma_s (1 - sigma) |e|: the
    event probability eta gamma_s (1 - sigma) |e| / E_q saturates only where
    gamma_s (1 - sigma) |e| > g_cap.  Smaller events mean less event noise; below one
    weight LSB (64) they need the hidden bits that keep their sub-LSB part.
    """
    need = 128.0 * params.c_eps * params.c_u * eta * g_cap * 2.0 ** w_frac
    j = max(-int(hidden_bits), math.ceil(math.log2(need / 64.0) - 1e-12))
    return int(round(64 * 2.0 ** j))


_MAPPING_KW = ("c_ev", "k_x", "v_range_mv", "tag_step", "hidden_bits", "flush_log2")


def design(params: NeuronParams, rates, eta: float, w_frac: int | None = None, *,
           mapping: MappingSpec | None = None, engine: EngineSpec | None = None,
           neuron: NeuronSpec | None = None, max_tag_err: float = 0.005,
           choices: dict | None = None, **mapping_kw) -> Design:
    """Derive the rule strings, the tags and the neuron's integers.

    Parameters
    ----------
    params : NeuronParams (dt must divide tau_m and tau_s into whole steps)
    rates : (N,) input rates [Hz]
    eta : learning rate (code units)
    w_frac : weight LSB 2**-w_frac; overrides ``mapping.w_frac`` (which must then not be
        'auto': only :func:`design_for_task` knows the weights)
    mapping : :class:`MappingSpec` (default :data:`DEFAULT_MAPPING`); its fields can also be
        given as keywords (``c_ev=``, ``k_x=``, ``v_range_mv=``, ``tag_step=``,
        ``hidden_bits=``, ``flush_log2=``), which override it.  ``c_ev`` 'auto':
        :func:`auto_c_ev` (64 * 2**j, the smallest whose events carry up to
        ``neuron.g_cap`` times eta); ``tag_step`` 'auto': 16 (exact homosynaptic products)
        when every tag stays within ``max_tag_err`` of T / r_i, else 1.  ``hidden_bits`` h:
        the update is learnt into tag_2 (``dd``, units 2**-h LSB, offset 128) and flushed
        into w every 2**flush_log2 epochs (``dw = 2^-h u<k> (d - 128)``)
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
    h = int(mp.hidden_bits)
    if not 0 <= h <= e.acc_shift:
        raise ValueError(f"hidden_bits must lie in [0, {e.acc_shift}] (got {h}): the flush "
                         "2^-h (d - 128) must be exact in the accumulator")
    y_event = y_offset = 2 ** (e.trace_bits - 1)
    acc_shift = e.acc_shift

    def mk(mant, exp, dep, factors):
        return Product(mant, exp, dep, factors, e)

    p = params
    c_ev = mp.c_ev
    if c_ev == "auto":
        c_ev = auto_c_ev(p, eta, w_frac, nf.g_cap, int(mp.hidden_bits))
        choices.setdefault("c_ev", (c_ev, f"smallest 64 * 2**j (j >= -hidden_bits = "
                                          f"{-int(mp.hidden_bits)}) with E_q >= eta * g_cap "
                                          f"(g_cap = {nf.g_cap}): events saturate only where "
                                          f"gamma_s (1 - sigma) |e| > {nf.g_cap}"))
    k_x, v_range_mv, tag_step = int(mp.k_x), float(mp.v_range_mv), mp.tag_step
    x1_tau, x2_tau = p.tau_m / p.dt, p.tau_s / p.dt
    if abs(x1_tau - round(x1_tau)) > 1e-9 or abs(x2_tau - round(x2_tau)) > 1e-9:
        raise ValueError("tau_m / dt and tau_s / dt must be whole numbers of steps")
    x1_tau, x2_tau = int(round(x1_tau)), int(round(x2_tau))
    lsb = 2.0 ** -w_frac
    c, cu, cw, scale = p.c_eps, p.c_u, p.c_w, p.usp_scale
    if cw <= 0 or cu <= 0:
        raise ValueError("c_u and c_w must be > 0 for this mapping")
    e_q = c_ev * lsb / (128.0 * c * cu)

    # homosynaptic: per positive event, synapse i gets c_ev * scale (x1 - x2) / (k_x r_i c_u)
    # accumulator units; y0*t*x1 gives floor(t x1 m / 32) * 2**(e+7) ~ t x1 m q / 32.
    r_pos = rates[rates > 0]
    sh_pos = mk(1, 0, "y0", (("t", 0), ("x1", 0))).shift           # 5
    t_num = c_ev * scale / (k_x * cu)           # = t_i * (acc per t x1) * r_i
    tmax = 2 ** (e.synaptic_bits - 1) - 1       # 255
    # hc = accumulator units per unit of t*x1 = m q / 2**sh_pos for the y0 product (q >= 1).
    # A power of two (mantissa 4) with tags that are multiples of 16 makes both homosynaptic
    # products exact integers (t x1 / 8 and t x1 / 16 before their left shifts); that is
    # used when every tag stays within max_tag_err of T / r_i.  Otherwise the finest
    # m * 2**j keeps the largest tag T / r_min within 255 (tag_step 1, floor losses).
    def tags_for(hc, step):
        raw = np.where(rates > 0, t_num / hc / np.where(rates > 0, rates, 1.0), 0.0)
        return raw, (step * np.round(raw / step)).astype(np.int64)

    need = max(1.0, t_num / (tmax * r_pos.min()) * 2.0 ** sh_pos) if r_pos.size else 1.0
    hc = 2.0 ** math.ceil(math.log2(need) - 1e-12) / 2.0 ** sh_pos
    raw, tags = tags_for(hc, 16)
    rel = np.abs(tags / np.where(raw > 0, raw, 1.0) - 1.0) * (raw > 0)
    if tag_step == "auto":
        ok = bool(np.all((tags > 0) | (raw == 0)) and rel.max(initial=0) <= max_tag_err)
        tag_step = 16 if ok else 1
        choices.setdefault("tag_step", (tag_step, (
            f"multiples of 16 stay within {rel.max(initial=0):.4f} <= {max_tag_err} of "
            "T / r_i: homosynaptic products exact") if ok else (
            f"multiples of 16 would miss T / r_i by {rel.max(initial=0):.4f} > {max_tag_err}")))
    if tag_step != 16:
        hc = _representable_at_least(need) / 2.0 ** sh_pos
        raw, tags = tags_for(hc, tag_step)
    big_t = t_num / hc                           # T: t_i = T / r_i
    if tags.max(initial=0) > tmax:
        raise ValueError(f"tags exceed {tmax}")

    # heterosynaptic: per event, acc = c_ev lsb c_w V W / (c c_u); y0*(y3-64)*w gives
    # floor(Vq W m / 32) * 2**(e+7); V = Vq * v_lsb.
    sh_het = mk(1, 0, "y0", (("y3", -y_offset), ("w", 0))).shift     # 5
    het_unit = c_ev * lsb * cw / (c * cu)        # acc per (mV * W)
    min_coef = 2.0 ** (acc_shift - 7 - sh_het)    # smallest coefficient: m = 1, exp = -7
    coef_het = max(min_coef, _representable_at_least(
        het_unit * v_range_mv / y_offset * 2.0 ** sh_het) / 2.0 ** sh_het)
    v_lsb = coef_het / het_unit

    def prod(coef, dep, factors, sign, what):
        pr = mk(1, 0, dep, factors)
        m, ex = _scale(coef, pr.shift, what, acc_shift)
        return mk(sign * m, ex, dep, factors)

    def terms(gain, pos_dep, pos_y, neg_dep):
        """The 8 products; coefficients times ``gain``; positive events gated by
        ``pos_dep`` (times factor ``pos_y`` if any), negative ones by ``neg_dep`` * y1."""
        py = () if pos_y is None else ((pos_y, 0),)
        g_pos = gain if pos_y is None else gain / y_event
        return (
            prod(hc * g_pos, pos_dep, (("t", 0), ("x1", 0)) + py, +1, "homo+ x1"),
            prod(hc * g_pos, pos_dep, (("t", 0), ("x2", 0)) + py, -1, "homo+ x2"),
            prod(c_ev * g_pos, pos_dep, py, -1, "const+"),
            prod(coef_het * g_pos, pos_dep, py + (("y3", -y_offset), ("w", 0)), +1, "hetero+"),
            prod(hc * gain / y_event, neg_dep, (("t", 0), ("x1", 0), ("y1", 0)), -1, "homo- x1"),
            prod(hc * gain / y_event, neg_dep, (("t", 0), ("x2", 0), ("y1", 0)), +1, "homo- x2"),
            prod(c_ev * gain / y_event, neg_dep, (("y1", 0),), +1, "const-"),
            prod(coef_het * gain / y_event, neg_dep, (("y1", 0), ("y3", -y_offset), ("w", 0)), -1,
                 "hetero-"),
        )

    y2_const = 0
    if h == 0:
        products, dd_products, all_y0 = terms(1.0, "y0", None, "u0"), (), False
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
        carry_w = (("d", -(D_OFFSET + 1 - 2 ** h)),) + y2s
        products = (mk(1, 0, "u0", carry_w),)                 # w += ceil((d - 128) / 2**h)
        dd_products = terms(2.0 ** h, "y0", None, "u0") + (
            mk(-1, h, "u0", (("d", -D_OFFSET),) + y2s),)      # d -= 2**h ceil(...)
        all_y0 = False
    else:
        # hidden bits, periodic flush: the update goes to d in units of 2**-h LSB; every
        # event rides on y0 (sign on y2 / y1) so that the one u<k> of the rule set is the
        # flush's.  Lava reads one digit of k (learning_rule.py: int(uk_list[0][1])).
        if not 0 <= int(mp.flush_log2) <= 9:
            raise ValueError(f"flush_log2 must lie in [0, 9] (got {mp.flush_log2})")
        uk = f"u{int(mp.flush_log2)}"
        flush_w = mk(1, -h, uk, (("d", -D_OFFSET),))          # w += (d - 128) 2**-h, exact
        flush_d = mk(-1, 0, uk, (("d", -D_OFFSET),))          # d -= d - 128
        products = (flush_w,)
        dd_products = terms(2.0 ** h, "y0", "y2", "y0") + (flush_d,)
        all_y0 = True
    for pr in products + dd_products:
        if product_bound(pr) >= 2 ** 31:
            raise ValueError(f"product {pr.render()} can overflow int32")

    # neuron integers
    dm = int(round(p.decay_m * 2 ** nf.decay_frac))
    ds = int(round(p.decay_s * 2 ** nf.decay_frac))
    vk_mant, vk_shift = const_mantissa(scale * lsb, nf.mant_bits)
    span, nfr = nf.sigma_span_mv, nf.sigma_node_frac
    nodes = -span + np.arange(2 * span * 2 ** nfr + 1) * 2.0 ** -nfr
    sig = 0.5 * (1.0 + np.tanh(0.5 * p.beta * (nodes - p.theta)))
    sigma_lut = np.floor(sig * 2 ** nf.sigma_frac + 0.5).astype(np.int64)
    phidt_mant, phidt_shift = const_mantissa(p.phi_max * p.dt, nf.mant_bits)
    a_mant, a_shift = const_mantissa(p.phi_max * p.beta ** 2, nf.mant_bits)
    k_mant, k_shift = const_mantissa(eta / e_q, nf.mant_bits)
    vq_mant, vq_shift = const_mantissa(1.0 / v_lsb, nf.mant_bits)

    homo_ideal = np.where(rates > 0, t_num / np.where(rates > 0, rates, 1.0), 0.0)
    homo_real = tags * hc
    info = {
        "E_q": e_q, "event_prob_per_unit_post": 1.0 / e_q, "T": big_t,
        "tags_exact": raw.tolist(),
        "homo_rel_err": float(np.max(np.abs(homo_real / np.where(homo_ideal > 0, homo_ideal, 1)
                                            - 1) * (homo_ideal > 0))),
        "acc_per_t_x1": hc, "hetero_coef": coef_het, "v_lsb_mv": v_lsb,
        "v_range_mv": y_offset * v_lsb,
        "eta/E_q": {"float": eta / e_q, "realised": k_mant * 2.0 ** -k_shift},
        "1/v_lsb": {"float": 1 / v_lsb, "realised": vq_mant * 2.0 ** -vq_shift},
        "usp_scale*lsb": {"float": scale * lsb, "realised": vk_mant * 2.0 ** -vk_shift},
        "decay_m": {"float": p.decay_m, "realised": dm / 2 ** nf.decay_frac},
        "decay_s": {"float": p.decay_s, "realised": ds / 2 ** nf.decay_frac},
        "phi_max_dt": {"float": p.phi_max * p.dt, "realised": phidt_mant * 2.0 ** -phidt_shift},
        "phi_max_beta2": {"float": p.phi_max * p.beta ** 2, "realised": a_mant * 2.0 ** -a_shift},
    }
    mp = dataclasses.replace(mp, w_frac=w_frac, c_ev=int(c_ev), tag_step=int(tag_step))
    return Design(params=p, rates=rates, eta=float(eta), w_frac=w_frac, c_ev=int(c_ev),
                  k_x=k_x, x1_tau=x1_tau, x2_tau=x2_tau, tags=tags, tag_step=int(tag_step),
                  tag_scale=big_t, e_q=e_q, v_lsb=v_lsb, products=products, weight_exp=0,
                  dm=dm, ds=ds, vk_mant=vk_mant, vk_shift=vk_shift, sigma_lut=sigma_lut,
                  phidt_mant=phidt_mant, phidt_shift=phidt_shift, a_mant=a_mant,
                  a_shift=a_shift, k_mant=k_mant, k_shift=k_shift, vq_mant=vq_mant,
                  vq_shift=vq_shift, engine=e, neuron=nf, mapping=mp, dd_products=dd_products,
                  all_y0=all_y0, y_event=y_event, y_offset=y_offset, y2_const=y2_const,
                  info=info,
                  choices=choices)


def design_for_task(task: Task, eta: float, w_frac: int | None = None, *,
                    mapping: MappingSpec | None = None, engine: EngineSpec | None = None,
                    neuron: NeuronSpec | None = None, **kw) -> Design:
    """:func:`design` with ``w_frac`` 'auto' fitted to the task's initial/target weights.

    'auto' picks the finest LSB 2**-w_frac with the largest |w| of the initial and target
    weights within 128 LSB (2x headroom to 255); ``Design.choices['w_frac']`` says so.
    """
    mp = dataclasses.replace(mapping or DEFAULT_MAPPING,
                             **{k: kw.pop(k) for k in list(kw) if k in _MAPPING_KW})
    if w_frac is not None:
        mp = dataclasses.replace(mp, w_frac=int(w_frac))
    choices = {}
    if mp.w_frac == "auto":
        wmax = float(np.max(np.abs(task.w_init)))
        if task.w_target is not None:
            wmax = max(wmax, float(np.max(np.abs(task.w_target))))
        wf = default_w_frac(wmax)
        choices["w_frac"] = (wf, f"largest |w| {wmax:.4g} of initial/target weights uses "
                                 f"{wmax * 2.0 ** wf:.0f} of 255 LSB (<= 128: 2x headroom)")
        mp = dataclasses.replace(mp, w_frac=wf)
    if mp.v_range_mv == "auto":
        vr, why = auto_v_range(task)
        choices["v_range_mv"] = (vr, why)
        mp = dataclasses.replace(mp, v_range_mv=vr)
    return design(task.params, task.rates, eta, mapping=mp, engine=engine, neuron=neuron,
                  choices=choices, **kw)


def auto_v_range(task: Task, n_sd: float = 4.0, floor_mv: float = 10.0) -> tuple[float, str]:
    """|V| range that y3 = 64 + Vq must cover for ``task``: the largest ``|m| + n_sd sqrt(v)``
    of the membrane potential's Gaussian (SPEC §1.4: m = sum w r, v = sum w^2 r / c_eps) at
    the initial and the target weights of every trial, rounded up to 1 mV, at least
    ``floor_mv``.  A wider range makes Vq coarser (64 levels per sign), so the smallest
    covering one is chosen."""
    p = task.params
    worst = 0.0
    for w in (task.w_init, task.w_target):
        if w is None:
            continue
        ws = task.f.f(np.asarray(w, dtype=np.float64))
        m = ws @ task.rates
        v = (ws * ws) @ task.rates / p.c_eps
        worst = max(worst, float(np.max(np.abs(m) + n_sd * np.sqrt(v))))
    vr = float(max(floor_mv, math.ceil(worst)))
    return vr, (f"|m| + {n_sd:g} sd of V at the initial/target weights reaches {worst:.3g} mV; "
                f"Vq's 64 levels per sign cover +-{vr:g} mV")


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
