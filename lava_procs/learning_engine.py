"""Path 2: the approximate natural-gradient rule on Lava's learning engine.

    RingBuffer(X) --s_in--> LearningDense --a_out--> NatGradLENeuron <--y_in-- RingBuffer(Y)
                                ^  ^  ^  ^                 |
                                |  |  |  +---- s_out_bap --+  sign: positive step (dependency y0)
                                |  |  +------- s_out_y1 ---+  level y1 = 32 L (graded) or a
                                |  |                          negative event y1 = 64 (events)
                                |  +---------- s_out_y2 ---+  the hidden-bits carry's constant
                                +------------- s_out_y3 ---+  y3 = 64 + L V / v_lsb

* ``LearningDense`` runs Lava's own ``fixed_pt`` model (``PyLearningDenseModelBitApproximate``)
  with a ``Loihi3FLearningRule`` whose ``dw`` string, trace impulses and taus come from
  :func:`emulator.learning.design`; the per-afferent ``c_eps / r_i`` is the static
  tag ``tag_1``.
* :class:`NatGradLENeuron` is a ``LearningNeuronProcess``; its model
  (``LearningNeuronModelFixed``) calls :func:`emulator.learning.neuron_step`, so
  the neuron's integer arithmetic is the emulator's.  It reconstructs V from the
  dendritic current, computes sigma(V), e = y - phi_max dt sigma, gamma_s and the post
  amount, and sends the third factors (graded levels or events; what one step cannot send
  waits in its carry).
* The input and teacher spikes are :class:`emulator.spikes.SpikeSource`'s, played by
  ``RingBuffer`` sources (Lava time step t plays column t - 1 = global step k).

M output neurons sharing the N inputs are one ``LearningDense`` of shape (M, N) and one
learning neuron of shape (M,); each neuron has its own teacher train (column of Y) and its
own counter-RNG index.  The emulator's learning-engine mode (:func:`emulator.learning.run`)
reproduces a run of this network bit for bit (``tests/lava_procs/test_lava_path2.py``; M = 3 and 8 in
``tests/lava_procs/test_lava_path2_many_outputs.py``; N = 1000, M = 500 in
``benchmarks/bench_lava_path2_many_outputs.py``).  Keep this directory free of
scratch scripts: Lava's compiler imports every ``.py`` file next to a Process's module.
"""
from __future__ import annotations

import time

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.learning.learning_rule import Loihi3FLearningRule
from lava.magma.core.model.py.neuron import LearningNeuronModelFixed
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.neuron import LearningNeuronProcess
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.dense.models import PyLearningDenseModelBitApproximate
from lava.proc.dense.process import LearningDense
from lava.proc.io.source import PySendModelFixed, RingBuffer

from emulator import learning as LE
from emulator.spikes import SpikeSource
from emulator.task import Task
from fixedpoint import rng

__all__ = ["NatGradLENeuron", "PyNatGradLENeuronFixed", "learning_rule", "build_network",
           "plastic_pair", "spike_sources", "run_lava_le", "run_network", "check_lava_design",
           "NEURON_VARS"]

#: Vars of the neuron read after a run (integers).
NEURON_VARS = ("a_m", "a_s", "hbar", "gamma", "v", "sigma", "err", "p", "counts", "events",
               "pend", "sent", "carry")


