"""The deployment records of ``natgrad deploy`` (no command line here): the datapath's
``deploy.yaml`` record (:func:`deploy_record`, :func:`dump_yaml`, read back by
:func:`load_deployment`) and the learning engine's deployment folder
(:func:`write_le_deployment`).  ``natgrad run --out`` writes the deployment of the design it
judged through the same functions (:mod:`natgrad.main_job`), so this module does not import
the command line.  The file conventions are in :mod:`natgrad.deploy`'s docstring.
"""
from __future__ import annotations

import base64
import os
import hashlib
import tempfile
import zlib
from pathlib import Path

import numpy as np

from natgrad.errors import UsageError

FORMAT_VERSION = "natgrad-deploy/1"
#: Tables with more entries than this are written compactly (zlib + base64) in auto mode.
LIST_LIMIT = 65536


# --------------------------------------------------------------------------- helpers
def _ints(a) -> list:
    return np.asarray(a, dtype=np.int64).tolist()


def _table(values: np.ndarray, mode: str) -> dict:
    """A LUT as a (nested) list, or compactly as zlib-compressed little-endian uint32."""
    values = np.asarray(values, dtype=np.int64)
    if mode == "list" or (mode == "auto" and values.size <= LIST_LIMIT):
        return {"encoding": "list", "shape": list(values.shape), "values": _ints(values)}
    if values.min() < 0 or values.max() >= 2**32:
        raise ValueError("compact tables hold unsigned 32-bit values only")
    raw = zlib.compress(values.astype("<u4").tobytes(), 9)
    return {"encoding": "zlib+base64 <u4 row-major",
            "decode": "np.frombuffer(zlib.decompress(base64.b64decode(data)), '<u4').reshape(shape)",
            "shape": list(values.shape), "data": base64.b64encode(raw).decode("ascii")}


def _rel(realised: float, value: float) -> float:
    return abs(realised - value) / abs(value) if value != 0 else abs(realised)


def _const(info: dict) -> dict:
    """A constant from ``Discretized.info``: mantissa/shift (or int/frac) plus precision."""
    out = {k: (int(v) if k in ("mant", "shift", "int", "frac") else float(v))
           for k, v in info.items()}
    if "int" in out:
        out["realised"] = out["int"] * 2.0 ** -out["frac"]
    out["rel_err"] = _rel(out["realised"], out["float"])
    return out


def _fmt_var(var) -> dict:
    """Deploy format entry of one datapath variable (:class:`emulator.variables.Variable`)."""
    extra = {"extra_frac": var.extra_frac} if var.spec.accumulator else {}
    return _fmt(var.fmt.signed, var.fmt.bits, var.fmt.frac, var.rounding, **extra)


def _fmt(signed: bool, bits: int, frac: int, rounding: str | None = None, **extra) -> dict:
    f = {"signed": signed, "bits": int(bits), "frac": int(frac),
         "text": f"{'S' if signed else 'U'}{bits}.{frac}"}
    if rounding is not None:
        f["rounding"] = rounding
    f.update(extra)
    return f


