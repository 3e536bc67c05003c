"""Lava Process of M output neurons with their plastic input synapses (path 1).

:class:`NatGradNeuron` holds one trial of the approximate natural-gradient rule: the N
presynaptic traces, the M x N weights and the per-neuron values of the last step, as Lava
Vars.  Input spikes (N,) and teacher spikes (M,) arrive on two InPorts; the student's
output spikes (M,) leave on one OutPort.  Neuron and synapses live in ONE ProcessModel, so
there is no Dense and no one-step synaptic delay: the spikes of global step k reach the
model in the Lava time step ``k + 1`` (Lava counts from 1) and are used at once.

Two ProcessModels:

* ``fixed_pt`` (:class:`PyNatGradNeuronFixed`): the integer datapath.  Every time step the
  Var arrays are wrapped into an :class:`emulator.datapath.State` (batch axis of 1) and
  advanced by the emulator itself -- ``emulator.datapath.step`` (numpy) or the bit-identical
  fused kernel ``emulator.kernels.run_chunk`` with a one-step chunk (numba) -- and the
  results are copied back into the Vars.  This module holds no copy of the arithmetic.
  The :class:`~emulator.discretize.Discretized` record is built in the model's constructor
  from the process parameters (config, neuron params, rates, eta).
* ``floating_pt`` (:class:`PyNatGradNeuronFloat`): the float64 reference step of the
  approximate rule -- the update of :mod:`emulator.reference` (``Rule('approx')``, the
  object behind ``delta_approx``) and the per-step variables of
  :meth:`emulator.reference.Rule.step_variables`, on the traces and USP of
  :class:`emulator.spikes.SpikeSource` -- i.e. the step of ``emulator.run`` with a
  ``kind: float64`` config.

Vars hold the representation of the model the Process is built for (``tag``): integers in
the config's formats for ``fixed_pt``, physical float64 values for ``floating_pt``.  The
Process must be run with the same ``select_tag`` (the model checks it).

Notes for Lava 0.10 (see ``/work/shared/LAVA_NOTES.md``):

* ``run_spk`` only calls module-level helpers and stores public attributes, so that
  :func:`lava.magma.core.model.py.model.PyLoihiModelToPyAsyncModel` can turn the models
  into free-running (AsyncProtocol) models; :func:`lava_procs.network.run_lava` uses that to
  remove the per-step phase handshake.
* ``Var.get()`` sends every element as a float64: integer Vars are exact only below 2**53
  (checked by :func:`lava_procs.network.run_lava`).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from emulator import datapath
from emulator.discretize import discretize
from emulator.hwconfig import HwConfig, load
from emulator.params import NeuronParams
from emulator.reference import Rule
from emulator.runner import record_arrays
from emulator.variables import RECORD_FIELD, RECORD_SHAPES, STATE_FIELDS
from emulator.task import IDENTITY, Parametrization
from fixedpoint import rng

__all__ = ["NatGradNeuron", "PyNatGradNeuronFixed", "PyNatGradNeuronFloat", "TAGS", "BACKENDS",
           "STATE_VARS", "numba_available"]

#: ProcessModel tags, as passed to ``Loihi2SimCfg(select_tag=...)``.
TAGS = ("fixed_pt", "floating_pt")
#: Backends of the ``fixed_pt`` model ('auto': numba when it imports, else numpy).
BACKENDS = ("auto", "numba", "numpy")
#: Vars <-> fields of :class:`emulator.datapath.State` (Var name, State field), derived
#: from the variable table (:mod:`emulator.variables`); the weight accumulator is the Var
#: ``weights``, and the student's spikes of the last step are the Var ``spikes``.
STATE_VARS = tuple(("weights" if f == "acc" else f, f) for f in STATE_FIELDS) + (("spikes", "spikes"),)
#: Shape of each State-field Var: axes of (M, N) from the record shapes.
_FIELD_AXES = dict({RECORD_FIELD[r]: RECORD_SHAPES[r][1:] for r in RECORD_FIELD}, spikes=("M",))


def _var_shape(field: str, m: int, n: int) -> tuple:
    return tuple({"M": m, "N": n}[a] for a in _FIELD_AXES[field])


def _declare_state_vars(model_cls, dtype) -> None:
    """Give a ProcessModel one LavaPyType per State Var (Lava finds them with dir())."""
    for var, _ in STATE_VARS:
        setattr(model_cls, var, LavaPyType(np.ndarray, dtype))


def numba_available() -> bool:
    """True when the fused kernel :mod:`emulator.kernels` imports; False only when numba
    itself is not installed.  Any other problem (a broken ``kernels.py``: a syntax or name
    error, a failing import of one of its own modules) propagates instead of silently
    selecting the numpy backend or skipping the numba tests."""
    try:
        import emulator.kernels  # noqa: F401
    except ImportError as exc:
        missing = getattr(exc, "name", None) or ""
        if missing == "numba" or missing.startswith("numba."):
            return False
        raise
    return True


def _as_config(config) -> HwConfig | None:
    if config is None or isinstance(config, HwConfig):
        return config
    return load(config)


class NatGradNeuron(AbstractProcess):
    """M output neurons of one trial with their N plastic input synapses.

    Parameters (keyword only)
    -------------------------
    config : HwConfig, bundled name or path of a ``kind: fixed`` config (``fixed_pt``; may
        be None for ``floating_pt``).
    params : NeuronParams
    rates : (N,) input rates in Hz (the homosynaptic factor c_eps / r_i).
    w_init : (M, N) initial weights (floats, parametrization coordinates).
    eta : learning rate in code units (default: the paper's eta_A, see
        :func:`emulator.runner.default_eta`).
    seed : seed of the counter RNG (stochastic rounding, student spikes).
    trial : global trial id (counter-RNG index ``trial << 32 | unit``).
    f : Parametrization of the float model (identity; the fixed datapath is identity only).
    tag : ``'fixed_pt'`` or ``'floating_pt'``: the ProcessModel this Process will run with;
        it decides the representation of the Vars.
    backend : ``'auto'``, ``'numba'`` or ``'numpy'`` (fixed_pt only; bit-identical).

    Vars
    ----
    a_m, a_s (N,) traces; x (N,) USP; weights (M, N) the accumulator (fixed: w << extra_frac,
    float: the weights); gamma, v, sigma, err, post, spikes (M,) values of the last step;
    n_spikes (M,) student spikes so far; counts, first (len(datapath.COUNTERS),) overflow
    counters (fixed only); k (1,) next global step.

    Ports
    -----
    x_in (N,) presynaptic spikes, y_in (M,) teacher spikes, s_out (M,) student spikes.
    """

    def __init__(self, *, config=None, params: NeuronParams | None = None, rates=None,
                 w_init=None, eta: float | None = None, seed: int = 0, trial: int = 0,
                 f: Parametrization | None = None, tag: str = "fixed_pt", backend: str = "auto",
                 name: str | None = None, **kwargs) -> None:
        # AbstractProcess.__del__ calls stop(), which needs _runtime even when a check
        # below fails before AbstractProcess.__init__ has run.
        self._runtime = None
        if tag not in TAGS:
            raise ValueError(f"tag must be one of {TAGS} (got {tag!r})")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS} (got {backend!r})")
        params = NeuronParams() if params is None else params
        if not isinstance(params, NeuronParams):
            raise ValueError(f"params must be a NeuronParams (got {type(params).__name__})")
        if rates is None or w_init is None:
            raise ValueError("rates (N,) and w_init (M, N) are required")
        rates = np.array(rates, dtype=np.float64, ndmin=1)
        w_init = np.array(w_init, dtype=np.float64)
        if w_init.ndim != 2 or rates.ndim != 1 or w_init.shape[1] != rates.shape[0]:
            raise ValueError(f"w_init must have shape (M, N) and rates (N,) "
                             f"(got {w_init.shape} and {rates.shape})")
        if eta is None:
            from emulator.runner import default_eta
            eta = default_eta()
        f = IDENTITY if f is None else f
        cfg = _as_config(config)
        if tag == "fixed_pt":
            if cfg is None:          # any other kind is refused by discretize, naming it
                raise ValueError("tag 'fixed_pt' needs a fixed-point config (kind: fixed)")
            if not getattr(f, "is_identity", False):
                raise ValueError("the fixed-point datapath supports the identity parametrization only")
        if int(trial) < 0 or int(trial) >= 2**31:
            raise ValueError(f"trial must lie in [0, 2**31) (got {trial!r})")
        super().__init__(config=cfg, params=params, rates=rates, w_init=w_init, eta=float(eta),
                         seed=int(seed), trial=int(trial), f=f, tag=tag, backend=backend,
                         name=name, **kwargs)
        m, n = w_init.shape
        self.M, self.N = m, n
        n_c = len(datapath.COUNTERS)
        if tag == "fixed_pt":
            d = discretize(cfg, params, rates, float(eta))
            st = datapath.init_state(d, w_init[None], np.array([int(trial)]))
            init = {var: getattr(st, field)[0] for var, field in STATE_VARS}
            init["counts"], init["first"] = st.counts, st.first   # init_state counts clipping
        else:
            init = {var: np.zeros(_var_shape(field, m, n)) for var, field in STATE_VARS}
            init["weights"] = w_init.copy()
            init["counts"], init["first"] = np.zeros(n_c, np.int64), np.full(n_c, -1, np.int64)
        self.x_in = InPort(shape=(n,))
        self.y_in = InPort(shape=(m,))
        self.s_out = OutPort(shape=(m,))
        for var, field in STATE_VARS:
            setattr(self, var, Var(shape=_var_shape(field, m, n), init=init[var]))
        self.n_spikes = Var(shape=(m,), init=np.zeros(m, np.int64))
        self.counts = Var(shape=(n_c,), init=init["counts"])
        self.first = Var(shape=(n_c,), init=init["first"])
        self.k = Var(shape=(1,), init=np.zeros(1, np.int64))


# ------------------------------------------------------------------------ fixed point
def _check_tag(proc_params, mine: str) -> None:
    if proc_params["tag"] != mine:
        raise ValueError(f"NatGradNeuron was built with tag={proc_params['tag']!r} but runs "
                         f"with the {mine!r} ProcessModel: use select_tag={proc_params['tag']!r}")


def _empty_records(m: int, n: int) -> dict:
    """Zero-row recording arrays for ``emulator.kernels.run_chunk`` (no recording)."""
    return record_arrays(0, 1, m, n)


def _check_step(pm) -> int:
    k = pm.time_step - 1
    if int(pm.k[0]) != k:
        raise RuntimeError(f"NatGradNeuron: Lava time step {pm.time_step} does not follow "
                           f"global step {int(pm.k[0])}")
    return k


def _state_view(pm, k: int) -> datapath.State:
    """A datapath.State whose arrays are (1, ...) views of the Var arrays of ``pm``."""
    return datapath.State(trials=pm.trials, counts=pm.counts, first=pm.first, step=k,
                          **{field: getattr(pm, var)[None] for var, field in STATE_VARS})


def kernel_args(pm) -> tuple:
    """Arguments of ``emulator.kernels.run_chunk_kernel`` after (X, Y, k0), bound to the Vars.

    The same glue as :func:`emulator.kernels.run_chunk`, prepared once: the state arrays
    are views of the Var arrays (the kernel updates them in place) and the packed constants
    are computed once instead of every step.
    """
    from emulator.kernels import kernel_args as bind
    return bind(pm.d, _state_view(pm, 0), pm.seed, 0, pm.records, 0, pm.n_spikes[None])


def fixed_step(pm, x_spk, y_spk) -> None:
    """Advance the Vars of ``pm`` (a fixed_pt model) by one step with the emulator.

    numpy: ``emulator.datapath.step`` on a State wrapping the Vars, results copied back.
    numba: the fused kernel of ``emulator.kernels`` on a one-step chunk, in place.
    """
    k = _check_step(pm)
    if pm.use_numba:
        if pm.kargs is None:
            from emulator.kernels import run_chunk_kernel
            pm.kernel = run_chunk_kernel
            pm.kargs = kernel_args(pm)
            pm.xbuf = np.zeros((1, 1, pm.x.shape[0]), np.uint8)
            pm.ybuf = np.zeros((1, 1, pm.v.shape[0]), np.uint8)
        pm.xbuf[0, 0] = x_spk
        pm.ybuf[0, 0] = y_spk
        pm.kernel(pm.xbuf, pm.ybuf, np.int64(k), *pm.kargs)
        pm.k[0] = k + 1
        return
    st = _state_view(pm, k)
    datapath.step(pm.d, st, np.asarray(x_spk).reshape(1, -1), np.asarray(y_spk).reshape(1, -1),
                  pm.seed, pm.idx)
    for var, field in STATE_VARS:        # the numpy step rebinds the arrays it updates
        arr = getattr(st, field)
        dst = getattr(pm, var)
        if not np.may_share_memory(arr, dst):
            dst[...] = arr[0]
    if st.counts is not pm.counts:
        pm.counts[...] = st.counts
    if st.first is not pm.first:
        pm.first[...] = st.first
    pm.n_spikes += pm.spikes
    pm.k[0] = st.step


@implements(proc=NatGradNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyNatGradNeuronFixed(PyLoihiProcessModel):
    """Integer datapath of the emulator, one global step per Lava time step."""

    x_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)
    y_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32)
    n_spikes: np.ndarray = LavaPyType(np.ndarray, np.int64)
    counts: np.ndarray = LavaPyType(np.ndarray, np.int64)
    first: np.ndarray = LavaPyType(np.ndarray, np.int64)
    k: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        _check_tag(proc_params, "fixed_pt")
        # Public attributes only: PyLoihiModelToPyAsyncModel copies public, non-callable ones.
        self.d = discretize(proc_params["config"], proc_params["params"], proc_params["rates"],
                            proc_params["eta"])
        self.seed = int(proc_params["seed"])
        self.trials = np.array([proc_params["trial"]], np.int64)
        m, n = proc_params["w_init"].shape
        self.idx = datapath.Indices(self.trials, m, n)
        backend = proc_params["backend"]
        if backend == "auto":
            backend = "numba" if numba_available() else "numpy"
        self.use_numba = backend == "numba"
        self.records = _empty_records(m, n)
        # Built at the first step, when the Var arrays exist (numba backend).
        self.kargs = None
        self.kernel = None
        self.xbuf = None
        self.ybuf = None

    def run_spk(self) -> None:
        fixed_step(self, self.x_in.recv(), self.y_in.recv())
        self.s_out.send(self.spikes)


_declare_state_vars(PyNatGradNeuronFixed, np.int64)


# ------------------------------------------------------------------------ float64
def float_step(pm, x_spk, y_spk) -> None:
    """One float64 step of the approximate rule (docs/model.md#step-order) on the Vars of ``pm``.

    Traces a <- decay a + X (the recursion of :class:`emulator.spikes.SpikeSource`),
    x = (a_m - a_s) usp_scale; V, sigma, e, gamma_s and P from
    :meth:`emulator.reference.Rule.step_variables` at the weights before the update; then
    w <- w + dw with the reference rule ``emulator.reference.Rule('approx')`` (the object
    behind :func:`emulator.reference.delta_approx`).  The student spike is
    Bernoulli(phi_max dt sigma(V)) from the counter RNG (stream STUDENT, index
    trial << 32 | j), as in the integer datapath.
    """
    k = _check_step(pm)
    p = pm.params
    xs = np.asarray(x_spk, dtype=np.float64)
    pm.a_m[...] = p.decay_m * pm.a_m + xs
    pm.a_s[...] = p.decay_s * pm.a_s + xs
    pm.x[...] = (pm.a_m - pm.a_s) * p.usp_scale
    W = pm.weights[None]
    X = pm.x[None]
    Y = np.asarray(y_spk, dtype=np.float64)[None]
    rule = pm.reference.rule
    fv = rule.step_variables(W, X, Y)
    pm.v[...] = fv["potential"][0]
    pm.sigma[...] = fv["sigma"][0]
    pm.err[...] = fv["error"][0]
    pm.gamma[...] = fv["gamma_s"][0]
    pm.post[...] = fv["post"][0]
    pm.weights[...] = (W + rule(W, X, Y))[0]
    spk = rng.bernoulli(p.phi_max * p.dt * pm.sigma, pm.seed, rng.STREAM_STUDENT, k,
                        pm.neuron_index)
    pm.spikes[...] = spk
    pm.n_spikes += spk
    pm.k[0] = k + 1


@implements(proc=NatGradNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyNatGradNeuronFloat(PyLoihiProcessModel):
    """float64 reference of the approximate rule, one Euler step per Lava time step."""

    x_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    y_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    n_spikes: np.ndarray = LavaPyType(np.ndarray, np.int64)
    counts: np.ndarray = LavaPyType(np.ndarray, np.int64)
    first: np.ndarray = LavaPyType(np.ndarray, np.int64)
    k: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        _check_tag(proc_params, "floating_pt")
        self.params = proc_params["params"]
        # Rule is callable: PyLoihiModelToPyAsyncModel would not copy it, so keep it boxed.
        self.reference = SimpleNamespace(rule=Rule("approx", proc_params["rates"], self.params,
                                                    proc_params["f"], float(proc_params["eta"])))
        self.seed = int(proc_params["seed"])
        m = proc_params["w_init"].shape[0]
        self.neuron_index = (np.int64(proc_params["trial"]) << 32) + np.arange(m, dtype=np.int64)

    def run_spk(self) -> None:
        float_step(self, self.x_in.recv(), self.y_in.recv())
        self.s_out.send(self.spikes)


_declare_state_vars(PyNatGradNeuronFloat, np.float64)
