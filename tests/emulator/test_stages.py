"""Each numpy stage of the datapath equals its numba twin, on random states, in every
rounding mode.  The twins are called row by row, as the fused kernel
calls them; the numpy stages on the whole batch.  A stage pair that disagreed on any
element, counter or random index would fail here before the golden hashes notice."""
import numpy as np
import pytest

from emulator import stages
from emulator import stages_jit as J
from emulator.discretize import discretize
from emulator.hwconfig import load, validate
from emulator.params import NeuronParams
from emulator.variables import SITE_INDEX, SITE_STREAMS
from fixedpoint.jit import stream_prefix
from emulator.hwconfig import ROUNDING_MODES

B, M, N = 3, 2, 11
SEED, STEP = 1234, 777


def _config(mode: str, base: str = "loihi2_ideal"):
    tree = load(base).tree
    tree = {k: (dict(v) if isinstance(v, dict) else v) for k, v in tree.items()}
    for sec in ("traces", "usp", "weights", "potential", "bracket", "post"):
        tree[sec]["rounding"] = mode
    tree["sigmoid"]["interpolate"] = mode != "floor"   # both table modes get exercised
    return validate(tree, f"<{base} with {mode} rounding>")


@pytest.fixture(params=ROUNDING_MODES)
def d(request):
    rates = np.linspace(5.0, 50.0, N)
    return discretize(_config(request.param), NeuronParams(), rates, 5.5e-4)


def _state(d, seed=0):
    g = np.random.default_rng(seed)
    top_w = 2 ** (d.w_bits - 1)
    state = {
        "a": g.integers(0, d.trace_max + 1, (B, N)),
        "a2": g.integers(0, d.trace_max + 1, (B, N)),
        "spk": g.integers(0, 2, (B, N)).astype(np.uint8),
        "y": g.integers(0, 2, (B, M)).astype(np.uint8),
        "w": g.integers(-top_w, top_w, (B, M, N)),
        "x": g.integers(-2 ** (d.usp_bits - 1), 2 ** (d.usp_bits - 1), (B, N)) // 64,
        "v": g.integers(-2 ** (d.v_bits - 1), 2 ** (d.v_bits - 1), (B, M)),
        "acc": g.integers(-top_w, top_w, (B, M, N)) << d.w_extra,
        "trials": np.array([0, 5, 2**20 + 3]),
    }
    acc_fmt = d.variables["weights"].acc_fmt     # some weights on the rails: updates saturate
    state["acc"][:, :, 0], state["acc"][:, :, 1] = acc_fmt.max_int, acc_fmt.min_int
    state["x"][:, :3] = state["x"][:, :3] * 64      # some USPs at full scale: V saturates
    return state


def _prefix(site):
    return stream_prefix(np.uint64(SEED), np.uint64(SITE_STREAMS[SITE_INDEX[site]]), np.int64(STEP))


def _tb(s, b):
    return np.int64(s["trials"][b]) << 32


def _idx(s):
    t = s["trials"][:, None] << 32
    return {"aff": t + np.arange(N), "neuron": t + np.arange(M),
            "syn": t[:, :, None] + np.arange(M * N).reshape(1, M, N)}


def test_traces_and_usp(d):
    s, c, draw = _state(d), J.pack(d), stages.Draw(SEED, STEP)
    t = s["trials"][:, None] << 32
    a_np, n_np = stages.traces(d, s["a"], d.decay_m, s["spk"], draw, t + 2 * np.arange(N))
    a2_np, n2_np = stages.traces(d, s["a2"], d.decay_s, s["spk"], draw, t + 2 * np.arange(N) + 1)
    x_np, nx_np = stages.usp(d, a_np, a2_np, draw, _idx(s)["aff"])
    n_jit = n2_jit = nx_jit = 0
    for b in range(B):
        a, a2, x, tmp = s["a"][b].copy(), s["a2"][b].copy(), np.zeros(N, np.int64), np.zeros(N, np.int64)
        n_jit += J.traces_row(a, tmp, d.decay_m, s["spk"][b], c, _prefix("trace"), _tb(s, b), 2)
        n2_jit += J.traces_row(a2, tmp, d.decay_s, s["spk"][b], c, _prefix("trace"), _tb(s, b) + 1, 2)
        nx_jit += J.usp_row(x, a, a2, tmp, c, _prefix("usp"), _tb(s, b))
        np.testing.assert_array_equal(a, a_np[b])
        np.testing.assert_array_equal(a2, a2_np[b])
        np.testing.assert_array_equal(x, x_np[b])
    assert (n_jit, n2_jit, nx_jit) == (n_np, n2_np, nx_np)