class NatGradLENeuron(LearningNeuronProcess, AbstractProcess):
    """Learning neuron of Path 2: M neurons that send the third factors of the rule.

    Parameters
    ----------
    design : emulator.learning.Design
    learning_rule : the LearningDense's Loihi3FLearningRule (LearningNeuronProcess wants it)
    w_init_int : (M, N) initial integer weights (the host sets the initial gamma_s from them)
    seed : seed of the counter RNG (events, Vq rounding)
    trial : trial id (counter-RNG index ``trial << 32 | neuron``)
    """

    def __init__(self, *, design: LE.Design, learning_rule, w_init_int: np.ndarray,
                 seed: int, trial: int = 0, name: str | None = None) -> None:
        w0 = np.asarray(w_init_int, np.int64)
        if w0.ndim != 2 or w0.shape[1] != design.n_afferents:
            raise ValueError(f"w_init_int must be (M, N={design.n_afferents}) (got {w0.shape})")
        m = w0.shape[0]
        st = LE.neuron_init(design, ((w0 >> 1) << 1)[None])
        super().__init__(shape=(m,), learning_rule=learning_rule, design=design,
                         seed=int(seed), trial=int(trial), name=name)
        self.a_in = InPort(shape=(m,))
        self.y_in = InPort(shape=(m,))
        self.a_m = Var(shape=(m,), init=0)
        self.a_s = Var(shape=(m,), init=0)
        self.hbar = Var(shape=(m,), init=st.hbar[0])
        self.gamma = Var(shape=(m,), init=st.gamma[0])
        self.v = Var(shape=(m,), init=0)
        self.sigma = Var(shape=(m,), init=0)
        self.err = Var(shape=(m,), init=0)
        self.p = Var(shape=(m,), init=0)
        self.counts = Var(shape=(len(LE.NEURON_COUNTERS),), init=0)
        self.events = Var(shape=(m, 2), init=0)
        self.pend = Var(shape=(m, 2), init=0)
        self.sent = Var(shape=(m,), init=0)
        self.carry = Var(shape=(m,), init=0)


@implements(proc=NatGradLENeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyNatGradLENeuronFixed(LearningNeuronModelFixed):
    """Integer model: one :func:`emulator.learning.neuron_step` per time step."""

    # Declared widths are the neuron's 24-bit words (LIF's u, v are 24 in Lava's Loihi
    # models); a_in is Dense's 16-bit a_out.  counts and events are host-side monitoring
    # counters (read out, not part of the neuron program), hence wider.
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=16)
    y_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=1)
    a_m: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    a_s: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    hbar: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    gamma: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=16)
    sigma: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=17)
    err: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=18)
    p: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    counts: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=48)
    events: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=48)
    pend: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    sent: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=1)
    carry: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._d: LE.Design = proc_params["design"]
        self._seed = int(proc_params["seed"])
        m = int(self._shape[0])
        self._index = rng.trial_unit_index(np.array([int(proc_params["trial"])]), np.arange(m))

    def run_spk(self) -> None:
        a = np.asarray(self.a_in.recv(), np.int64)[None]
        y = np.asarray(self.y_in.recv(), np.int64)[None]
        k = int(self.time_step) - 1
        i64 = lambda x: np.asarray(x, np.int64)[None]  # noqa: E731
        st = LE.NeuronState(a_m=i64(self.a_m), a_s=i64(self.a_s), hbar=i64(self.hbar),
                            gamma=i64(self.gamma), v=i64(self.v), sigma=i64(self.sigma),
                            err=i64(self.err), p=i64(self.p),
                            counts=np.asarray(self.counts, np.int64).copy(),
                            pend=i64(self.pend).copy(), sent=i64(self.sent).copy(),
                            carry=i64(self.carry).copy(), events=i64(self.events).copy())
        bap, y1, y2, y3 = LE.neuron_step(self._d, st, a, y, k, self._seed, self._index)
        self.a_m, self.a_s, self.hbar, self.gamma = st.a_m[0], st.a_s[0], st.hbar[0], st.gamma[0]
        self.v, self.sigma, self.err, self.p = st.v[0], st.sigma[0], st.err[0], st.p[0]
        self.counts = st.counts
        self.pend, self.sent, self.carry = st.pend[0], st.sent[0], st.carry[0]
        self.events = st.events[0]
        self.y1, self.y2, self.y3 = (y1[0].astype(np.int32), y2[0].astype(np.int32),
                                     y3[0].astype(np.int32))
        self.s_out_bap.send(bap[0].astype(bool))
        self.s_out_y1.send(self.y1)
        self.s_out_y2.send(self.y2)
        self.s_out_y3.send(self.y3)