# --------------------------------------------------------------------------- the record
def deploy_record(cfg, rates: np.ndarray | None = None, seed: int = 0, n_afferents: int = 100,
                  group_rates=(10.0, 50.0), lut_format: str = "auto",
                  eta: float | None = None, task=None) -> dict:
    """The deploy mapping for ``cfg`` and the Fig 3 task (trial 0 of ``seed``), or ``task``
    (an :class:`emulator.task.Task`, its trial 0), at the approximate rule's learning rate
    ``eta`` (code units; default: ``natgrad run``'s)."""
    from emulator import datapath
    from emulator import discretize as D
    from emulator.rule_math import homosynaptic_factor
    from emulator.runner import counters_dict
    from emulator.task import fig3_task

    if task is None:
        task = fig3_task(n_trials=1, N=n_afferents, M=1, group_rates=group_rates, seed=seed)
    if eta is None:
        from natgrad.protocol import default_eta
        eta = default_eta()
    d = D.discretize(cfg, task.params, task.rates, eta)
    p = task.params
    info = d.info

    state = datapath.init_state(d, task.w_init[:1], np.array([0]))
    w_mant = state.acc[0] >> d.w_extra
    w_sat = counters_dict(state.counts, state.first)["weights"]["saturation"]

    v_range = 2.0 ** (d.v_bits - 1 - d.v_frac)
    sig_step = 2 * v_range / 2**d.sigma_lut_bits
    top_gamma = 2**d.gamma_bits - 1

    consts = {name: _const(info[name]) for name in
              ("usp_scale", "c_w", "phi_max_dt", "eta", "inv_c_eps", "c_eps_c_u")}
    homo_vals = homosynaptic_factor(task.rates, p.c_eps)
    rates_rel = np.abs(d.rates_q * 2.0**-D.RATE_FRAC - task.rates) / np.where(task.rates > 0, task.rates, 1.0)

    rec = {
        "format": FORMAT_VERSION,
        "conventions": {"mant_shift": "value = mant * 2**-shift",
                        "int_frac": "value = int * 2**-frac",
                        "format": "S/U bits.frac: round(value * 2**frac) in bits bits"},
        "config": {"name": cfg.name, "source": str(cfg.source), "tree": cfg.tree},
        "model": {
            "rule": "approximate natural gradient (Kreutzer et al. 2022, Eq 114), identity f",
            "task": f"fig3 teacher-student, trial 0 of seed {seed}",
            "N": int(task.N), "M": int(task.M), "seed": int(seed),
            "rates_hz": task.rates.tolist(),
            "neuron": {"beta": p.beta, "theta": p.theta, "phi_max": p.phi_max, "tau_m": p.tau_m,
                       "tau_s": p.tau_s, "dt": p.dt, "c_u": p.c_u, "c_w": p.c_w,
                       "c_eps": p.c_eps},
            "eta_code": eta,
        },
        "formats": {name: _fmt_var(var) for name, var in d.variables.items()},
        "traces": {
            "decay_frac": d.decay_frac,
            "decay_m": d.decay_m,
            "decay_s": d.decay_s,
            "impulse": d.impulse,
            "max": d.trace_max,
            "update": "a <- round(a * decay / 2**decay_frac) + impulse * spike, saturated to [0, max]",
        },
        "weights": {
            "exponent": -d.w_frac,
            "bits": d.w_bits,
            "extra_frac": d.w_extra,
            "value": "w = mantissa * 2**exponent",
            "mantissas": _ints(w_mant),
            "saturated_at_init": int(w_sat),
        },
        "constants": {"mant_bits": d.mant_bits, **consts},
        "homosynaptic": {
            "what": "c_eps / r_i per afferent, one shared shift (0 for r_i = 0)",
            "shift": d.homo_shift,
            "mantissas": _ints(d.homo_mant),
        },
        "rates_q": {"frac": D.RATE_FRAC, "values": _ints(d.rates_q)},
        "luts": {
            "sigmoid": {
                "entries": int(d.sigma_lut.size), "lut_bits": d.sigma_lut_bits,
                "frac": d.sigma_frac, "interpolate": bool(d.sigma_interp),
                "axis": {"variable": "V", "unit": "mV", "lo": -v_range, "step": sig_step,
                         "hi": v_range, "nodes": "V_k = lo + k * step, k = 0 .. 2**lut_bits"},
                **_table(d.sigma_lut, "list" if lut_format == "auto" else lut_format),
            },
            "gamma_s": {
                "frac": d.gamma_frac, "bits": d.gamma_bits, "epoch_steps": d.gamma_epoch,
                "interpolation": f"bilinear, {D.INTERP_FRAC}-bit position weights, half-up",
                "axes": {
                    "m": {"unit": "mV", "lo": D.M_LO, "n": 2**d.gamma_m_bits,
                          "step": D.M_SPAN / 2**d.gamma_m_bits, "lut_bits": d.gamma_m_bits,
                          "formed_as": f"sum_i w_i r_i, w at {D.STAT_W_FRAC} and r at {D.RATE_FRAC} fractional bits"},
                    "v": {"unit": "mV^2", "lo": 0.0, "n": 2**d.gamma_v_bits,
                          "step": D.V_SPAN / 2**d.gamma_v_bits, "lut_bits": d.gamma_v_bits,
                          "formed_as": f"inv_c_eps * sum_i w_i^2 r_i at {D.STAT_V_FRAC} fractional bits",
                          "note": "node 0 is evaluated at v = 1e-6 mV^2"},
                },
                "saturated_entries": int(np.count_nonzero(d.gamma_lut >= top_gamma)),
                **_table(d.gamma_lut, lut_format),
            },
        },
        "third_factor": {
            "post_factor": "P = eta * gamma_s * (1 - sigma) * e, e = y - phi_max_dt * sigma",
            "post_format": _fmt_var(d.variables["post"]),
            "intermediate_frac": {"gamma_s_times_one_minus_sigma": D.POST_A_FRAC,
                                  "times_error": D.POST_B_FRAC},
            "eta": {"mant": d.eta_mant, "shift": d.eta_shift},
            "phi_max_dt": {"mant": d.phidt_mant, "shift": d.phidt_shift},
            "bracket": "B_i = homo_i * x_i - c_eps_c_u + c_w * V * w_i (bracket format)",
            "update": "dw_i = P * B_i, rounded onto the weight accumulator (weights.rounding)",
        },
        "datapath_constants": {"V_GUARD_BITS": D.V_GUARD_BITS, "INTERP_FRAC": D.INTERP_FRAC,
                               "RATE_FRAC": D.RATE_FRAC, "STAT_W_FRAC": D.STAT_W_FRAC,
                               "STAT_V_FRAC": D.STAT_V_FRAC, "POST_A_FRAC": D.POST_A_FRAC,
                               "POST_B_FRAC": D.POST_B_FRAC},
    }
    if cfg.target == "loihi2":
        rec["learning_rule"] = loihi2_rule(task, eta)
    rec["discretize_info"] = {
        "what": "float value, realised integer value and relative error of every constant",
        "decay_m": _const(info["decay_m"]),
        "decay_s": _const(info["decay_s"]),
        **consts,
        "homo_c_eps_over_r": {"shift": int(info["homo_c_eps_over_r"]["shift"]),
                              "max_rel_err": float(info["homo_c_eps_over_r"]["max_rel_err"]),
                              "float_max": float(homo_vals.max()) if homo_vals.size else 0.0},
        "rates_q": {"frac": D.RATE_FRAC, "max_rel_err": float(rates_rel.max())},
        "sigmoid_lut": {"lsb": 2.0 ** -d.sigma_frac, "max_abs_err_at_nodes": 2.0 ** -(d.sigma_frac + 1),
                        "node_spacing_mV": sig_step},
        "gamma_s_lut": {"lsb": 2.0 ** -d.gamma_frac,
                        "max_abs_err_at_nodes": 2.0 ** -(d.gamma_frac + 1),
                        "saturated_entries": int(np.count_nonzero(d.gamma_lut >= top_gamma)),
                        "saturated_value": top_gamma * 2.0 ** -d.gamma_frac},
        "initial_weights": {"lsb": 2.0 ** -d.w_frac, "saturated": int(w_sat)},
    }
    return rec


