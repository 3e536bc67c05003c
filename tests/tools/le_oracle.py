"""An independent integer oracle of the learning-engine mode (``kind:
learning_engine``).

:class:`Oracle` is a scalar, plain-Python-int implementation of one step of the learning
neuron and of Lava 0.10's ``LearningDense`` (bit-approximate model) written from
``docs/learning_engine.md`` ("The learning neuron", "What the emulator replicates of
LearningDense").  It shares no code with ``emulator/``: it parses the rule strings itself
(``Design.rule`` / ``Design.rule_dd``, the strings Lava would parse), builds its own sigma
table from the neuron parameters, and takes only the *integers the host programs into the
chip* from the design (decays, mantissas and shifts, tags, the y2 constant) -- those are
pinned to their closed forms separately (``tests/emulator/test_discretize_math.py``).  Randomness:
the counter RNG's raw words (``fixedpoint.rng.random_bits``) and Lava's numpy generators
(``numpy.random.default_rng``) drawn the way the doc says.

The designs the oracle is run on (:data:`DESIGNS`, the shipped ones, and
:data:`OPTION_DESIGNS`, every option the shipped configs leave at one value) are here as
well: ``tests/tools/option_coverage.py`` reads the values they set.  The comparisons with
the emulator are ``tests/emulator/learning/test_le_oracle.py``.
"""
from __future__ import annotations

import math
import re

import numpy as np

from emulator.hwconfig import load
from emulator.params import NeuronParams
from fixedpoint import rng


def hu(x: int, s: int) -> int:
    """x / 2**s rounded half up (toward +inf), s >= 0 (the doc's "round half up")."""
    return x if s == 0 else (x + (1 << (s - 1))) >> s


def clip(x: int, lo: int, hi: int) -> int:
    return lo if x < lo else hi if x > hi else x


def word(seed: int, stream: int, k: int, index: int) -> int:
    """One raw 64-bit word of the counter RNG (the only emulator-side code used)."""
    return int(rng.random_bits(seed, stream, k, index))

_PRODUCT = re.compile(r"^(\d+)\*2\^(-?\d+)\*(y0|x0|u\d+)((?:\*(?:\([a-z0-9]+[+-]\d+\)|[a-z0-9]+))*)$")


def parse_rule(s: str):
    """Lava's sum-of-products string -> [(signed mantissa, exponent, dependency,
    [(variable, constant), ...])].  Only the forms the doc uses: ``m*2^e*dep*f*...`` with
    factors ``v`` or ``(v+c)`` / ``(v-c)``."""
    if not s:
        return []
    s = s.replace(" ", "")
    terms, depth, cur = [], 0, ""
    for i, ch in enumerate(s):           # split at + / - outside parentheses and exponents
        if ch in "+-" and depth == 0 and i > 0 and s[i - 1] != "^":
            terms.append(cur)
            cur = ""
        depth += (ch == "(") - (ch == ")")
        cur += ch
    terms.append(cur)
    out = []
    for term in terms:
        sign, term = ("-", term[1:]) if term[0] == "-" else ("+", term.lstrip("+"))
        m = _PRODUCT.match(term)
        assert m, term
        mant, exp, dep, rest = int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)
        facs = []
        for f in re.findall(r"\*(\([a-z0-9]+[+-]\d+\)|[a-z0-9]+)", rest):
            if f.startswith("("):
                v, c = re.match(r"\(([a-z0-9]+)([+-]\d+)\)", f).groups()
                facs.append((v, int(c)))
            else:
                facs.append((f, 0))
        out.append(((-1 if sign == "-" else 1) * mant, exp, dep, facs))
    return out