def test_potential_gamma_sigmoid_error_post(d):
    s, c, draw = _state(d, 1), J.pack(d), stages.Draw(SEED, STEP)
    idx = _idx(s)
    v_np, nv_np = stages.potential(d, s["w"], s["x"], draw, idx["neuron"])
    g_np, ng_np = stages.gamma(d, s["w"])
    sig_np = stages.sigmoid(d, s["v"])
    e_np = stages.error(d, sig_np, s["y"])
    p_np, np_np = stages.post_factor(d, g_np, sig_np, e_np, draw, idx["neuron"])
    nv = ng = npost = 0
    for b in range(B):
        for j in range(M):
            v, n = J.potential_one(s["w"][b, j], s["x"][b], c, _prefix("potential"), _tb(s, b) + j)
            nv += n
            assert v == v_np[b, j]
            g, n = J.gamma_one(s["w"][b, j], d.rates_q, d.gamma_lut, c)
            ng += n
            assert g == g_np[b, j]
            sig = J.sigmoid_one(s["v"][b, j], d.sigma_lut, c)
            assert sig == sig_np[b, j]
            e = J.error_one(sig, s["y"][b, j], c)
            assert e == e_np[b, j]
            p, n = J.post_factor_one(g, sig, e, c, _prefix("post"), _tb(s, b) + j)
            npost += n
            assert p == p_np[b, j]
    assert (nv, ng, npost) == (nv_np, ng_np, np_np)


def test_bracket_update_and_spike(d):
    s, c, draw = _state(d, 2), J.pack(d), stages.Draw(SEED, STEP)
    idx = _idx(s)
    post = np.random.default_rng(3).integers(-2 ** (d.post_bits - 1), 2 ** (d.post_bits - 1), (B, M))
    br_np, nb_np = stages.bracket(d, s["x"], s["v"], s["w"], draw, idx["aff"], idx["neuron"], idx["syn"])
    acc_np, nu_np, ns_np = stages.update(d, s["acc"], post, br_np, draw, idx["syn"])
    sigma = stages.sigmoid(d, s["v"])
    spk_np = stages.output_spike(d, sigma, SEED, STEP, idx["neuron"])
    nb = nu = ns = 0
    for b in range(B):
        homo, tmp = np.zeros(N, np.int64), np.zeros(N, np.int64)
        J.bracket_homo_row(homo, s["x"][b], d.homo_mant, tmp, c, _prefix("homo"), _tb(s, b))
        for j in range(M):
            cwv, n = J.bracket_cwv_one(s["v"][b, j], c, _prefix("cw_v"), _tb(s, b) + j)
            br = np.zeros(N, np.int64)
            n += J.bracket_row(br, homo, cwv, s["w"][b, j], c, _prefix("hetero"), _tb(s, b) + j * N)
            nb += n
            np.testing.assert_array_equal(br, br_np[b, j])
            acc = s["acc"][b, j].copy()
            u, sat = J.update_row(acc, post[b, j], br, np.zeros(N, np.int64), np.zeros(N, np.int64),
                                  c, _prefix("weights"), _tb(s, b) + j * N)
            nu += u
            ns += sat
            np.testing.assert_array_equal(acc, acc_np[b, j])
            assert J.output_spike_one(sigma[b, j], c, _prefix("student"), _tb(s, b) + j) == spk_np[b, j]
    assert (nb, nu, ns) == (nb_np, nu_np, ns_np)


def test_random_states_exercise_the_edges():
    # the states above are not benign: they saturate and underflow, so the counts compared
    # in the stage tests are nonzero (a twin that never counted would be caught)
    d = discretize(_config("stochastic"), NeuronParams(), np.linspace(5.0, 50.0, N), 5.5e-4)
    s, draw = _state(d, 2), stages.Draw(SEED, STEP)
    idx = _idx(s)
    post = np.random.default_rng(3).integers(-2 ** (d.post_bits - 1), 2 ** (d.post_bits - 1), (B, M))
    br, nb = stages.bracket(d, s["x"], s["v"], s["w"], draw, idx["aff"], idx["neuron"], idx["syn"])
    _, nu, ns = stages.update(d, s["acc"], post, br, draw, idx["syn"])
    _, nv = stages.potential(d, s["w"], s["x"], draw, idx["neuron"])
    assert nb > 0 and nu > 0 and ns > 0