def loihi2_rule(task, eta: float) -> dict:
    """The Loihi 2 learning-engine mapping of the rule (lava_procs path 2) for ``task``.

    Taken from :func:`emulator.learning.design_for_task`, the design that
    ``tests/lava_procs/test_lava_path2.py`` runs on Lava's ``LearningDense`` bit-exactly against the
    emulator's learning-engine mode; ``docs/learning_engine.md`` derives every constant.
    """
    from emulator import learning
    from emulator.hwconfig import load

    ds = learning.design_for_config(load("loihi2"), task, eta)
    return {
        "status": "design of lava_procs path 2 on the bundled loihi2 config, bit-exact with "
                  "Lava 0.10 LearningDense in tests/lava_procs/test_lava_path2.py (N = 20); this "
                  "instance: same construction",
        "rule": ds.rule, "rule_dd": ds.rule_dd,
        "learning_rule_class": "Loihi3FLearningRule",
        "products": [{"term": p.render(), "coef": float(p.coef)}
                     for p in ds.products + ds.dd_products],
        "traces": {"x1_impulse": ds.k_x, "x2_impulse": ds.k_x, "x1_tau": ds.x1_tau,
                   "x2_tau": ds.x2_tau},
        "weights": {"weight_exp": ds.weight_exp, "lsb": ds.lsb_w, "frac": ds.w_frac,
                    "hidden_bits": ds.hidden_bits, "tag_2_init": ds.d_offset},
        "tags": {"what": "tag_1 = round(T / r_i), c_eps/r_i on a static per-synapse tag",
                 "scale_T": float(ds.tag_scale), "step": ds.tag_step,
                 "values": _ints(ds.tags)},
        "third_factors": {**third_factor_text(ds), "unit_E": float(ds.e_q),
                          "constant_per_unit_acc_units": ds.c_ev, "v_lsb_mV": float(ds.v_lsb)},
        "neuron_integers": {"decay_m": ds.dm, "decay_s": ds.ds,
                            "phi_max_dt": {"mant": ds.phidt_mant, "shift": ds.phidt_shift},
                            "eta_over_E": {"mant": ds.k_mant, "shift": ds.k_shift},
                            "inv_v_lsb": {"mant": ds.vq_mant, "shift": ds.vq_shift},
                            "sigma_lut": _ints(ds.sigma_lut)},
    }


