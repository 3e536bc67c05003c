"""The learning neuron's program (docs/learning_neuron_program.md).

The document's listing is parsed and executed line by line in Python integers, with the
machine model it states (24-bit words; a product is a double word shifted back into a
word).  On the states of a real ``loihi2`` run and on constructed extreme states, every
state it writes and every output equals :func:`emulator.learning.neuron_step`'s, and every
value stays within its declared width.  The counts table of the document is the listing's.
So the document cannot drift from the code, and the code cannot use a wider word than the
document admits.
"""
from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

from emulator import learning as LE
from emulator.hwconfig import load
from emulator.learning.constants import STREAM_EVENT, STREAM_VQ
from emulator.task import fig3_task
from fixedpoint import rng
from fixedpoint.recip import recip_table
from natgrad.protocol import default_eta

DOC = pathlib.Path(__file__).resolve().parents[3] / "docs" / "learning_neuron_program.md"
WORD = 24
SMIN, SMAX, UMAX = -(1 << (WORD - 1)), (1 << (WORD - 1)) - 1, (1 << WORD) - 1

#: operation -> (count class, multiplies it costs)
KIND = {"mulshr": "mul", "mulshru": "mul", "mulsra": "mul", "macshr": "mul",
        "add": "add", "sub": "add", "shl": "shift", "shr": "shift", "sra": "shift",
        "sat": "sat", "clamp": "sat", "gt": "cmp", "ge": "cmp", "lt": "cmp", "le": "cmp",
        "sel": "sel", "abs": "logic", "neg": "logic", "and_": "logic", "clz": "clz",
        "lut": "table", "rand": "rand"}
ROWS = {"mul": "multiply-shift", "add": "add, sub", "shift": "shift", "sat": "saturate",
        "cmp": "compare", "sel": "select", "logic": "abs, neg, and", "clz": "count leading zeros",
        "table": "table read", "rand": "random word"}


def parse_listing():
    """[(section, dest, op, args text, width)] of the listing."""
    text = DOC.read_text()
    body = text.split("<!-- program:start -->")[1].split("<!-- program:end -->")[0]
    body = body.split("```")[1]
    out, section = [], None
    for line in body.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("##"):
            section = "gamma" if "64th" in line else "step"
            continue
        m = re.fullmatch(r"(\w+)\s*=\s*(\w+)\((.*)\)\s*#\s*([SU]\d+)\b.*", line)
        assert m, f"listing line not understood: {line!r}"
        out.append((section, m.group(1), m.group(2), m.group(3), m.group(4)))
    return out


def _hu(x, s):
    return x if s == 0 else (x + (1 << (s - 1))) >> s


def _sw(x):                                  # saturate to the signed word
    return min(max(x, SMIN), SMAX)


class Machine:
    """The document's operations on Python ints."""

    def __init__(self, rand_words):
        self.rand_words = rand_words

    def ops(self):
        def shr_any(p, s):
            return _hu(p, s) if s > 0 else p << -s

        return {
            "mulshr": lambda x, y, s: _sw(shr_any(x * y, s)),
            "mulshru": lambda x, y, s: min(max(shr_any(x * y, s), 0), UMAX),
            "macshr": lambda x1, y1, x2, y2, s: _sw(_hu(x1 * y1 - x2 * y2, s)),
            "mulsra": lambda x, y, r, s: _sw((x * y + r) >> s),
            "add": lambda x, y: _sw(x + y), "sub": lambda x, y: _sw(x - y),
            "shl": lambda x, s: _sw(x << s), "shr": lambda x, s: _hu(x, s),
            "sra": lambda x, s: x >> s,
            "sat": lambda x, b: min(max(x, -(1 << (b - 1))), (1 << (b - 1)) - 1),
            "clamp": lambda x, lo, hi: min(max(x, lo), hi),
            "gt": lambda x, y: int(x > y), "ge": lambda x, y: int(x >= y),
            "lt": lambda x, y: int(x < y), "le": lambda x, y: int(x <= y),
            "sel": lambda c, a, b: a if c else b, "abs": abs, "neg": lambda x: -x,
            "and_": lambda x, y: x & y,
            "clz": lambda x: max(int(x).bit_length() - 1, 0),
            "lut": lambda table, i: int(table[i]),
            "rand": lambda stream, bits: self.rand_words[stream](bits),
        }