class Oracle:
    """One trial set of the learning-engine mode, every value a Python int.

    ``d`` is read only for what the host programs: ``d.engine`` / ``d.neuron`` widths,
    ``dm, ds, vk_mant/shift, phidt_mant/shift, ginv_mant/shift, k_mant/shift, ek_frac,
    vq_mant/shift``,
    ``tags``, ``k_x``, ``x1_tau``, ``x2_tau``, ``y2_const``, ``all_y0`` and the rule strings.
    Every engine option is implemented from the doc: learning epochs of ``t_epoch`` steps
    ("Learning epochs"), the hidden-bits carry and the periodic flush ``u<k>`` (read off the
    rule strings), and the per-synapse roundings ("Per-synapse roundings").

    ``stats`` records what the run exercised (so a design that claims to cover an option can
    be checked to have reached it): the largest event backlogs ``pend_max``, the products of
    each rule that moved an accumulator (``hits``), the flush epochs, the roundings that no
    single shared random number could have produced (``per_synapse_witness``), the sigma
    lookups where the table's nearest node differs from the node below (``sigma_*``).
    """

    def __init__(self, d, seed: int, trials, w0, hbar0):
        e, nf = d.engine, d.neuron
        self.e, self.nf, self.d = e, nf, d
        # the reciprocal's seed table (doc: "gamma_s without a division")
        f = nf.word_bits - 2
        self.rtab = [int(math.floor(2.0 ** f / (1.0 + (i + 0.5) / 256) + 0.5))
                     for i in range(256)]
        self.seed = int(seed)
        self.trials = [int(t) for t in trials]
        B, M, N = len(self.trials), len(w0[0]), len(w0[0][0])
        self.B, self.M, self.N = B, M, N
        # "Initial weights are rounded to even integers because the first run_spk
        # truncates the lowest bit"
        self.w = [[[(int(w0[b][m][i]) >> 1) << 1 for i in range(N)] for m in range(M)]
                  for b in range(B)]
        # tag_2 = the host's offset + residual (doc: "Hidden precision bits")
        self.dtag = [[[d.d_offset] * N for _ in range(M)] for _ in range(B)]
        self.x = [[[0] * N for _ in range(2)] for _ in range(B)]         # x1, x2
        self.a_buff = [[0] * M for _ in range(B)]
        self.yr = [[[0] * M for _ in range(3)] for _ in range(B)]
        self.tx = [[0] * N for _ in range(B)]        # within-epoch step of the last pre spike
        self.ty = [[0] * M for _ in range(B)]        # ... of the last bap
        # neuron
        self.hbar = [[int(hbar0[b][m]) for m in range(M)] for b in range(B)]
        self.gamma = [[self._gamma(self.hbar[b][m])[0] for m in range(M)] for b in range(B)]
        z = lambda: [[0] * M for _ in range(B)]  # noqa: E731
        self.a_m, self.a_s, self.v, self.sigma, self.err, self.p = z(), z(), z(), z(), z(), z()
        self.sent, self.carry = z(), z()
        self.pend = [[[0, 0] for _ in range(M)] for _ in range(B)]
        self.events = [[[0, 0] for _ in range(M)] for _ in range(B)]
        self.ncount = {"potential_saturation": 0, "post_carry": 0, "vq_saturation": 0,
                       "gamma_saturation": 0, "carry_saturation": 0, "word_saturation": 0,
                       "input_saturation": 0}
        self.scount = {"tag_saturation": 0, "weight_saturation": 0, "acc_saturation": 0,
                       "trace_saturation": 0}
        # Lava's generators (doc table "Random numbers"): one draw in each constructor
        self.gx = [np.random.default_rng(lava_seed(seed, t)) for t in self.trials]
        self.gy = [np.random.default_rng(lava_seed(seed, t) + 2) for t in self.trials]
        self.gw = np.random.default_rng(e.sr_seed)
        for g in self.gx + self.gy + [self.gw]:
            g.random()
        self.lut = sigma_nodes(d.params, nf)
        self.dw_rule = parse_rule(d.rule)
        self.dd_rule = parse_rule(d.rule_dd)
        # the rule set's one u<k> (Lava: one per rule set); u0 (k = 0) ticks every epoch
        ks = {int(dep[1:]) for _, _, dep, _ in self.dw_rule + self.dd_rule if dep[0] == "u"}
        assert len(ks) <= 1, ks
        self.u_k = ks.pop() if ks else 0
        self.y_event = 2 ** (e.trace_bits - 1)
        self.y_offset = 2 ** (e.trace_bits - 1)
        self.tags = [int(t) for t in d.tags]
        self.stats = {"pend_max": [0, 0], "hits": {}, "flush_epochs": 0, "epochs": 0,
                      "per_synapse_witness": {"w": 0, "d": 0, "x": 0},
                      "sigma_lookups": 0, "sigma_nearest_not_below": 0,
                      "sigma_plain_not_interp": 0, "second_spike_impulses": 0,
                      "bap_before_last": 0, "level_max": [0, 0], "y_decayed": 0}

    # ------------------------------------------------------------------ neuron
    def _gamma(self, hbar: int):
        """1 / hbar ~ y 2**-(F + e) (clz, seed table, two Newton steps in words), times
        ginv ~ 1 / (phi_max beta^2), into U(gamma_bits).gamma_frac."""
        nf, d = self.nf, self.d
        top = 2 ** nf.gamma_bits - 1
        if hbar <= 0:
            return top, True
        f = nf.word_bits - 2
        e = hbar.bit_length() - 1
        xm = hbar << (f - e)
        y = self.rtab[(xm >> (f - 8)) - 256]
        for _ in range(2):
            y += hu(y * ((1 << f) - hu(xm * y, f)), f)
        sh = d.ginv_shift + f + e - nf.gamma_frac - nf.hbar_frac
        g = hu(y * d.ginv_mant, sh) if sh > 0 else (y * d.ginv_mant) << -sh
        return min(g, top), g > top

    def _w(self, x: int, unsigned: bool = False) -> int:
        """x in one neuron word (signed, or unsigned), clips counted."""
        wb = self.nf.word_bits
        lo, hi = (0, 2 ** wb - 1) if unsigned else (-(2 ** (wb - 1)), 2 ** (wb - 1) - 1)
        if not lo <= x <= hi:
            self.ncount["word_saturation"] += 1
            return clip(x, lo, hi)
        return x

    def sigma_of(self, v: int) -> int:
        nf = self.nf
        sub = nf.v_frac - nf.sigma_node_frac
        span = nf.sigma_span_mv << nf.v_frac
        pos = clip(v + span, 0, 2 * span - 1)
        j, t = pos >> sub, pos & ((1 << sub) - 1)
        interp = self.lut[j] + hu((self.lut[j + 1] - self.lut[j]) * t, sub)
        plain = self.lut[hu(pos, sub)]            # the nearest node, halves up
        st = self.stats
        st["sigma_lookups"] += 1
        st["sigma_nearest_not_below"] += int(self.lut[hu(pos, sub)] != self.lut[j])
        st["sigma_plain_not_interp"] += int(plain != interp)
        return interp if nf.sigma_interpolate else plain

    def _send_events(self, b: int, m: int, pos: bool, neg: bool, k: int):
        """What the neuron sends for this step's events (doc: "Learning epochs"): events
        wait in ``pend``; default coding: the bap at once unless one went out this epoch, a
        negative event as y1 on the epoch's last step, one per epoch; ``all_y0`` (flush):
        any pending event sends the bap once per epoch, the last step carries the signs on
        y2 (positive) and y1 (negative).  Returns (bap, y1, y2)."""
        d, te = self.d, self.e.t_epoch
        pend = self.pend[b][m]
        pend[0] += int(pos)
        pend[1] += int(neg)
        st = self.stats
        st["pend_max"] = [max(st["pend_max"][0], pend[0]), max(st["pend_max"][1], pend[1])]
        if k % te == 0:                       # the epoch's first step
            self.sent[b][m] = 0
        last = (k + 1) % te == 0
        if d.all_y0:
            bap = int(pend[0] + pend[1] > 0 and self.sent[b][m] == 0)
            self.sent[b][m] |= bap
            go_p = int(last and self.sent[b][m] == 1 and pend[0] > 0)
            go_n = int(last and self.sent[b][m] == 1 and pend[1] > 0)
            pend[0] -= go_p
            pend[1] -= go_n
            self.events[b][m][0] += go_p
            self.events[b][m][1] += go_n
            return bap, self.y_event * go_n, self.y_event * go_p
        bap = int(pend[0] > 0 and self.sent[b][m] == 0)
        pend[0] -= bap
        self.sent[b][m] |= bap
        go_n = int(last and pend[1] > 0)
        pend[1] -= go_n
        self.events[b][m][0] += bap
        self.events[b][m][1] += go_n
        st["bap_before_last"] += int(bap and not last)
        return bap, self.y_event * go_n, d.y2_const

    def neuron(self, b: int, m: int, y: int, k: int):
        """Steps 1-7 of "The learning neuron"; returns (bap, y1, y2, y3)."""
        nf, d = self.nf, self.d
        fa, fd, fv, fs, fe = nf.filter_frac, nf.decay_frac, nf.v_frac, nf.sigma_frac, nf.error_frac
        a_in = self.a_buff[b][m]
        if not -(2 ** 15) <= a_in <= 2 ** 15 - 1:     # Dense's a_out: 16 bits
            self.ncount["input_saturation"] += 1
            a_in = clip(a_in, -(2 ** 15), 2 ** 15 - 1)
        last = (k + 1) % self.e.t_epoch == 0
        # 1. current filters
        self.a_m[b][m] = self._w(hu(self.a_m[b][m] * d.dm, fd) + (a_in << fa))
        self.a_s[b][m] = self._w(hu(self.a_s[b][m] * d.ds, fd) + (a_in << fa))
        # 2. V = L s (d_m A_m - d_s A_s), S(v_bits).v_frac, saturated (counted)
        diff = self._w(hu(self.a_m[b][m] * d.dm - self.a_s[b][m] * d.ds, fd))
        v = hu(diff * d.vk_mant, fa + d.vk_shift - fv)
        vtop = 2 ** (nf.v_bits - 1)
        if not -vtop <= v <= vtop - 1:
            self.ncount["potential_saturation"] += 1
            v = clip(v, -vtop, vtop - 1)
        # 3. sigma, 1 - sigma
        s = self.sigma_of(v)
        s1 = (1 << fs) - s
        # 4. error
        e = (y << fe) - hu(s * d.phidt_mant, fs + d.phidt_shift - fe)
        # 5. running mean of sigma (1 - sigma)^2 and gamma_s every gamma_every steps
        h = hu(hu(s * s1, fs) * s1, fs)
        hb = self.hbar[b][m]
        hb = hb + hu(self._w((h << (nf.hbar_frac - fs)) - hb), nf.hbar_tau_shift)
        self.hbar[b][m] = hb
        if k % nf.gamma_every == 0:
            g, sat = self._gamma(hb)
            self.gamma[b][m] = g
            self.ncount["gamma_saturation"] += int(sat)
        # 6. the post amount in units of the step unit, plus what earlier steps left
        #    (the carry); P = eta gamma_s (1 - sigma) e, or eta (1 - sigma) e for euclid
        fp = nf.prob_frac
        gam = self.gamma[b][m] if d.mapping.rule == "approx" else 1 << nf.gamma_frac
        g1 = self._w(hu(gam * s1, fs), unsigned=True)                  # U.gamma_frac
        sh = fe + d.k_shift - d.ek_frac
        ek = self._w(hu(abs(e) * d.k_mant, sh) if sh > 0 else (abs(e) * d.k_mant) << -sh)
        sh = nf.gamma_frac + d.ek_frac - fp
        a = self._w(hu(g1 * ek, sh) if sh > 0 else (g1 * ek) << -sh)
        amount = self._w((a if e > 0 else -a) + self.carry[b][m])
        idx = (self.trials[b] << 32) | m
        r = word(self.seed, 32, k, idx) >> (64 - fp)
        one = 1 << fp
        if d.mapping.encoding == "graded":
            # on the epoch's last step a level 0..levels: positive amounts in units
            # unit_ratio << fp, negative in 1 << fp; below the top level rounded up with
            # probability rem / unit (the top fp bits r of the word: r * ratio < rem); at
            # the top the excess is left.  On the epoch's other steps nothing is sent and
            # the whole amount waits.
            if last:
                ratio = d.mapping.unit_ratio if amount > 0 else 1
                unit = ratio * one
                n, rem = divmod(abs(amount), unit)
                if n >= d.mapping.levels:
                    level, left = d.mapping.levels, abs(amount) - d.mapping.levels * unit
                else:
                    level, left = n + int(r * ratio < rem), 0
                left = left if amount > 0 else -left
            else:
                level, left = 0, amount
            bap = int(amount > 0 and level > 0)
            lm = self.stats["level_max"]
            lm[1 - bap] = max(lm[1 - bap], level)
            y1 = d.mapping.y_unit * level
            y2 = d.y2_const
            self.events[b][m][0 if bap else 1] += level
            p = abs(amount)
            vmul = level if d.mapped_rule == "approx" else 0   # euclid: y3 = 64
            self.ncount["post_carry"] += int(left != 0 and last)
        else:
            # an event with probability |amount|; beyond 1 it is sure and the excess left
            if abs(amount) > one:
                event, left = True, amount - one if amount > 0 else amount + one
            else:
                event, left = r < abs(amount), 0
            p = min(abs(amount), one)
            bap, y1, y2 = self._send_events(b, m, event and amount > 0, event and amount < 0, k)
            vmul = 1 if d.mapped_rule == "approx" else 0
            self.ncount["post_carry"] += int(left != 0)
        ctop = 2 ** (nf.carry_bits - 1) - 1
        if not -ctop <= left <= ctop:
            self.ncount["carry_saturation"] += 1
            left = clip(left, -ctop, ctop)
        self.carry[b][m] = left
        # 7. Vq = (level) V / v_lsb, stochastically rounded with the low bits of stream 33
        sh = fv + d.vq_shift
        vq = (vmul * v * d.vq_mant + (word(self.seed, 33, k, idx) & ((1 << sh) - 1))) >> sh
        if not -self.y_offset <= vq <= self.y_offset - 1:
            self.ncount["vq_saturation"] += 1
            vq = clip(vq, -self.y_offset, self.y_offset - 1)
        self.v[b][m], self.sigma[b][m], self.err[b][m], self.p[b][m] = v, s, e, p
        return bap, y1, y2, vq + self.y_offset

    # ------------------------------------------------------------------ LearningDense
    def _apply(self, rule, acc: int, vy0: dict, vu: dict, y0: int, u: int, which: str):
        """Lava's applier: dependency (y0: a bap this epoch, factors at the bap's step;
        u<k>: the tick, factors at the epoch's end) times clipped factors, times the signed
        mantissa, floor-shifted right by max(0, sum of widths + mantissa bits - accumulator
        bits), shifted left by exp + acc_shift, clipped; the sum clipped.  Returns (acc,
        clipped)."""
        e = self.e
        lo, hi = -(2 ** e.accumulator_bits) - 1, 2 ** e.accumulator_bits - 1
        clipped = False
        hits = self.stats["hits"]
        for q, (mant, exp, dep, facs) in enumerate(rule):
            assert dep == "y0" or dep[0] == "u", dep
            cur, vals = (y0, vy0) if dep == "y0" else (u, vu)
            width = 0
            for var, c in facs:
                wd = e.trace_bits if var in ("x1", "x2", "y1", "y2", "y3") else e.synaptic_bits
                width += wd
                cur *= clip(vals[var] + c, -(2 ** wd), 2 ** wd - 1)
            sh = max(0, width + e.scale_mant_bits - e.accumulator_bits)
            cur = ((cur * mant) >> sh) << (exp + e.acc_shift)
            if cur:
                hits[(which, q)] = hits.get((which, q), 0) + 1
            new = clip(acc + clip(cur, lo, hi), lo, hi)
            clipped |= new != acc + cur
            acc = new
        return acc, clipped

    @staticmethod
    def _decay(v: int, dec: float, r: float) -> int:
        ip = dec * v                                   # float64, as Lava
        return int(math.floor(ip)) + int(r < ip % 1)

    @staticmethod
    def _round(acc: int, shift: int, r: float) -> int:
        """floor(acc / 2**s) + (r < frac(acc / 2**s)), exactly."""
        return (acc >> shift) + int(r * 2 ** shift < (acc & ((1 << shift) - 1)))

    @staticmethod
    def _round_word(acc: int, shift: int, wd: int) -> int:
        """Per-synapse: (acc >> s) + (the word's top s bits < acc mod 2**s)."""
        return (acc >> shift) + int((wd >> (64 - shift)) < (acc & ((1 << shift) - 1)))

    @staticmethod
    def _unit(wd: int) -> float:
        """A word as a uniform in [0, 1): its top 53 bits times 2**-53 (exact)."""
        return (wd >> 11) * 2.0 ** -53

    @staticmethod
    def _witness(pairs) -> int:
        """1 if (fraction, rounded up) pairs need more than one random number: a larger
        fraction rounded down where a smaller one rounded up."""
        ups = [f for f, up in pairs if up and 0 < f]
        downs = [f for f, up in pairs if not up and 0 < f]
        return int(bool(ups and downs and max(downs) > min(ups)))

    def step(self, k: int, X, Y, randoms=None):
        """Global step k: X (B, N), Y (B, M) spikes.  Lava time step t = k + 1.
        ``randoms = (r_x (B,), r_y (B,), r_w)`` replaces Lava's draws (constructed states)."""
        e, d = self.e, self.d
        B, M, N = self.B, self.M, self.N
        te = e.t_epoch
        ts = k % te + 1                                 # within-epoch step
        last = (k + 1) % te == 0
        tmax = 2 ** e.trace_bits - 1
        out = [[self.neuron(b, m, int(Y[b][m]), k) for m in range(M)] for b in range(B)]
        if randoms is None:
            rx = [g.random(2)[1] for g in self.gx]     # draw 2t (two advances per step)
            ry = [g.random(2)[1] for g in self.gy]
            rw = self.gw.random() if last else None     # one advance per learning epoch
        else:
            rx, ry, rw = ([float(r) for r in randoms[0]], [float(r) for r in randoms[1]],
                          float(randoms[2]))
        # ---- spiking phase, every step
        for b in range(B):
            # Dense: a_buff = W . X(k) with the pre-learning weights
            self.a_buff[b] = [sum(self.w[b][m][i] * int(X[b][i]) for i in range(N))
                              for m in range(M)]
            for i in range(N):
                if X[b][i]:
                    if self.tx[b][i]:       # a second spike this epoch: its impulse at once
                        self.stats["second_spike_impulses"] += 1
                        for j in range(2):
                            self.scount["trace_saturation"] += int(self.x[b][j][i] + d.k_x > tmax)
                            self.x[b][j][i] = min(self.x[b][j][i] + d.k_x, tmax)
                    self.tx[b][i] = ts
            for m in range(M):
                if out[b][m][0]:
                    self.ty[b][m] = ts
                for j in range(3):                     # only the last step's y count
                    self.yr[b][j][m] = out[b][m][1 + j]
        if not last:
            return
        # ---- learning phase at the epoch's end
        self.stats["epochs"] += 1
        dec = (float(np.exp(-1 / d.x1_tau)), float(np.exp(-1 / d.x2_tau)))
        dec_y = float(np.exp(-1 / e.y_tau))
        top = 2 ** (e.synaptic_bits - 1)
        u = int(((k + 1) // te) % (2 ** self.u_k) == 0)
        per_x = e.trace_rounding == "per_synapse"
        per_w = e.weight_rounding == "per_synapse"
        wpairs, dpairs = [], []
        for b in range(B):
            tb = self.trials[b] << 32
            # trace histories: index 0 as stored, t after within-epoch step t; one random
            # per trial (the epoch's last step's) or a word per trace and step
            xh = [[list(self.x[b][0]), list(self.x[b][1])]]
            yh = [[list(self.yr[b][j]) for j in range(3)]]
            for t in range(1, te + 1):
                kk = k - te + t                        # global step of within-epoch step t
                xs, ys = [], []
                for j in range(2):
                    row, pairs = [], []
                    for i in range(N):
                        r = (self._unit(word(self.seed, 36, kk, tb | (j * N + i))) if per_x
                             else rx[b])
                        x = self._decay(xh[-1][j][i], dec[j], r)
                        ip = dec[j] * xh[-1][j][i]
                        pairs.append((ip % 1, x > math.floor(ip)))
                        if self.tx[b][i] == t:
                            self.scount["trace_saturation"] += int(x + d.k_x > tmax)
                            x = min(x + d.k_x, tmax)
                        row.append(x)
                    xs.append(row)
                    self.stats["per_synapse_witness"]["x"] += self._witness(pairs) if per_x else 0
                for j in range(3):
                    row = []
                    for m in range(M):
                        r = (self._unit(word(self.seed, 37, kk, tb | (j * M + m))) if per_x
                             else ry[b])
                        row.append(self._decay(yh[-1][j][m], dec_y, r))
                        self.stats["y_decayed"] += int(row[-1] != yh[-1][j][m])
                    ys.append(row)
                xh.append(xs)
                yh.append(ys)
            self.x[b] = [list(xh[te][0]), list(xh[te][1])]
            for m in range(M):
                tym = self.ty[b][m]
                y0 = int(tym > 0)
                for i in range(N):
                    w, dd = self.w[b][m][i], self.dtag[b][m][i]
                    syn = {"w": w, "d": dd, "t": self.tags[i]}
                    vy0 = {"x1": xh[tym][0][i], "x2": xh[tym][1][i], "y1": yh[tym][0][m],
                           "y2": yh[tym][1][m], "y3": yh[tym][2][m], **syn}
                    vu = {"x1": xh[te][0][i], "x2": xh[te][1][i], "y1": yh[te][0][m],
                          "y2": yh[te][1][m], "y3": yh[te][2][m], **syn}
                    acc, c1 = self._apply(self.dw_rule, w << e.acc_shift, vy0, vu, y0, u, "dw")
                    mask = (1 << e.acc_shift) - 1
                    if per_w:
                        wn = self._round_word(acc, e.acc_shift,
                                              word(self.seed, 34, k, tb | (m * N + i)))
                        wpairs.append(((acc & mask) / 2 ** e.acc_shift, wn > acc >> e.acc_shift))
                    else:
                        wn = self._round(acc, e.acc_shift, rw)
                    if not -top <= wn <= top - 1:
                        self.scount["weight_saturation"] += 1
                        wn = clip(wn, -top, top - 1)
                    c2 = False
                    if self.dd_rule:
                        if u and self.u_k and dd != d.d_offset:
                            self.stats["flush_epochs"] += 1
                        acc_d, c2 = self._apply(self.dd_rule, dd << e.acc_shift, vy0, vu, y0, u,
                                                "dd")
                        if acc_d < 0:                  # tag_2 is unsigned
                            self.scount["tag_saturation"] += 1
                            acc_d = 0
                        if per_w:
                            dn = self._round_word(acc_d, e.acc_shift,
                                                  word(self.seed, 35, k, tb | (m * N + i)))
                            dpairs.append(((acc_d & mask) / 2 ** e.acc_shift,
                                           dn > acc_d >> e.acc_shift))
                        else:
                            dn = self._round(acc_d, e.acc_shift, rw)
                        if dn > top - 1:               # ... and 8 bits wide: [0, 255]
                            self.scount["tag_saturation"] += 1
                            dn = top - 1
                        self.dtag[b][m][i] = dn
                    self.scount["acc_saturation"] += int(c1 or c2)
                    self.w[b][m][i] = wn
            self.tx[b] = [0] * N
            self.ty[b] = [0] * M
        self.stats["per_synapse_witness"]["w"] += self._witness(wpairs) if per_w else 0
        self.stats["per_synapse_witness"]["d"] += self._witness(dpairs) if per_w else 0


def lava_seed(seed: int, trial: int) -> int:
    """The doc's per-trial rng_seed of the Loihi3FLearningRule."""
    return (seed * 1_000_003 + 4 * trial + 1) % (2 ** 31 - 8)


def sigma_nodes(params: NeuronParams, nf) -> list[int]:
    """The 2 * span * 2**node_frac + 1 sigma nodes over [-span, span] mV, U0.sigma_frac,
    rounded half up; logistic 1 / (1 + exp(-beta (V - theta)))."""
    n = 2 * nf.sigma_span_mv * 2 ** nf.sigma_node_frac + 1
    out = []
    for j in range(n):
        v = -nf.sigma_span_mv + j * 2.0 ** -nf.sigma_node_frac
        s = 1.0 / (1.0 + math.exp(-params.beta * (v - params.theta)))
        out.append(int(math.floor(s * 2 ** nf.sigma_frac + 0.5)))
    return out

#: The shipped graded design, the event coding, and the Euclidean rule on graded levels.
#: The graded cases pin 4 hidden bits: on this small, fast-learning task the config's
#: 'auto' would keep none, and the oracle must see tag_2, its offset and the carry.
DESIGNS = {"loihi2": {"mapping.hidden_bits": 4}, "loihi2_events": {},
           "loihi2_euclid": {"mapping.rule": "euclid", "mapping.hidden_bits": 4}}

#: Designs that exercise, through the oracle, every engine, neuron and mapping option the
#: shipped configs leave at one value: name -> (bundled config, overrides,
#: eta).  ``_exercised`` checks that each run really reached its option.
NEURON_FORMATS = {"neuron.filter_frac": 6, "neuron.decay_frac": 12, "neuron.v_frac": 6,
                  "neuron.v_bits": 14, "neuron.sigma_frac": 12, "neuron.sigma_span_mv": 32,
                  "neuron.sigma_node_frac": 1, "neuron.sigma_interpolate": False,
                  "neuron.error_frac": 12, "neuron.hbar_frac": 22, "neuron.hbar_tau_shift": 6,
                  "neuron.gamma_every": 16, "neuron.gamma_frac": 12, "neuron.gamma_bits": 20,
                  "neuron.prob_frac": 12, "neuron.mant_bits": 12, "neuron.g_cap": 1.0,
                  "neuron.carry_bits": 14, "neuron.word_bits": 22}
OPTION_DESIGNS = {
    # epochs of 8 steps, events: small events (c_ev 16 with 3 hidden bits) so that
    # backlogs of several events of both signs wait in pend; second pre spikes in an epoch
    "events_backlog_t8": ("loihi2_events", {"engine.t_epoch": 8, "mapping.c_ev": 16}, 5e-2),
    # the periodic flush u1 of 4 hidden bits (every event rides on the bap, its sign on y2 /
    # y1), epochs of 4 steps with backlogs; encoding 'auto' resolves to events here
    "events_flush_t4": ("loihi2_events", {"engine.t_epoch": 4, "mapping.hidden_bits": 4,
                                          "mapping.flush_log2": 1, "mapping.c_ev": 16,
                                          "mapping.encoding": "auto"}, 5e-2),
    # graded: 5 levels of 16, equal unit sizes, levels collected over epochs of 4 steps
    "graded_levels_t4": ("loihi2", {"engine.t_epoch": 4, "mapping.hidden_bits": 4,
                                    "mapping.levels": 5, "mapping.unit_ratio": 1,
                                    "mapping.y_unit": 16}, 5e-2),
    # graded without hidden bits (no tag_2: the update rounds straight onto w), ratio 7
    "graded_h0_ratio7": ("loihi2", {"mapping.hidden_bits": 0, "mapping.unit_ratio": 7,
                                    "mapping.levels": 2}, 5e-2),
    # per-synapse weight / tag_2 and trace roundings, epochs of 2 (trace words per step)
    "graded_per_synapse_t2": ("loihi2", {"engine.t_epoch": 2, "mapping.hidden_bits": 4,
                                         "engine.weight_rounding": "per_synapse",
                                         "engine.trace_rounding": "per_synapse"}, 5e-2),
    "events_per_synapse_h0_t3": ("loihi2_events", {"engine.t_epoch": 3, "mapping.hidden_bits": 0,
                                                   "engine.weight_rounding": "per_synapse",
                                                   "engine.trace_rounding": "per_synapse"}, 5e-2),
    # the plain sigma lookup (nearest node) on the shipped design, hidden bits 'auto' ...
    "plain_sigma": ("loihi2", {"neuron.sigma_interpolate": False}, 5e-2),
    # ... and every neuron format changed at once (a narrow carry that saturates)
    "neuron_formats": ("loihi2_events", NEURON_FORMATS, 5e-2),
    # engine widths other than Lava's, a y decay that matters (y_tau 40), another seed
    "engine_widths_t2": ("loihi2_events", {"engine.trace_bits": 8, "engine.synaptic_bits": 10,
                                           "engine.y_tau": 40, "engine.sr_seed": 11,
                                           "engine.t_epoch": 2}, 5e-2),
    "engine_accumulator": ("loihi2_events", {"engine.scale_mant_bits": 5,
                                             "engine.accumulator_bits": 17,
                                             "engine.acc_shift": 8, "mapping.hidden_bits": 0},
                           5e-2),
    # every 'auto' mapping field fixed, unquantized tags (tag_step 1), a tag_2 offset
    "mapping_fixed": ("loihi2", {"mapping.w_frac": 8, "mapping.k_x": 20, "mapping.c_ev": 4,
                                 "mapping.v_range_mv": 40.0, "mapping.tag_step": 1,
                                 "mapping.hidden_bits": 3, "mapping.tag_offset": 100,
                                 "mapping.y_unit": 16, "mapping.levels": 4}, 5e-2),
    # the Euclidean rule on events, epochs of 2
    "euclid_events_t2": ("loihi2_events", {"mapping.rule": "euclid", "engine.t_epoch": 2,
                                           "mapping.c_ev": 512}, 2e-3),
}


def option_config(name: str):
    base, overrides, _ = OPTION_DESIGNS[name]
    return load(base).with_overrides(**overrides)
