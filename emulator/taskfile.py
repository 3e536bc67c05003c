"""Task files: a user's teacher-student task as YAML, validated strictly.

A task file says which task the commands run (``natgrad run/sweep/budget/deploy --task``):
the afferents and their rates, the number of output neurons M sharing them, the teacher,
the initial weights, the neuron's constants, the weight parametrization, the learning rate
and the protocol (duration, trials, seed).  The schema, with every field's allowed range,
is ``tasks/README.md``; the bundled files are in ``tasks/`` (``fig3`` is the default and
reproduces :func:`emulator.task.fig3_task` bit for bit).

Every problem is one line naming the field and what is allowed (:class:`TaskError`, a
``ValueError``).  Arrays may come from ``.npz`` files next to the task file (``file:`` and
``key:``), loaded without pickle; their bytes enter the task's digest.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from pathlib import Path

import numpy as np

from fixedpoint import rng

from .params import NeuronParams
from .task import IDENTITY, Attenuation, Parametrization, Sinh, Task

__all__ = ["TaskError", "TaskSpec", "load_task", "with_weight_range", "resolve_task_path", "bundled_tasks",
           "TASK_DIR", "DEFAULT_TASK"]

TASK_DIR = Path(__file__).resolve().parent.parent / "tasks"
DEFAULT_TASK = "fig3"
#: Steps of the weights' counter-RNG draws (stream STREAM_INIT): initial 0, teacher 1 (as
#: fig3_task); a normal distribution takes its second uniform from step + 2.
_INIT_STEP, _TEACHER_STEP = 0, 1
_MAX_N, _MAX_M = 100_000, 100_000


class TaskError(ValueError):
    """A task file that cannot be used: one line naming the field and what is allowed."""


def bundled_tasks() -> list[Path]:
    return sorted(TASK_DIR.glob("*.yaml"))


def resolve_task_path(path_or_name) -> Path:
    p = Path(path_or_name)
    if p.is_file():
        return p
    if p.suffix == "" and (TASK_DIR / f"{p.name}.yaml").is_file() and p.name == str(path_or_name):
        return TASK_DIR / f"{p.name}.yaml"
    names = ", ".join(q.stem for q in bundled_tasks())
    raise TaskError(f"task {str(path_or_name)!r}: no such file, and not a bundled task "
                    f"(bundled: {names})")


@dataclasses.dataclass(frozen=True, eq=False)
class TaskSpec:
    """A validated task file.  :meth:`build` makes the :class:`emulator.task.Task`.

    Attributes
    ----------
    name, description, source : the file's name field, its text, its path
    digest : SHA-256 of the file's bytes and of every array file it names
    rates : (N,) input rates [Hz]
    M : output neurons sharing the inputs
    params : the neuron's constants
    eta : learning rate of the rule, code units (paper units times beta)
    rule : the rule the chip learns with ('approx' or 'euclid')
    duration_s, trials, seed : the protocol (command-line options override them)
    """

    name: str
    description: str
    source: str
    digest: str
    rates: np.ndarray
    M: int
    params: NeuronParams
    eta: float
    rule: str
    duration_s: float
    trials: int
    seed: int
    teacher: dict
    initial: dict
    inputs: object = None    #: RecordedSpikes, or None (Poisson inputs at ``rates``)
    #: largest |w| expected while learning (parametrization coordinates), 'teacher' (the
    #: teacher's weights, stated explicitly), or None (unknown: the initial weights only)
    weight_range: float | str | None = None
    #: the weight parametrization f (somatic weight f(w)); chips store somatic weights only
    f: Parametrization = IDENTITY
    test_samples: int = 50   #: test set: USP samples per trial
    test_steps: int = 500    #: test set: steps of each sample's Poisson train
    test_bin_steps: int = 2000   #: recorded teacher: bin of the count comparison, steps

    @property
    def N(self) -> int:
        return int(self.rates.size)

    @property
    def steps(self) -> int:
        return int(round(self.duration_s / self.params.dt))

    def build(self, n_trials: int | None = None, seed: int | None = None) -> Task:
        """The task's trials ``0 .. n_trials - 1`` (default: the file's) drawn with ``seed``
        (default: the file's): trial t gets the same weights whatever ``n_trials`` is."""
        n_trials = self.trials if n_trials is None else int(n_trials)
        seed = self.seed if seed is None else int(seed)
        shape = (n_trials, self.M, self.N)
        w0 = _weights(self.initial, shape, seed, _INIT_STEP, "initial_weights")
        recorded = self.teacher.get("recorded")
        ws = None if recorded is not None else _weights(self.teacher["weights"], shape, seed,
                                                        _TEACHER_STEP, "teacher.weights")
        w_range = self.weight_range
        if w_range == "teacher":
            w_range = float(np.max(np.abs(ws)))
        return Task(rates=self.rates.copy(), w_init=w0, w_target=ws, params=self.params,
                    f=self.f, inputs=self.inputs, w_range=w_range, teacher_spikes=recorded,
                    test_bin_steps=self.test_bin_steps,
                    test_samples=self.test_samples, test_steps=self.test_steps)

    def describe(self) -> dict:
        """The task's identity for reports' provenance."""
        out = {"name": self.name, "source": self.source, "sha256": self.digest,
               "N": self.N, "M": self.M, "rates_hz": _rate_summary(self.rates),
               "eta_code": self.eta, "rule": self.rule,
               "parametrization": type(self.f).__name__,
               "expected_weight_range": self.weight_range,
               "test_set": {"samples": self.test_samples,
                            "train_s": self.test_steps * self.params.dt}}
        rec = self.teacher.get("recorded")
        if rec is not None:
            out["recorded_teacher"] = {"file": str(rec.path), "steps": rec.n_steps,
                                       "merged_spikes": rec.merged}
            out["test_set"] = {"recorded_teacher_bin_s": self.test_bin_steps * self.params.dt,
                               "window": "the whole recording (in-sample)"}
        if self.inputs is not None:
            out["recorded_inputs"] = {"file": str(self.inputs.path),
                                      "steps": self.inputs.n_steps,
                                      "merged_spikes": self.inputs.merged}
        return out


def _rate_summary(rates) -> dict:
    vals, counts = np.unique(rates, return_counts=True)
    if vals.size <= 8:
        return {f"{v:g}": int(c) for v, c in zip(vals, counts)}
    return {"min": float(rates.min()), "max": float(rates.max()), "mean": float(rates.mean())}


def _weights(spec: dict, shape, seed: int, step: int, where: str) -> np.ndarray:
    """Weights (K, M, N) from a distribution (counter RNG, stream STREAM_INIT, index
    ``trial << 32 | (j N + i)``), a constant, or an array from a file."""
    K, M, N = shape
    if "array" in spec:
        a = spec["array"]
        if a.ndim == 2:
            return np.broadcast_to(a[None], shape).copy()
        if a.shape[0] < K:
            raise TaskError(f"{where}.file: holds {a.shape[0]} trials, the run asks for {K} "
                            "(give fewer --trials, or an array of shape (M, N) for all trials)")
        return a[:K].copy()
    if "constant" in spec:
        return np.full(shape, spec["constant"], np.float64)
    scale = spec["scale"]
    idx = rng.trial_unit_index(np.arange(K), np.arange(M * N))
    u = rng.uniform(seed, rng.STREAM_INIT, step, idx)
    if spec["distribution"] == "uniform":
        lo, hi = spec["low"], spec["high"]
        w = (lo + (hi - lo) * u) * scale     # lo -1, hi 1: fig3_task's (2 u - 1) exactly
    else:                                   # normal: Box-Muller with a second uniform
        u2 = rng.uniform(seed, rng.STREAM_INIT, step + 2, idx)
        z = np.sqrt(-2.0 * np.log1p(-u)) * np.cos(2.0 * math.pi * u2)
        w = (spec["mean"] + spec["sd"] * z) * scale
    return w.reshape(shape)


# ============================================================================ validation
class _V:
    """Field checks that raise one-line :class:`TaskError` s."""

    def __init__(self, where: str, base: Path):
        self.where, self.base = where, base
        self.files: list[Path] = []

    def err(self, key: str, msg: str):
        raise TaskError(f"{self.where}: key '{key}' {msg}")

    def mapping(self, tree, key, allowed, required=()):
        if not isinstance(tree, dict):
            self.err(key, f"must be a mapping with keys {', '.join(allowed)} (got {tree!r})")
        for k in tree:
            if k not in allowed:
                self.err(f"{key}.{k}" if key else k,
                         f"is not a known key (allowed: {', '.join(allowed)})")
        for k in required:
            if k not in tree:
                self.err(f"{key}.{k}" if key else k, "is required")
        return tree

    def one_of(self, tree, key, options):
        got = [k for k in options if k in tree]
        if len(got) != 1:
            self.err(key, f"needs exactly one of {', '.join(options)} (got "
                          f"{', '.join(got) if got else 'none'})")
        return got[0]

    def number(self, value, key, lo, hi, integer=False, lo_open=False):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                (integer and not float(value).is_integer()):
            kind = "an integer" if integer else "a number"
            self.err(key, f"must be {kind} in {'(' if lo_open else '['}{lo}, {hi}] (got {value!r})")
        v = float(value)
        if not math.isfinite(v) or v < lo or v > hi or (lo_open and v <= lo):
            kind = "an integer" if integer else "a number"
            self.err(key, f"must be {kind} in {'(' if lo_open else '['}{lo}, {hi}] (got {value!r})")
        return int(v) if integer else v

    def text(self, value, key):
        if not isinstance(value, str) or not value.strip():
            self.err(key, f"must be a non-empty string (got {value!r})")
        return value

    def array(self, spec, key, ndims):
        spec = self.mapping(spec, key, ("file", "key"), ("file", "key"))
        path = self.base / self.text(spec["file"], f"{key}.file")
        if path.suffix != ".npz":
            self.err(f"{key}.file", f"must be a .npz file (got {spec['file']!r})")
        try:
            with np.load(path, allow_pickle=False) as z:
                if spec["key"] not in z.files:
                    self.err(f"{key}.key", f"{spec['key']!r} is not in {spec['file']} "
                                           f"(it holds: {', '.join(z.files) or 'nothing'})")
                a = z[spec["key"]]
        except TaskError:
            raise
        except (OSError, ValueError) as exc:
            self.err(f"{key}.file", f"cannot be read as .npz: {spec['file']} ({exc})")
        if a.ndim not in ndims or a.dtype.kind not in "iuf":
            self.err(f"{key}", f"must be a numeric array with {' or '.join(map(str, ndims))} "
                               f"dimensions (got {a.dtype} shape {a.shape})")
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            self.err(key, "must hold finite values only")
        self.files.append(path)
        return a


_TOP = ("name", "description", "afferents", "outputs", "teacher", "initial_weights",
        "expected_weight_range", "neuron", "parametrization", "rule", "learning_rate", "protocol",
        "test_set")
_NEURON = tuple(f.name for f in dataclasses.fields(NeuronParams))


def _dist(v: _V, spec, key: str, N: int, M: int) -> dict:
    if not isinstance(spec, dict):
        v.err(key, "must be a mapping: {distribution: uniform|normal, ...}, {constant: x} or "
                   "{file: F.npz, key: K}")
    form = v.one_of(spec, key, ("distribution", "constant", "file"))
    if form == "file":
        a = v.array(spec, key, (2, 3))
        if a.shape[-2:] != (M, N):
            v.err(key, f"must have shape (M, N) = ({M}, {N}) or (trials, {M}, {N}) "
                       f"(got {a.shape})")
        return {"array": a}
    if form == "constant":
        v.mapping(spec, key, ("constant",))
        return {"constant": v.number(spec["constant"], f"{key}.constant", -1e3, 1e3)}
    d = spec["distribution"]
    if d == "uniform":
        v.mapping(spec, key, ("distribution", "low", "high", "scale"), ("low", "high"))
        lo = v.number(spec["low"], f"{key}.low", -1e3, 1e3)
        hi = v.number(spec["high"], f"{key}.high", -1e3, 1e3)
        if not lo < hi:
            v.err(f"{key}.high", f"must be > low = {lo:g} (got {hi:g})")
        out = {"distribution": "uniform", "low": lo, "high": hi}
    elif d == "normal":
        v.mapping(spec, key, ("distribution", "mean", "sd", "scale"), ("mean", "sd"))
        out = {"distribution": "normal",
               "mean": v.number(spec["mean"], f"{key}.mean", -1e3, 1e3),
               "sd": v.number(spec["sd"], f"{key}.sd", 0.0, 1e3)}
    else:
        v.err(f"{key}.distribution", f"must be one of uniform, normal (got {d!r})")
    sc = spec.get("scale", 1.0)
    if sc == "1/N":
        out["scale"] = 1.0 / N
    else:
        out["scale"] = v.number(sc, f"{key}.scale", 0.0, 1e3, lo_open=True)
    return out


def validate_task(tree, where: str, base: Path) -> TaskSpec:
    """Validate a parsed task file; raise :class:`TaskError` on the first problem."""
    v = _V(where, base)
    v.mapping(tree, "", _TOP, ("name", "afferents", "teacher", "initial_weights"))
    name = v.text(tree["name"], "name")
    desc = tree.get("description", "")
    if not isinstance(desc, str):
        v.err("description", f"must be a string (got {desc!r})")
    # neuron first: the rates' limit is 1/dt
    nt = v.mapping(tree.get("neuron", {}) or {}, "neuron", _NEURON)
    kw = {k: v.number(nt[k], f"neuron.{k}", -1e6, 1e6) for k in nt}
    try:
        params = NeuronParams(**kw)
    except ValueError as exc:
        v.err("neuron", f"is not a valid neuron: {exc}")
    # afferents
    af = v.mapping(tree["afferents"], "afferents", ("groups", "rates_hz", "rates_file",
                                                    "recorded"))
    form = v.one_of(af, "afferents", ("groups", "rates_hz", "rates_file", "recorded"))
    rmax = 1.0 / params.dt
    inputs = None
    if form == "recorded":
        inputs = _recording(v, af["recorded"], "afferents.recorded", params)
        rates = inputs.mean_rates()
    elif form == "groups":
        groups = af["groups"]
        if not isinstance(groups, list) or not groups:
            v.err("afferents.groups", "must be a non-empty list of {count: n, rate_hz: r}")
        parts = []
        for g_i, g in enumerate(groups):
            key = f"afferents.groups[{g_i}]"
            v.mapping(g, key, ("count", "rate_hz"), ("count", "rate_hz"))
            n = v.number(g["count"], f"{key}.count", 1, _MAX_N, integer=True)
            r = v.number(g["rate_hz"], f"{key}.rate_hz", 0.0, rmax)
            parts.append(np.full(n, r))
        rates = np.concatenate(parts)
    elif form == "rates_hz":
        lst = af["rates_hz"]
        if not isinstance(lst, list) or not lst:
            v.err("afferents.rates_hz", "must be a non-empty list of rates in Hz")
        rates = np.array([v.number(r, f"afferents.rates_hz[{i}]", 0.0, rmax)
                          for i, r in enumerate(lst)])
    else:
        rates = v.array(af["rates_file"], "afferents.rates_file", (1,))
        if rates.min() < 0 or rates.max() > rmax:
            v.err("afferents.rates_file", f"rates must lie in [0, {rmax:g}] Hz (got "
                                          f"[{rates.min():g}, {rates.max():g}])")
    if rates.size > _MAX_N:
        v.err("afferents", f"at most {_MAX_N} afferents (got {rates.size})")
    if not np.any(rates > 0):
        v.err("afferents", "at least one afferent must have a rate > 0 Hz")
    N = int(rates.size)
    M = v.number(tree.get("outputs", 1), "outputs", 1, _MAX_M, integer=True)
    # teacher
    te = v.mapping(tree["teacher"], "teacher", ("weights", "recorded"))
    if v.one_of(te, "teacher", ("weights", "recorded")) == "weights":
        teacher = {"weights": _dist(v, te["weights"], "teacher.weights", N, M)}
    else:
        if inputs is None:
            v.err("teacher.recorded", "needs recorded inputs (afferents.recorded): a recorded "
                                      "teacher answers the inputs it heard")
        rec = _recording(v, te["recorded"], "teacher.recorded", params)
        if rec.N != M:
            v.err("teacher.recorded.file", f"holds {rec.N} output neurons, the task's outputs "
                                           f"are M = {M}")
        if rec.n_steps != inputs.n_steps:
            v.err("teacher.recorded.file", f"holds {rec.n_steps} steps, the input recording "
                                           f"{inputs.n_steps}")
        if tree.get("expected_weight_range") == "teacher":
            v.err("expected_weight_range", "cannot be 'teacher' for a recorded teacher (it has "
                                           "no weights): give {max_abs: x}")
        teacher = {"recorded": rec}
    initial = _dist(v, tree["initial_weights"], "initial_weights", N, M)
    weight_range = _weight_range(v, tree.get("expected_weight_range"), N)
    param_f = _parametrization(v, tree.get("parametrization", "identity"), N)
    rule = tree.get("rule", "approx")
    if rule not in ("approx", "euclid"):
        v.err("rule", f"must be one of approx, euclid (got {rule!r})")
    lr = v.mapping(tree.get("learning_rate", {"scale_of_paper": 4.0}), "learning_rate",
                   ("code", "paper", "scale_of_paper"))
    lform = v.one_of(lr, "learning_rate", ("code", "paper", "scale_of_paper"))
    from .reference import ETA_CODE
    if lform == "code":
        eta = v.number(lr["code"], "learning_rate.code", 0.0, 1.0, lo_open=True)
    elif lform == "paper":
        eta = v.number(lr["paper"], "learning_rate.paper", 0.0, 1e3, lo_open=True) * params.beta
        if eta > 1.0:
            v.err("learning_rate.paper", f"times beta = {eta:g} must be <= 1 in code units")
    else:
        eta = ETA_CODE[rule] * v.number(lr["scale_of_paper"], "learning_rate.scale_of_paper",
                                        0.0, 1e4, lo_open=True)
    pr = v.mapping(tree.get("protocol", {}) or {}, "protocol", ("duration_s", "trials", "seed"))
    duration = v.number(pr.get("duration_s", 300.0), "protocol.duration_s", params.dt, 1e7)
    trials = v.number(pr.get("trials", 4), "protocol.trials", 1, 100_000, integer=True)
    seed = v.number(pr.get("seed", 0), "protocol.seed", 0, 2 ** 63, integer=True)
    if "recorded" in teacher:
        ts = v.mapping(tree.get("test_set", {}) or {}, "test_set", ("bin_s",))
        bin_s = v.number(ts.get("bin_s", 1.0), "test_set.bin_s", params.dt,
                         teacher["recorded"].duration_s)
        test_bin_steps, test_samples, test_steps = int(round(bin_s / params.dt)), 50, 500
    else:
        ts = v.mapping(tree.get("test_set", {}) or {}, "test_set", ("samples", "train_s"))
        test_samples = v.number(ts.get("samples", 50), "test_set.samples", 1, 100_000,
                                integer=True)
        train_s = v.number(ts.get("train_s", 0.25), "test_set.train_s", params.dt, 100.0)
        test_steps, test_bin_steps = int(round(train_s / params.dt)), 2000
    h = hashlib.sha256()
    h.update(Path(where).read_bytes() if Path(where).is_file() else repr(tree).encode())
    for f in v.files:
        h.update(f.read_bytes())
    return TaskSpec(name=name, description=desc, source=where, digest=h.hexdigest(),
                    rates=rates, M=M, params=params, eta=float(eta), rule=rule,
                    duration_s=duration, trials=trials, seed=seed, teacher=teacher,
                    initial=initial, inputs=inputs, weight_range=weight_range, f=param_f,
                    test_samples=test_samples, test_steps=test_steps,
                    test_bin_steps=test_bin_steps)


def _parametrization(v: _V, spec, N: int) -> Parametrization:
    """``identity``, ``{attenuation: {alpha: a | [a_1, ..., a_N]}}`` or
    ``{sinh: {w_scale: s}}`` (docs/model.md#parametrization)."""
    key = "parametrization"
    if spec == "identity":
        return IDENTITY
    if not isinstance(spec, dict) or len(spec) != 1:
        v.err(key, "must be identity, {attenuation: {alpha: a}} or {sinh: {w_scale: s}} "
                   f"(got {spec!r})")
    (kind, body), = spec.items()
    if kind == "attenuation":
        v.mapping(body, f"{key}.attenuation", ("alpha",), ("alpha",))
        a = body["alpha"]
        if isinstance(a, list):
            if len(a) != N:
                v.err(f"{key}.attenuation.alpha", f"must hold N = {N} values (got {len(a)})")
            alpha = [v.number(x, f"{key}.attenuation.alpha[{i}]", 0.0, 1e3, lo_open=True)
                     for i, x in enumerate(a)]
        else:
            alpha = [v.number(a, f"{key}.attenuation.alpha", 0.0, 1e3, lo_open=True)] * N
        return Attenuation(np.array(alpha))
    if kind == "sinh":
        v.mapping(body, f"{key}.sinh", ("w_scale",), ("w_scale",))
        return Sinh(v.number(body["w_scale"], f"{key}.sinh.w_scale", 0.0, 1e3, lo_open=True))
    v.err(key, f"must be identity, {{attenuation: ...}} or {{sinh: ...}} (got {kind!r})")


def _recording(v: _V, spec, key: str, params: NeuronParams):
    """``{file: F, dt_s: dt}`` -> :class:`emulator.recorded.RecordedSpikes` (its dt the neuron's)."""
    from .recorded import RecordedSpikes, RecordingError
    rec = v.mapping(spec, key, ("file", "dt_s"), ("file", "dt_s"))
    dt_rec = v.number(rec["dt_s"], f"{key}.dt_s", 0.0, 1.0, lo_open=True)
    if abs(dt_rec / params.dt - 1.0) > 1e-9:
        v.err(f"{key}.dt_s", f"must equal the neuron's dt = {params.dt:g} s (got {dt_rec:g})")
    path = v.base / v.text(rec["file"], f"{key}.file")
    try:
        out = RecordedSpikes(path, dt_rec)
    except RecordingError as exc:
        v.err(f"{key}.file", f"cannot be played: {exc}")
    v.files.append(path)
    return out


def _weight_range(v: _V, spec, N: int):
    """``expected_weight_range``: {max_abs: x, scale: s | 1/N} -> x s; 'teacher'; absent -> None."""
    key = "expected_weight_range"
    if spec is None:
        return None
    if spec == "teacher":
        return "teacher"
    if not isinstance(spec, dict):
        v.err(key, f"must be {{max_abs: x, scale: s}} (scale optional, may be 1/N) or "
                   f"'teacher' (got {spec!r})")
    v.mapping(spec, key, ("max_abs", "scale"), ("max_abs",))
    x = v.number(spec["max_abs"], f"{key}.max_abs", 0.0, 1e3, lo_open=True)
    sc = spec.get("scale", 1.0)
    sc = 1.0 / N if sc == "1/N" else v.number(sc, f"{key}.scale", 0.0, 1e3, lo_open=True)
    return x * sc


def with_weight_range(spec: TaskSpec, max_abs: float | None) -> TaskSpec:
    """``spec`` with its expected weight range replaced by ``max_abs`` (the command line's
    ``--weight-range``), or unchanged for None."""
    if max_abs is None:
        return spec
    return dataclasses.replace(spec, weight_range=float(max_abs))


def load_task(path_or_name=DEFAULT_TASK) -> TaskSpec:
    """Read and validate a task file (a path, or the name of a bundled task)."""
    import yaml
    path = resolve_task_path(path_or_name)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskError(f"task {path}: cannot be read ({exc})") from None
    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        at = f" at line {line + 1}" if line is not None else ""
        raise TaskError(f"{path}: not valid YAML{at}") from None
    if not isinstance(tree, dict):
        raise TaskError(f"{path}: top level must be a mapping of keys to values")
    return validate_task(tree, str(path), path.parent)