def constants(d):
    nf = d.neuron
    f = nf.word_bits - 2
    sub = nf.v_frac - nf.sigma_node_frac
    span = nf.sigma_span_mv << nf.v_frac
    lut = np.asarray(d.sigma_lut, np.int64)
    return dict(
        DM=d.dm, DS=d.ds, FD=nf.decay_frac, FA=nf.filter_frac, VK=d.vk_mant,
        VSH=nf.filter_frac + d.vk_shift - nf.v_frac, V_BITS=nf.v_bits, SPAN=span,
        SMAX=SMAX, SPAN2M1=2 * span - 1, SUB=sub, SUBMASK=(1 << sub) - 1, SIG=lut,
        SIG_NEXT=np.append(lut[1:], lut[-1]), ONE_S=1 << nf.sigma_frac, FS=nf.sigma_frac,
        PHIDT=d.phidt_mant, PSH=nf.sigma_frac + d.phidt_shift - nf.error_frac,
        FE=nf.error_frac, HSH=nf.hbar_frac - nf.sigma_frac, HTAU=nf.hbar_tau_shift,
        F=f, TSH=f - 8, ONE_F=1 << f, RTAB=recip_table(nf.word_bits), GINV=d.ginv_mant,
        GSH0=d.ginv_shift + f - nf.gamma_frac - nf.hbar_frac, GTOP=(1 << nf.gamma_bits) - 1,
        KM=d.k_mant, KSH=nf.error_frac + d.k_shift - d.ek_frac,
        ASH=nf.gamma_frac + d.ek_frac - nf.prob_frac, FP=nf.prob_frac,
        UNIT_P=d.unit_ratio << nf.prob_frac, UNIT_N=1 << nf.prob_frac, RATIO=d.unit_ratio,
        LEVELS=d.levels, CARRY_BITS=nf.carry_bits, Y_UNIT=d.y_unit, VQ=d.vq_mant,
        VQSH=nf.v_frac + d.vq_shift, YLO=-d.y_offset, YHI=d.y_offset - 1, YOFF=d.y_offset,
        EVENT_STREAM=STREAM_EVENT, VQ_STREAM=STREAM_VQ)


def width_ok(value, width):
    bits = int(width[1:])
    if width[0] == "S":
        return -(1 << (bits - 1)) <= value <= (1 << (bits - 1)) - 1
    return 0 <= value <= (1 << bits) - 1


def run_listing(prog, const, state, a_in, y, k, words):
    """One step of the listing for one neuron; returns the environment."""
    env = dict(const)
    env.update(state)
    env.update(a_in=a_in, y=y)
    ops = Machine(words).ops()
    for section, dest, op, args, width in prog:
        if section == "gamma" and k % 64:
            continue
        vals = eval(f"[{args}]", {"__builtins__": {}}, env)    # noqa: S307 (our own doc)
        env[dest] = ops[op](*vals)
        assert width_ok(env[dest], width), (dest, env[dest], width, k)
    return env


@pytest.fixture(scope="module")
def shipped():
    task = fig3_task(n_trials=2)
    d = LE.design_for_config(load("loihi2"), task, default_eta())
    return task, d


def _rand_words(seed, k, idx):
    """The listing's ``rand``: the top bits of the event stream's word, the low bits of
    the Vq stream's (as the neuron uses them)."""
    def word(stream):
        return int(rng.random_bits(seed, stream, k, np.array([idx], np.uint64))[0])
    return {STREAM_EVENT: lambda bits: word(STREAM_EVENT) >> (64 - bits),
            STREAM_VQ: lambda bits: word(STREAM_VQ) & ((1 << bits) - 1)}


STATE = ("a_m", "a_s", "hbar", "gamma", "carry")