def _read_table(t: dict) -> np.ndarray:
    """A lookup table of the file, read-only like the discretize step's own (so the kernels
    see one array type and numba compiles them once)."""
    if t["encoding"] == "list":
        table = np.asarray(t["values"], dtype=np.int64).reshape(t["shape"])
    else:
        raw = zlib.decompress(base64.b64decode(t["data"]))
        table = np.frombuffer(raw, "<u4").astype(np.int64).reshape(t["shape"])
    table.flags.writeable = False
    return table


def load_deployment(path) -> tuple:
    """Read a ``deploy.yaml`` back into the emulator: ``(Discretized, w_int (1, M, N))``.

    Nothing is recomputed from floats: every integer of the datapath (decays, constants,
    tables, rates, initial weight mantissas) is taken from the file, so running the
    emulator with the result reproduces what the chip would do with these integers.
    """
    import yaml

    from emulator import discretize as D
    from emulator.hwconfig import validate
    from emulator.params import NeuronParams
    from emulator.variables import variable_table

    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    _check_content_digest(text, path)
    rec = yaml.safe_load(text)
    cfg = validate(rec["config"]["tree"], str(path))
    neuron = {k: v for k, v in rec["model"]["neuron"].items() if k != "c_eps"}
    params = NeuronParams(**neuron)
    tr, c, lut = rec["traces"], rec["constants"], rec["luts"]
    tf = rec["third_factor"]
    d = D.Discretized(
        cfg=cfg, params=params,
        variables=variable_table(cfg), mant_bits=c["mant_bits"],
        decay_frac=tr["decay_frac"], decay_m=tr["decay_m"], decay_s=tr["decay_s"],
        usp_mant=c["usp_scale"]["mant"], usp_shift=c["usp_scale"]["shift"],
        homo_mant=np.asarray(rec["homosynaptic"]["mantissas"], np.int64),
        homo_shift=rec["homosynaptic"]["shift"], cu_q=c["c_eps_c_u"]["int"],
        cw_mant=c["c_w"]["mant"], cw_shift=c["c_w"]["shift"],
        phidt_mant=tf["phi_max_dt"]["mant"], phidt_shift=tf["phi_max_dt"]["shift"],
        eta_mant=tf["eta"]["mant"], eta_shift=tf["eta"]["shift"],
        rates_q=np.asarray(rec["rates_q"]["values"], np.int64),
        inv_ceps_mant=c["inv_c_eps"]["mant"], inv_ceps_shift=c["inv_c_eps"]["shift"],
        sigma_lut=_read_table(lut["sigmoid"]), sigma_lut_bits=lut["sigmoid"]["lut_bits"],
        sigma_interp=lut["sigmoid"]["interpolate"],
        gamma_lut=_read_table(lut["gamma_s"]),
        gamma_m_bits=lut["gamma_s"]["axes"]["m"]["lut_bits"],
        gamma_v_bits=lut["gamma_s"]["axes"]["v"]["lut_bits"],
        gamma_epoch=lut["gamma_s"]["epoch_steps"],
    )
    w_int = np.asarray(rec["weights"]["mantissas"], np.int64)
    return d, w_int.reshape((1,) + w_int.shape[-2:]) if w_int.ndim >= 2 else w_int.reshape(1, 1, -1)


