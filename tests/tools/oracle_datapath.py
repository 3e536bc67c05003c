"""An independent, scalar, plain-Python-int oracle of the integer datapath.

Written from ``docs/datapath.md`` (sections *Formats*, *Step order*, *How gamma_s is obtained
on chip*, *Randomness* and *Exact integer arithmetic of one step*), not from ``emulator/``: it
imports nothing from ``emulator`` or ``fixedpoint``.  It has its own

* SplitMix64 counter RNG (``docs/datapath.md`` *Randomness*: ``prefix = mix64(mix64(mix64(seed)
  ^ stream) ^ step)``, word ``mix64(prefix + (index + 1) * GOLDEN)``) and stream table;
* rounding of right shifts (floor, trunc, half_up, half_even, stochastic) on Python ints;
* constants, computed from the config's YAML values and the neuron's float parameters by
  their closed forms with exact rational (``Fraction``) or 50-digit ``Decimal`` arithmetic:
  decay factors ``round(exp(-dt/tau) 2**decay_frac)``, mantissas, ``c_eps`` from its
  integral, the rates and ``c_eps c_u`` on their grids;
* sigmoid table, evaluated in ``Decimal`` at every node;
* gamma_s table: built here by trapezoid quadrature of ``E[h(V)]`` (``h = phi'^2/phi``) when
  ``gamma_lut`` is not given.  For the 256x256 (fxp16) and 1024x1024 (fxp32) tables the tests
  pass the emulator's table in instead (rebuilding 10^6 Gaussian integrals is too slow for a
  unit test) and spot-check entries of it against this quadrature separately
  (``tests/emulator/test_oracle_datapath.py::test_gamma_table_against_quadrature``).

State is a dict of nested lists of Python ints; ints never wrap, so an int64 overflow in the
emulator would show up as a disagreement.
"""
from __future__ import annotations

import decimal
import math
from fractions import Fraction

import numpy as np

# ----------------------------------------------------------------------------- RNG
M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15

#: Counter-RNG streams (docs/datapath.md, *Randomness*).
STREAMS = {"input": 1, "teacher": 2, "weights": 3, "student": 6, "trace": 7, "usp": 16,
           "potential": 17, "homo": 18, "cw_v": 19, "hetero": 20, "post": 21}

#: Guard bits of the V sum, interpolation position bits, statistics formats and the
#: post-factor intermediates (docs/datapath.md, *Formats* and *How gamma_s is obtained*).
V_GUARD = 8
INTERP = 12
RATE_F = 8
STAT_W_F = 20
STAT_V_F = 24
POST_A_F = 24
POST_B_F = 32
M_LO, M_SPAN_LOG2, V_SPAN_LOG2 = -32, 6, 6


def mix64(x: int) -> int:
    x &= M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def prefix(seed: int, stream: int, step: int) -> int:
    return mix64(mix64(mix64(seed & M64) ^ stream) ^ (step & M64))


def word(seed: int, stream: int, step: int, index: int) -> int:
    """The 64-bit random word of ``(seed, stream, step, index)``."""
    return mix64(prefix(seed, stream, step) + (index + 1) * GOLDEN)


def draw53(seed: int, stream: int, step: int, index: int) -> int:
    """Top 53 bits of the word, the value compared with a Bernoulli threshold."""
    return word(seed, stream, step, index) >> 11


def bernoulli_threshold(p: float) -> int:
    """floor(clip(p, 0, 1) * 2**53), exact (p * 2**53 is exact in float64)."""
    p = min(max(p, 0.0), 1.0)
    return math.floor(Fraction(p) * (1 << 53))