def check_step(prog, const, d, st, a_in, y, k, seed, trials):
    """neuron_step on ``st`` and the listing on each neuron's copy of the state before it;
    every state, sigma, e, V and the third factors equal.  Returns neuron_step's outputs."""
    B, M = st.a_m.shape
    index = rng.trial_unit_index(trials, np.arange(M))
    before = {f: getattr(st, f).copy() for f in STATE}
    out = LE.neuron_step(d, st, a_in, y, k, seed, index)
    bap, y1, _, y3 = out
    for b in range(B):
        for m in range(M):
            env = run_listing(prog, const, {f: int(before[f][b, m]) for f in STATE},
                              int(a_in[b, m]), int(y[b, m]), k,
                              _rand_words(seed, k, int(index[b, m])))
            got = {f: env[f] for f in STATE}
            got.update(v=env["v"], sigma=env["s"], err=env["e"], bap=env["bap"],
                       y1=env["y1"], y3=env["y3"])
            want = {f: getattr(st, f)[b, m] for f in STATE}
            want.update(v=st.v[b, m], sigma=st.sigma[b, m], err=st.err[b, m],
                        bap=bap[b, m], y1=y1[b, m], y3=y3[b, m])
            assert got == {key: int(v) for key, v in want.items()}, (k, b, m)
    return out


def test_listing_equals_neuron_step_on_a_real_run(shipped):
    """2000 steps of the Fig 3 task on loihi2 (2 trials, 32 gamma_s refreshes), the
    listing against neuron_step step by step, on the dendritic input of the run itself."""
    from emulator.spikes import SpikeSource
    task, d = shipped
    assert d.encoding == "graded" and d.levels == 3 and d.engine.t_epoch == 1
    assert d.mapped_rule == "approx"
    prog, const = parse_listing(), constants(d)
    seed, trials, steps = 5, np.arange(2), 2000
    syn = LE.synapse_init(LE.quantize_weights(d, task.w_init[trials]), d.d_offset)
    st = LE.neuron_init(d, syn.w)
    rnd = LE.LavaRandoms([LE.lava_trace_seed(seed, t) for t in trials], d.engine.sr_seed)
    X, Y = SpikeSource(task, seed, trials).next(steps)
    rx, ry, rw = rnd.next(steps, 0, 1)
    tags = np.broadcast_to(d.tags[None, None, :], syn.w.shape)
    for k in range(steps):
        bap, y1, y2, y3 = check_step(prog, const, d, st, syn.a_buff.copy(), Y[k], k, seed,
                                     trials)
        LE.synapse_step(d, syn, X[k], bap, y1, y2, y3, rx[k], ry[k], rw[k], tags,
                        d.products, k=k, seed=seed, trials=trials)
    # the run was not idle: both signs of level, carries, teacher spikes
    assert st.events[..., 0].sum() > 50 and st.events[..., 1].sum() > 50
    assert st.counts[LE.NEURON_COUNTERS.index("post_carry")] > 0


def test_listing_equals_neuron_step_on_extreme_states(shipped):
    """Constructed states on the words' rails (filters at +-2**23, hbar 0 / 1 / top, a carry
    near its rails, inputs beyond 16 bits, teacher spikes), including gamma_s refresh
    steps: the listing saturates exactly where neuron_step does, and no value leaves its
    declared width."""
    _, d = shipped
    prog, const = parse_listing(), constants(d)
    g = np.random.default_rng(23)
    B, M = 64, 2
    trials = np.arange(B)
    hit = np.zeros(len(LE.NEURON_COUNTERS), np.int64)
    for k in (0, 1, 64, 65, 128, 4096, 4097):
        st = LE.neuron_init(d, np.zeros((B, M, d.n_afferents), np.int64))
        st.a_m = g.choice([SMAX, SMIN, SMAX - 5000, 0, 123456, -654321], (B, M))
        st.a_s = g.choice([SMAX, SMIN, 0, 99999, -2 ** 22], (B, M))
        st.hbar = g.choice([0, 1, 2, 1000, 2 ** 20, SMAX - 3], (B, M))
        st.gamma = g.choice([0, 1, 2 ** 16, 2 ** 20, UMAX], (B, M))
        st.carry = g.choice([0, 1, -1, 2 ** 22, -(2 ** 22), SMAX - 2, SMIN + 2], (B, M))
        a_in = g.choice([0, 300, -300, 40000, -40000, 32767, -32768], (B, M))
        y = g.integers(0, 2, (B, M))
        check_step(prog, const, d, st, a_in, y, k, 11, trials)
        hit += st.counts
    names = dict(zip(LE.NEURON_COUNTERS, hit))
    for name in ("word_saturation", "input_saturation", "gamma_saturation",
                 "potential_saturation", "post_carry"):
        assert names[name] > 0, names