def dump_yaml(rec: dict) -> str:
    import yaml
    datapath = rec.get("format", FORMAT_VERSION) == FORMAT_VERSION
    if datapath:
        head = (f"# RECORD (load_deployment reads it and refuses an edited copy: redeploy to "
                f"change it): {FORMAT_VERSION}, chip integers of natgrad config "
                f"'{rec['config']['name']}'\n"
                "# written by `natgrad deploy` from emulator.discretize.discretize()\n")
    else:
        head = (f"# RECORD ONLY (edits change nothing that is built, and make the folder refuse "
                f"to build): {rec['format']}, Loihi 2 learning-engine deployment of natgrad "
                f"config '{rec['config']['name']}'\n# written by `natgrad deploy` from "
                "emulator.learning.design_for_config(); building reads design.json and "
                "network.json, checked against manifest.json\n")

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data):          # no &id001 anchors: every block stands alone
            return True

    body = yaml.dump(rec, Dumper=Dumper, sort_keys=False, default_flow_style=None, width=100)
    if datapath:
        head += f"{CONTENT_DIGEST}{hashlib.sha256(body.encode()).hexdigest()}\n"
    return head + body


#: The header line of a datapath deploy.yaml that holds the SHA-256 of the lines after it.
CONTENT_DIGEST = "# content-sha256: "


def _check_content_digest(text: str, path) -> None:
    """Refuse (UsageError, one line) a datapath deploy.yaml whose body does not match the
    digest in its header, or that has none."""
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if not line.startswith("#"):
            break
        if line.startswith(CONTENT_DIGEST):
            body = "".join(lines[i + 1:])
            if hashlib.sha256(body.encode()).hexdigest() != line[len(CONTENT_DIGEST):].strip():
                raise UsageError(f"{path}: changed since natgrad deploy wrote it (content "
                                 "SHA-256 differs from its header); redeploy instead of editing")
            return
    raise UsageError(f"{path}: no '{CONTENT_DIGEST.strip()}' header line (not written by "
                     "natgrad deploy, or by a version before digests: redeploy)")


def third_factor_text(d) -> dict:
    """What each third-factor port of the learning neuron carries in design ``d``."""
    carry = ("whatever one step cannot send waits in the neuron's carry for the next steps "
             "(post_carry counts it)")
    if d.encoding == "graded":
        out = {"coding": f"graded: a level L in 0..{d.levels} per epoch, a negative level worth "
                         f"E_n = {d.e_q:.6g}, a positive one {d.unit_ratio} E_n (units of "
                         "the rule's post factor); " + carry,
               "bap": "sign: the step is positive", "y1": f"{d.y_unit} L"}
    else:
        out = {"coding": f"events of size E_q = {d.e_q:.6g} with probability |P| / E_q; "
                         + carry,
               "bap": "positive event", "y1": f"negative event ({d.y_event})"}
    out["y2"] = "hidden-bits divisor constant" if d.dd_products else "unused (0)"
    out["y3"] = (f"{d.y_offset} + Vq, Vq = (L) V / {d.v_lsb:.6g} mV" if d.mapped_rule == "approx"
                 else f"{d.y_offset} (no heterosynaptic term)")
    return out