def check_lava_design(d: LE.Design) -> None:
    """Raise ValueError when ``d`` asks for an engine Lava 0.10 does not have (other widths,
    per-synapse roundings, another weight-rounding seed): those are emulator-only."""
    bad = LE.lava_incompatibilities(d)
    if bad:
        raise ValueError("Lava 0.10's LearningDense cannot run this design (emulator-only "
                         "engine settings): " + "; ".join(bad))


def learning_rule(d: LE.Design, seed: int, trial: int = 0, products=None) -> Loihi3FLearningRule:
    """The Loihi3FLearningRule of the design (``products`` overrides the dw products):
    ``dw`` (and ``dd`` with hidden bits), impulses, taus, ``t_epoch`` from ``d.engine``."""
    check_lava_design(d)
    prods = d.products if products is None else tuple(products)
    kw = {"dd": d.rule_dd} if d.dd_products else {}
    return Loihi3FLearningRule(dw=LE.rule_string(prods), x1_impulse=d.k_x, x1_tau=d.x1_tau,
                               x2_impulse=d.k_x, x2_tau=d.x2_tau, t_epoch=d.engine.t_epoch,
                               rng_seed=LE.lava_trace_seed(seed, trial), **kw)


def build_network(d: LE.Design, task: Task, steps: int, seed: int, trial: int = 0, *,
                  products=None):
    """Processes of one trial's Path-2 network and the spikes they play.

    Returns ``(dense, neuron, source_x, source_y, X, Y)``; X (steps, N), Y (steps, M) are
    ``SpikeSource(task, seed, [trial])``'s spikes.
    """
    if not isinstance(task, Task):
        raise ValueError(f"task must be a Task (got {type(task).__name__})")
    steps, trial = int(steps), int(trial)
    if steps < 1:
        raise ValueError(f"steps must be >= 1 (got {steps})")
    if not 0 <= trial < task.n_trials:
        raise ValueError(f"trial must lie in [0, {task.n_trials}) (got {trial})")
    if task.N != d.n_afferents or not np.array_equal(task.rates, d.rates):
        raise ValueError("the design was made for other input rates")
    X, Y = SpikeSource(task, seed, np.array([trial])).next(steps)
    X, Y = X[:, 0, :], Y[:, 0, :]
    w0 = LE.quantize_weights(d, task.w_init[trial])                      # (M, N), even
    dense, neuron = plastic_pair(d, w0, seed, trial, products)
    source_x, source_y = spike_sources(dense, neuron, X, Y)
    return dense, neuron, source_x, source_y, X, Y


def plastic_pair(d: LE.Design, w0: np.ndarray, seed: int, trial: int = 0, products=None):
    """The LearningDense (rule string, weights ``w0`` (M, N) integers, tags, weight exponent)
    and the learning neuron of one trial, with the neuron's third-factor ports connected to
    the dense's.  Input spikes go to ``dense.s_in``, teacher spikes to ``neuron.y_in``."""
    lr = learning_rule(d, seed, trial, products)
    w0 = np.asarray(w0, np.int64)
    tags = np.broadcast_to(d.tags[None, :], w0.shape).astype(np.int64).copy()
    kw = {"tag_2": np.full(w0.shape, d.d_offset, np.int64)} if d.dd_products else {}
    dense = LearningDense(weights=w0, tag_1=tags, learning_rule=lr, weight_exp=d.weight_exp,
                          name=f"le_dense_trial{trial}", **kw)
    neuron = NatGradLENeuron(design=d, learning_rule=lr, w_init_int=w0, seed=seed, trial=trial,
                             name=f"le_neuron_trial{trial}")
    dense.a_out.connect(neuron.a_in)
    neuron.s_out_bap.connect(dense.s_in_bap)
    neuron.s_out_y1.connect(dense.s_in_y1)
    neuron.s_out_y2.connect(dense.s_in_y2)
    neuron.s_out_y3.connect(dense.s_in_y3)
    return dense, neuron