def test_counts_table_is_the_listings():
    prog = parse_listing()
    counts = {"step": {}, "gamma": {}}
    for section, _, op, _, _ in prog:
        kind = KIND[op]
        n = 2 if op == "macshr" else 1
        counts[section][kind] = counts[section].get(kind, 0) + n
    text = DOC.read_text().split("<!-- counts:start -->")[1].split("<!-- counts:end -->")[0]
    table = {}
    for line in text.splitlines():
        cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1].isdigit():
            table[cells[0]] = (int(cells[1]), int(cells[2]))
    for kind, row in ROWS.items():
        label = next(label for label in table if label.startswith(row))
        assert table[label] == (counts["step"].get(kind, 0), counts["gamma"].get(kind, 0)), \
            (kind, table[label], counts["step"].get(kind, 0), counts["gamma"].get(kind, 0))
    assert table["total"] == (sum(counts["step"].values()), sum(counts["gamma"].values()))
    assert set(KIND[op] for _, _, op, _, _ in prog) <= set(ROWS)


def test_state_words_are_declared_24_bits_in_lava():
    """The Lava neuron declares its program state with the listing's widths."""
    from lava_procs.learning_engine import PyNatGradLENeuronFixed as Model
    for var in STATE:
        assert getattr(Model, var).precision == WORD, var
    assert Model.a_in.precision == 16


def test_word_bits_is_checked_where_formats_are_declared():
    from emulator.hwconfig import ConfigError
    cfg = load("loihi2")
    with pytest.raises(ConfigError, match=r"neuron\.hbar_frac.*<= 25"):
        cfg.with_overrides(**{"neuron.hbar_frac": 28})
    with pytest.raises(ConfigError, match=r"neuron\.prob_frac.*<= 18"):
        cfg.with_overrides(**{"neuron.prob_frac": 24})
    with pytest.raises(ConfigError, match=r"neuron\.carry_bits.*<= 24"):
        cfg.with_overrides(**{"neuron.carry_bits": 40})


def test_gamma_within_its_lsb_bound_over_every_hbar(shipped):
    """gamma_s from the 24-bit reciprocal against the exact quotient of the same constant,
    ginv_mant 2**(gamma_frac + hbar_frac - ginv_shift) / hbar, for EVERY hbar a word holds:
    within half an LSB (the last shift) plus 2**-21 of the value (the reciprocal's bound);
    saturated exactly where the quotient exceeds 2**24 - 1."""
    from emulator.learning.neuron import _gamma_from_hbar
    _, d = shipped
    nf = d.neuron
    hbar = np.arange(1, 1 << (nf.word_bits - 1), dtype=np.int64)
    g, sat = _gamma_from_hbar(d, hbar)
    exact = d.ginv_mant * 2.0 ** (nf.gamma_frac + nf.hbar_frac - d.ginv_shift) / hbar
    top = 2 ** nf.gamma_bits - 1
    ok = exact < top - 64
    err = np.abs(g[ok] - exact[ok])
    assert np.all(err <= 0.5 + exact[ok] * 2.0 ** -21 + 1e-9), err.max()
    assert np.all(sat[exact > top + 64]) and not np.any(sat[exact < top - 64])
    # measured: the largest error is 5.7 LSB (at gamma_s = 232), 0.66 LSB for gamma_s < 8
    small = exact < 8 * 2 ** nf.gamma_frac
    assert np.abs(g[small] - exact[small]).max() <= 1.0