def learning_engine_record(cfg, d, w0: np.ndarray, seed: int, trial: int, task) -> dict:
    """The human-readable summary (``deploy.yaml``) of a learning-engine deployment."""
    from emulator import learning
    return {
        "format": learning.deployment.FORMAT,
        "config": {"name": cfg.name, "source": str(cfg.source), "kind": cfg.kind, "tree": cfg.tree},
        "model": {"rule": ("approximate natural gradient (Kreutzer et al. 2022, Eq 114)"
                           if d.mapped_rule == "approx" else "Euclidean gradient")
                          + " on Loihi 2's learning engine (docs/learning_engine.md)",
                  "N": int(task.N), "M": int(task.M), "rates_hz": task.rates.tolist(),
                  "eta_code": float(d.eta), "seed": int(seed), "trial": int(trial)},
        "learning_dense": {"weight_exp": int(d.weight_exp), "weight_lsb": float(d.lsb_w),
                           "weights": np.asarray(w0).tolist(), "tag_1": d.tags.tolist(),
                           "tag_2_init": int(d.d_offset) if d.dd_products else None},
        "learning_rule": {"dw": d.rule, "dd": d.rule_dd if d.dd_products else None,
                          "x1_impulse": int(d.k_x), "x1_tau": int(d.x1_tau),
                          "x2_impulse": int(d.k_x), "x2_tau": int(d.x2_tau),
                          "t_epoch": int(d.engine.t_epoch),
                          "rng_seed": int(learning.lava_trace_seed(seed, trial))},
        "third_factors": third_factor_text(d),
        "choices": {k: {"value": v[0], "why": v[1]} for k, v in d.choices.items()},
        "files": {"design.json": "every field of the Design (read by "
                                 "lava_procs.deployment.build_from_deployment)",
                  "network.json": "seed, trial and the initial integer weights",
                  "manifest.json": "each file's SHA-256, natgrad's version and the design's "
                                   "digest (build_from_deployment refuses a folder that "
                                   "disagrees with it)",
                  "deploy.yaml": "this record: for people, never read to build"},
        "lava": "lava_procs.deployment.build_from_deployment(DIR) -> (LearningDense, learning "
                "neuron); run_deployment(DIR, X, Y) runs them under Loihi2SimCfg",
        "what_runs_where": "synapses: Lava's LearningDense (on Loihi 2, the chip's learning "
                           "engine); learning neuron: a CPU ProcessModel only (on a chip its "
                           "program, docs/learning_neuron_program.md (24-bit words, no "
                           "division), must be written in neuron microcode or for an "
                           "embedded core)",
    }


def write_le_deployment(cfg, d, task, seed: int, folder: Path) -> str:
    """Write the learning-engine deployment of design ``d`` (trial 0 of ``task``) into the
    existing ``folder``; returns the design's digest.  ``natgrad deploy`` and ``natgrad run
    --out`` (the design it judged) both write through here."""
    from emulator import learning
    w0 = learning.quantize_weights(d, task.w_init[0])
    rec = learning_engine_record(cfg, d, w0, seed, 0, task)
    learning.deployment.write_deployment(folder, d, w0, seed, 0, record=dump_yaml(rec))
    return learning.deployment.design_digest(d)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same folder; UsageError on failure."""
    if path.is_dir():
        raise UsageError(f"--out {path}: is a folder (give a file name such as deploy.yaml)")
    parent = path.parent if str(path.parent) else Path(".")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)          # mkstemp makes 0600; give a normal file's mode
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise UsageError(f"--out {path}: cannot write ({exc.strerror or exc})") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