def spike_sources(dense, neuron, X: np.ndarray, Y: np.ndarray):
    """RingBuffers playing input spikes X (steps, N) into ``dense`` and teacher spikes
    Y (steps, M) into ``neuron`` (Lava time step t plays column t - 1)."""
    source_x = RingBuffer(data=np.ascontiguousarray(np.asarray(X).T, dtype=np.int32))
    source_y = RingBuffer(data=np.ascontiguousarray(np.asarray(Y).T, dtype=np.int32))
    source_x.s_out.connect(dense.s_in)
    source_y.s_out.connect(neuron.y_in)
    return source_x, source_y


def run_lava_le(d: LE.Design, task: Task, steps: int, seed: int, trial: int = 0, *,
                products=None) -> dict:
    """Run trial ``trial`` for ``steps`` steps in ONE blocking Lava run.

    The network has one ``LearningDense`` of shape (M, N) and one learning neuron of shape
    (M,) for the task's M output neurons, which share the N inputs.  The Vars are read with
    ``get()`` before ``stop()``, which is called in ``finally:``.
    Returns a dict: ``w_int`` (M, N) final integer weights, ``w`` float weights, ``x1``,
    ``x2`` (N,) traces, ``tag_2`` (M, N), ``neuron`` (Vars of :data:`NEURON_VARS`, int64),
    ``counters``, ``rule`` (the dw string run), ``timing`` (seconds: ``setup``, ``run``,
    ``read``; Lava's ``get()`` sends an array one element per message, so ``read`` grows with
    M N: 30-35 s for the 2 x 500 000 synapse Vars of N = 1000, M = 500).
    """
    t0 = time.perf_counter()
    dense, neuron, source_x, source_y, X, Y = build_network(d, task, steps, seed, trial,
                                                            products=products)
    t_built = time.perf_counter()
    out = run_network(d, dense, neuron, steps, products=products)
    t = out["timing"]
    t["setup"] += t_built - t0                     # spikes and processes, then compile/start
    out.update({"teacher_spikes": Y.astype(np.int64), "seed": int(seed), "trial": int(trial)})
    return out


def run_network(d: LE.Design, dense, neuron, steps: int, *, products=None) -> dict:
    """Run a network of :func:`plastic_pair` (its sources connected) for ``steps`` steps in
    one blocking run, read its Vars, stop it in ``finally:``; the dict of
    :func:`run_lava_le` without ``teacher_spikes``, ``seed`` and ``trial``."""
    t0 = time.perf_counter()
    run_cfg = Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map={
        LearningDense: PyLearningDenseModelBitApproximate,
        RingBuffer: PySendModelFixed,
        NatGradLENeuron: PyNatGradLENeuronFixed})
    timing = {}
    try:
        dense.create_runtime(run_cfg=run_cfg)
        t1 = time.perf_counter()
        dense.run(condition=RunSteps(num_steps=int(steps), blocking=True), run_cfg=run_cfg)
        t2 = time.perf_counter()
        w = dense.weights.get()
        x1, x2 = dense.x1.get(), dense.x2.get()
        tag_2 = dense.tag_2.get()
        nv = {name: getattr(neuron, name).get() for name in NEURON_VARS}
        t3 = time.perf_counter()
        timing = {"setup": t1 - t0, "run": t2 - t1, "read": t3 - t2}
    finally:
        dense.stop()
    w_int = np.rint(np.asarray(w, np.float64)).astype(np.int64)
    nv = {k: np.rint(np.asarray(v, np.float64)).astype(np.int64) for k, v in nv.items()}
    return {"w_int": w_int, "w": w_int * d.lsb_w,
            "x1": np.rint(np.asarray(x1, np.float64)).astype(np.int64),
            "x2": np.rint(np.asarray(x2, np.float64)).astype(np.int64),
            "tag_2": np.rint(np.asarray(tag_2, np.float64)).astype(np.int64),
            "neuron": nv, "counters": dict(zip(LE.NEURON_COUNTERS, nv["counts"].tolist())),
            "rule": LE.rule_string(d.products if products is None else products),
            "steps": int(steps), "timing": timing}