# ----------------------------------------------------------------------------- rounding
def rs(x: int, s: int, mode: str = "floor", w: int | None = None) -> int:
    """x * 2**-s rounded by ``mode``; s <= 0 is an exact left shift.  ``w``: the random word
    (stochastic: floor((x + (w mod 2**s)) / 2**s))."""
    if s <= 0:
        return x << -s
    if mode == "floor":
        return x >> s
    if mode == "trunc":
        return -((-x) >> s) if x < 0 else x >> s
    if mode == "half_up":
        return (x + (1 << (s - 1))) >> s
    if mode == "half_even":
        q, r, h = x >> s, x & ((1 << s) - 1), 1 << (s - 1)
        return q + 1 if (r > h or (r == h and q & 1)) else q
    if mode == "half_away":
        return -((-x + (1 << (s - 1))) >> s) if x < 0 else (x + (1 << (s - 1))) >> s
    if mode == "stochastic":
        return (x + (w & ((1 << s) - 1))) >> s
    raise ValueError(mode)


def clip(x: int, lo: int, hi: int) -> tuple[int, int]:
    """(saturated value, 1 if it was clipped)."""
    if x < lo:
        return lo, 1
    if x > hi:
        return hi, 1
    return x, 0


def signed_range(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def round_half_up(fr: Fraction) -> int:
    return math.floor(fr + Fraction(1, 2))


def round_half_even(fr: Fraction) -> int:
    return round(fr)   # Fraction.__round__ rounds halves to even


def round_half_away(fr: Fraction) -> int:
    return int(math.copysign(math.floor(abs(fr) + Fraction(1, 2)), fr))


def _dec(x) -> decimal.Decimal:
    if isinstance(x, Fraction):
        return decimal.Decimal(x.numerator) / decimal.Decimal(x.denominator)
    return decimal.Decimal(x)


def _dec_to_fraction(d: decimal.Decimal) -> Fraction:
    return Fraction(d)


def mantissa(value: Fraction, mant_bits: int) -> tuple[int, int]:
    """(mant, shift), value ~ mant 2**-shift, 2**(mant_bits-1) <= |mant| < 2**mant_bits,
    rounded to nearest (docs/datapath.md, *Formats*, row "constants")."""
    if value == 0:
        return 0, 0
    a = abs(value)
    e = math.floor(math.log2(a)) + 1            # 2**(e-1) <= a < 2**e (checked below)
    while a >= Fraction(2) ** e:
        e += 1
    while a < Fraction(2) ** (e - 1):
        e -= 1
    shift = mant_bits - e
    m = round_half_away(a * Fraction(2) ** shift)
    if m >= 1 << mant_bits:
        m >>= 1
        shift -= 1
    return (m if value > 0 else -m), shift


# ----------------------------------------------------------------------------- constants
class Constants:
    """Every integer of docs/datapath.md computed from the config tree and the floats.

    ``tree`` is the config mapping (as read from the YAML), ``params`` an object with the
    float fields beta, theta, phi_max, tau_m, tau_s, dt, c_u, c_w; ``rates`` (N,) in Hz;
    ``eta`` the learning rate in code units.
    """

    def __init__(self, tree: dict, params, rates, eta: float, gamma_lut=None):
        self.tree = tree
        t = tree
        self.p = params
        P = {k: Fraction(float(getattr(params, k))) for k in
             ("beta", "theta", "phi_max", "tau_m", "tau_s", "dt", "c_u", "c_w")}
        self.P = P
        tr, us, wt, po = t["traces"], t["usp"], t["weights"], t["potential"]
        sg, er, gm, br, pt = t["sigmoid"], t["error"], t["gamma_s"], t["bracket"], t["post"]
        mb = t["constants"]["mant_bits"]
        self.mb = mb
        # formats
        self.F_a, self.a_bits, self.F_dec = tr["frac"], tr["bits"], tr["decay_frac"]
        self.r_a = tr["rounding"]
        self.F_x, self.x_bits, self.r_x = us["frac"], us["bits"], us["rounding"]
        self.F_w, self.w_bits, self.extra, self.r_w = (wt["frac"], wt["bits"], wt["extra_frac"],
                                                      wt["rounding"])
        self.F_V, self.V_bits, self.r_V = po["frac"], po["bits"], po["rounding"]
        self.F_s, self.lut_bits, self.interp = sg["frac"], sg["lut_bits"], bool(sg["interpolate"])
        self.F_e = er["frac"]
        self.F_g, self.g_bits = gm["frac"], gm["bits"]
        self.gm_bits, self.gv_bits, self.epoch = gm["m_lut_bits"], gm["v_lut_bits"], gm["epoch_steps"]
        self.F_B, self.B_bits, self.r_B = br["frac"], br["bits"], br["rounding"]
        self.F_P, self.P_bits, self.r_P = pt["frac"], pt["bits"], pt["rounding"]
        # ranges
        self.a_max = (1 << self.a_bits) - 1
        self.x_lo, self.x_hi = signed_range(self.x_bits)
        self.acc_lo, self.acc_hi = signed_range(self.w_bits + self.extra)
        self.V_lo, self.V_hi = signed_range(self.V_bits)
        self.B_lo, self.B_hi = signed_range(self.B_bits)
        self.P_lo, self.P_hi = signed_range(self.P_bits)
        # decay factors round(exp(-dt/tau) * 2**decay_frac), 50 digits
        with decimal.localcontext() as ctx:
            ctx.prec = 50
            self.decay_m = int((_dec(-P["dt"] / P["tau_m"]).exp() * (1 << self.F_dec))
                               .to_integral_value(decimal.ROUND_HALF_EVEN))
            self.decay_s = int((_dec(-P["dt"] / P["tau_s"]).exp() * (1 << self.F_dec))
                               .to_integral_value(decimal.ROUND_HALF_EVEN))
        tm, ts = P["tau_m"], P["tau_s"]
        usp_scale = 1 / (tm - ts)
        int_eps_sq = usp_scale ** 2 * (tm / 2 - 2 * tm * ts / (tm + ts) + ts / 2)
        c_eps = 1 / int_eps_sq
        self.c_eps = c_eps
        self.usp_mant, self.usp_shift = mantissa(usp_scale, mb)
        rates = [Fraction(float(r)) for r in rates]
        self.rates = rates
        homo = [c_eps / r if r > 0 else Fraction(0) for r in rates]
        vmax = max(abs(h) for h in homo) if homo else Fraction(0)
        if vmax == 0:
            self.homo_mant, self.homo_shift = [0] * len(homo), 0
        else:
            _, self.homo_shift = mantissa(vmax, mb)
            lim = (1 << mb) - 1
            self.homo_mant = [max(-lim, min(lim, round_half_away(h * Fraction(2) ** self.homo_shift)))
                              for h in homo]
        self.cu_q = round_half_even(c_eps * P["c_u"] * (1 << self.F_B))
        self.cw_mant, self.cw_shift = mantissa(P["c_w"], mb)
        self.phidt_mant, self.phidt_shift = mantissa(P["phi_max"] * P["dt"], mb)
        self.eta_mant, self.eta_shift = mantissa(Fraction(float(eta)), mb)
        self.inv_ceps_mant, self.inv_ceps_shift = mantissa(1 / c_eps, mb)
        self.rates_q = [round_half_up(r * (1 << RATE_F)) for r in rates]
        self.sigma_lut = self._sigma_table()
        self.gamma_lut = ([[int(v) for v in row] for row in np.asarray(gamma_lut)]
                          if gamma_lut is not None else gamma_table(self))

    def _sigma_table(self) -> list[int]:
        """sigma at the 2**lut_bits + 1 nodes V_i = lo + i 2**(V_bits - lut_bits) (codes; the
        last node one LSB past the top), rounded to nearest (half up) on U(F_s+1).F_s."""
        s = self.V_bits - self.lut_bits
        beta, theta = self.P["beta"], self.P["theta"]
        out = []
        top = (1 << (self.F_s + 1)) - 1
        with decimal.localcontext() as ctx:
            ctx.prec = 50
            for i in range((1 << self.lut_bits) + 1):
                v = Fraction(self.V_lo + (i << s), 1 << self.F_V)
                z = _dec(-beta * (v - theta))
                sig = decimal.Decimal(1) / (decimal.Decimal(1) + z.exp())
                q = round_half_up(Fraction(sig) * (1 << self.F_s))
                out.append(max(0, min(top, q)))
        return out


def h_expectation(m, v, params) -> np.ndarray:
    """E[h(V)], V ~ N(m, v), h = phi'^2/phi = phi_max beta^2 sigma (1 - sigma)^2, by the
    trapezoid rule over +-12 s.d. (4001 nodes; v = 0 gives h(m)).  Broadcasts m, v."""
    m, v = np.broadcast_arrays(np.asarray(m, float), np.asarray(v, float))
    beta, theta, phi_max = float(params.beta), float(params.theta), float(params.phi_max)
    z = np.linspace(-12.0, 12.0, 4001)
    wz = np.exp(-0.5 * z * z)
    wz[0] *= 0.5
    wz[-1] *= 0.5
    wz *= (z[1] - z[0]) / math.sqrt(2.0 * math.pi)
    out = np.empty(m.shape)
    for idx in np.ndindex(m.shape):
        V = m[idx] + math.sqrt(max(v[idx], 0.0)) * z
        a = beta * (V - theta)
        e = np.exp(-np.abs(a))
        d = 1.0 / (1.0 + e)
        s = np.where(a >= 0, d, e * d)
        c = np.where(a >= 0, e * d, d)
        out[idx] = phi_max * beta * beta * float(np.sum(wz * s * c * c))
    return out


def gamma_table(k: Constants) -> list[list[int]]:
    """gamma_s = 1/E[h] at m_i = -32 + i 64/2**m_bits mV, v_j = j 64/2**v_bits mV^2, nearest
    (half up) on U(bits).F, saturated to the top code (docs/datapath.md, *How gamma_s is
    obtained on chip*)."""
    nm, nv = 1 << k.gm_bits, 1 << k.gv_bits
    m = M_LO + np.arange(nm) * (64.0 / nm)
    v = np.arange(nv) * (64.0 / nv)
    eh = h_expectation(m[:, None], v[None, :], k.p)
    top = (1 << k.g_bits) - 1
    out = []
    for i in range(nm):
        row = []
        for j in range(nv):
            g = math.inf if eh[i, j] <= 0 else 1.0 / eh[i, j]
            row.append(top if g * 2.0 ** k.F_g >= top else
                       min(top, round_half_up(Fraction(g) * (1 << k.F_g))))
        out.append(row)
    return out


# ----------------------------------------------------------------------------- the step
#: the configurable rounding modes and the sites they apply to (config sections)
ROUNDING_MODES = ("floor", "trunc", "half_up", "half_even", "stochastic")
ROUNDING_SITES = ("traces", "usp", "potential", "bracket", "post", "weights")

COUNTER_NAMES = ("traces", "usp", "potential", "gamma_s", "post", "bracket", "weights_sat",
                 "weights_under")


class Oracle:
    """``init(w_init, trials)`` -> state; ``step(state, X, Y, seed)`` advances it in place."""

    def __init__(self, tree, params, rates, eta, gamma_lut=None):
        self.k = Constants(tree, params, rates, eta, gamma_lut)
        #: per configurable rounding site (traces, usp, potential, bracket, post, weights):
        #: how many roundings it made, and in how many the result differed from what each
        #: other mode would have given (``rounding[site][other mode]``): a run shows that
        #: its mode mattered at a site only where these counts are nonzero
        self.rounding = {site: {"ops": 0, **{m: 0 for m in ROUNDING_MODES}}
                         for site in ROUNDING_SITES}
        #: sigma lookups, and those where V fell between nodes (interpolation != node)
        self.lookups = {"sigma": 0, "interp_differs": 0}

    def _rs(self, site: str, x: int, s: int, mode: str, w: int | None) -> int:
        """``rs`` at a configurable rounding site, recording what the other modes give."""
        out = rs(x, s, mode, w)
        if s > 0:
            st = self.rounding[site]
            st["ops"] += 1
            for m in ROUNDING_MODES:
                if m == "stochastic":
                    # any stochastic word: floor or one up, so it differs from a mode
                    # whenever a remainder is left
                    st[m] += int(x & ((1 << s) - 1) != 0)
                else:
                    st[m] += int(rs(x, s, m) != out)
        return out

    # -- init: weights rounded to nearest (halves to even) on the accumulator grid, saturated
    def init(self, w_init, trials) -> dict:
        k = self.k
        w_init = np.asarray(w_init, float)
        B, M, N = w_init.shape
        st = {"trials": [int(t) for t in trials], "step": 0,
              "counts": {c: 0 for c in COUNTER_NAMES}, "first": {c: -1 for c in COUNTER_NAMES}}
        for f in ("a_m", "a_s", "x"):
            st[f] = [[0] * N for _ in range(B)]
        for f in ("gamma", "v", "sigma", "err", "post", "spikes"):
            st[f] = [[0] * M for _ in range(B)]
        st["acc"] = [[[0] * N for _ in range(M)] for _ in range(B)]
        n = 0
        for b in range(B):
            for j in range(M):
                for i in range(N):
                    q = round_half_even(Fraction(float(w_init[b, j, i])) * (1 << (k.F_w + k.extra)))
                    st["acc"][b][j][i], c = clip(q, k.acc_lo, k.acc_hi)
                    n += c
        self._count(st, "weights_sat", n, 0)
        return st

    @staticmethod
    def _count(st, name, n, step):
        if n:
            st["counts"][name] += n
            if st["first"][name] < 0:
                st["first"][name] = step

    def _sigmoid(self, v: int) -> int:
        k = self.k
        s = k.V_bits - k.lut_bits
        off = min(max(v, k.V_lo), k.V_hi) - k.V_lo
        i, r = off >> s, off & ((1 << s) - 1)
        t = k.sigma_lut
        between = rs((t[i + 1] - t[i]) * r, s, "half_up")
        self.lookups["sigma"] += 1
        self.lookups["interp_differs"] += int(between != 0)
        if not k.interp:
            return t[i]                                   # the node at or below V
        return t[i] + between

    @staticmethod
    def _position(value: int, frac: int, lo: int, span_log2: int, lut_bits: int):
        pos = rs(value - lo, frac + span_log2 - lut_bits - INTERP, "floor")
        top = ((1 << lut_bits) - 1) << INTERP
        clamped = pos < 0 or pos > top
        pos = min(max(pos, 0), top)
        j = min(pos >> INTERP, (1 << lut_bits) - 2)
        return j, pos - (j << INTERP), clamped

    def _gamma(self, w_row) -> tuple[int, int]:
        k = self.k
        ws = [rs(w, k.F_w - STAT_W_F, "floor") for w in w_row]
        m = sum(a * r for a, r in zip(ws, k.rates_q))                       # F 20 + 8
        vv = sum(a * a * r for a, r in zip(ws, k.rates_q))                  # F 40 + 8
        vv = rs(vv, 2 * STAT_W_F + RATE_F - STAT_V_F, "floor")              # F 24
        vq = rs(vv * k.inv_ceps_mant, k.inv_ceps_shift, "floor")            # mV^2, F 24
        mf = STAT_W_F + RATE_F
        jm, tm, cm = self._position(m, mf, M_LO << mf, M_SPAN_LOG2, k.gm_bits)
        jv, tv, cv = self._position(vq, STAT_V_F, 0, V_SPAN_LOG2, k.gv_bits)
        g = k.gamma_lut
        one = 1 << INTERP
        lo = g[jm][jv] * (one - tv) + g[jm][jv + 1] * tv
        hi = g[jm + 1][jv] * (one - tv) + g[jm + 1][jv + 1] * tv
        return rs(lo * (one - tm) + hi * tm, 2 * INTERP, "half_up"), int(cm or cv)

    def step(self, st: dict, X, Y, seed: int) -> None:
        k = self.k
        kk = st["step"]
        B, M, N = len(st["acc"]), len(st["acc"][0]), len(st["acc"][0][0])

        def w_(site, index, mode):
            return word(seed, STREAMS[site], kk, index) if mode == "stochastic" else None

        n = {c: 0 for c in COUNTER_NAMES}
        for b in range(B):
            tb = st["trials"][b] << 32
            # 1. traces
            for name, dec, off in (("a_m", k.decay_m, 0), ("a_s", k.decay_s, 1)):
                row = st[name][b]
                for i in range(N):
                    a = self._rs("traces", row[i] * dec, k.F_dec, k.r_a,
                                 w_("trace", tb + 2 * i + off, k.r_a))
                    a += int(X[b][i]) << k.F_a
                    row[i], c = clip(a, 0, k.a_max)
                    n["traces"] += c
            # 2. USP
            x = st["x"][b]
            for i in range(N):
                xi = self._rs("usp", (st["a_m"][b][i] - st["a_s"][b][i]) * k.usp_mant,
                        k.F_a + k.usp_shift - k.F_x, k.r_x, w_("usp", tb + i, k.r_x))
                x[i], c = clip(xi, k.x_lo, k.x_hi)
                n["usp"] += c
            homo = [self._rs("bracket", x[i] * k.homo_mant[i], k.F_x + k.homo_shift - k.F_B, k.r_B,
                       w_("homo", tb + i, k.r_B)) for i in range(N)]
            for j in range(M):
                acc = st["acc"][b][j]
                # 3. visible weights
                w = [a >> k.extra for a in acc]
                # 4. V
                psh = k.F_w + k.F_x - k.F_V - V_GUARD
                vsum = sum(rs(w[i] * x[i], psh, "floor") for i in range(N))
                v = self._rs("potential", vsum, V_GUARD, k.r_V, w_("potential", tb + j, k.r_V))
                v, c = clip(v, k.V_lo, k.V_hi)
                n["potential"] += c
                st["v"][b][j] = v
                # 5. gamma_s every epoch
                if kk % k.epoch == 0:
                    st["gamma"][b][j], c = self._gamma(w)
                    n["gamma_s"] += c
                g = st["gamma"][b][j]
                # 6. sigma, 7. error
                sig = self._sigmoid(v)
                st["sigma"][b][j] = sig
                e = (int(Y[b][j]) << k.F_e) - rs(sig * k.phidt_mant,
                                                 k.F_s + k.phidt_shift - k.F_e, "half_up")
                st["err"][b][j] = e
                # 8. post factor
                lim_a = 1 << (61 - k.F_e)
                pa, c1 = clip(rs(g * ((1 << k.F_s) - sig), k.F_g + k.F_s - POST_A_F, "half_up"),
                              -lim_a, lim_a)
                lim_b = 1 << (62 - max(k.mb, 1) - 1)
                pb, c2 = clip(rs(pa * e, POST_A_F + k.F_e - POST_B_F, "half_up"), -lim_b, lim_b)
                p = self._rs("post", pb * k.eta_mant, POST_B_F + k.eta_shift - k.F_P, k.r_P,
                       w_("post", tb + j, k.r_P))
                p, c3 = clip(p, k.P_lo, k.P_hi)
                n["post"] += c1 + c2 + c3
                st["post"][b][j] = p
                # 9. bracket
                cwv = self._rs("bracket", v * k.cw_mant, k.F_V + k.cw_shift - k.F_B, k.r_B,
                               w_("cw_v", tb + j, k.r_B))
                cwv, c = clip(cwv, k.B_lo, k.B_hi)
                n["bracket"] += c
                br = []
                for i in range(N):
                    het = self._rs("bracket", cwv * w[i], k.F_w, k.r_B,
                                   w_("hetero", tb + j * N + i, k.r_B))
                    bi, c = clip(homo[i] - k.cu_q + het, k.B_lo, k.B_hi)
                    n["bracket"] += c
                    br.append(bi)
                # 10. update
                for i in range(N):
                    pbr = p * br[i]
                    dw = self._rs("weights", pbr, k.F_P + k.F_B - k.F_w - k.extra, k.r_w,
                            w_("weights", tb + j * N + i, k.r_w))
                    if dw == 0 and pbr != 0:
                        n["weights_under"] += 1
                    acc[i], c = clip(acc[i] + dw, k.acc_lo, k.acc_hi)
                    n["weights_sat"] += c
                # 11. student spike: Bernoulli(phi_max dt sigma) on 53 bits
                thr = rs(sig * k.phidt_mant, k.F_s + k.phidt_shift - 53, "floor")
                st["spikes"][b][j] = int(draw53(seed, STREAMS["student"], kk, tb + j) < thr)
        for c in COUNTER_NAMES:
            self._count(st, c, n[c], kk)
        st["step"] = kk + 1


# ----------------------------------------------------------------------------- spikes (float)
def teacher_and_inputs(params, rates, w_target, trials, seed, steps, poisson_rate=None):
    """Input spikes X (T, B, N), teacher spikes Y (T, B, M), and the teacher probabilities
    p (T, B, M) of docs/datapath.md *Randomness* / docs/model.md#teacher, in plain Python floats.

    Input spike: draw53(seed, input, k, t<<32|i) < floor(r_i dt 2**53).  Float64 traces
    a <- d a + X_k (bin-k spike included), x = (a_m - a_s)/(tau_m - tau_s), V* = sum_i w*_i x_i
    in ascending i from 0.0, p = (phi_max sigma(V*)) dt with sigma = 1/(1 + exp(-beta(V* -
    theta))); teacher spike: draw53(seed, teacher, k, t<<32|j) < floor(p 2**53).
    """
    dt = float(params.dt)
    dm = math.exp(-dt / float(params.tau_m))
    ds = math.exp(-dt / float(params.tau_s))
    scale = 1.0 / (float(params.tau_m) - float(params.tau_s))
    B, M, N = len(trials), np.shape(w_target)[1], len(rates)
    thr_in = [bernoulli_threshold(float(r) * dt) for r in rates]
    X = np.zeros((steps, B, N), np.int64)
    Y = np.zeros((steps, B, M), np.int64)
    Pr = np.zeros((steps, B, M))
    am = [[0.0] * N for _ in range(B)]
    as_ = [[0.0] * N for _ in range(B)]
    for kk in range(steps):
        for b, t in enumerate(trials):
            tb = int(t) << 32
            x = []
            for i in range(N):
                s = int(draw53(seed, STREAMS["input"], kk, tb | i) < thr_in[i])
                X[kk, b, i] = s
                am[b][i] = dm * am[b][i] + float(s)
                as_[b][i] = ds * as_[b][i] + float(s)
                x.append((am[b][i] - as_[b][i]) * scale)
            for j in range(M):
                if poisson_rate is not None:
                    p = float(poisson_rate) * dt
                else:
                    v = 0.0
                    for i in range(N):
                        v += float(w_target[b][j][i]) * x[i]
                    p = float(params.phi_max) * (1.0 / (1.0 + math.exp(-(float(params.beta)
                                                                        * (v - float(params.theta)))))) * dt
                Pr[kk, b, j] = p
                Y[kk, b, j] = int(draw53(seed, STREAMS["teacher"], kk, tb | j) < bernoulli_threshold(p))
    return X, Y, Pr
