"""``natgrad run``: float reference against a chip config on identical spikes.

Runs the Fig 3 teacher-student task (SPEC §1.5, §3.1: N = 100 afferents at 10/50 Hz,
w, w* ~ U(-1, 1)/N) at SPEC §3.1's scaled learning rates (x4) with
* the float64 approximate rule (the reference),
* the same rule on the chosen config (Loihi 2's learning engine, an integer datapath),
* the float64 Euclidean rule, for context,
all on the same input and teacher spikes, plus a short Lava cross-check of the config.  Prints the learning curves; with ``out`` it also writes the quantization report
(``report.md``, ``report.html``, ``report.json`` and PNG figures).
"""
from __future__ import annotations

import base64
import html
import json
import math
import platform
import time
from pathlib import Path

import numpy as np

from emulator import metrics
from emulator import runner as R
from emulator.hwconfig import HwConfig
from emulator.reference import ETA_CODE, simulate
from emulator.task import fig3_task
from emulator.variables import RECORD_VARIABLE
from natgrad.formats import variable_format
from natgrad.progress import Progress
from natgrad.protocol import ETA_SCALE, default_eta  # noqa: F401 (ETA_SCALE: importers)

N_AFFERENTS = 100
#: Trial-steps per emulator chunk.  The integer kernels hold the GIL while a chunk runs,
#: so a Ctrl-C is handled only between chunks: about a second of work at most.  (The
#: chunk size changes no bit of the results.)
CHUNK_TRIAL_STEPS = 100_000


def chunk_steps(trials: int) -> int:
    """Time steps per emulator chunk for ``trials`` trials (see CHUNK_TRIAL_STEPS)."""
    return max(50, min(4000, CHUNK_TRIAL_STEPS // max(1, int(trials))))
#: recorded quantities -> their datapath variable (emulator.variables)
REPORT_VARS = RECORD_VARIABLE


def _lava_crosscheck(cfg: HwConfig, task, seed: int, steps: int, eta: float | None = None) -> dict:
    """Run trial 0 under Lava (path 2 for a learning-engine config, the fixed_pt process of
    path 1 for a datapath config) and compare with the emulator bit for bit."""
    if steps == 0 or cfg.is_float:
        return {"lava_bit_exact": None, "steps": 0,
                "detail": "skipped (--lava-steps 0)" if steps == 0
                else "float config: no fixed-point process"}
    emu = R.run(cfg, task, steps, seed, eta=eta, trials=[0])
    if cfg.is_learning_engine:        # path 2: LearningDense + the learning neuron
        import lava_procs
        lava = lava_procs.run(cfg, task, steps, seed, trial=0, eta=eta)
        nv, ne = lava.state["neuron"], emu.state.neuron
        pairs = {"weights": (lava.w_int, emu.w_int),
                 "trace_x1": (lava.state["x1"], emu.state.x_traces[0, 0]),
                 "trace_x2": (lava.state["x2"], emu.state.x_traces[0, 1]),
                 "potential": (nv["v"], ne.v[0]), "gamma_s": (nv["gamma"], ne.gamma[0]),
                 # the neuron's counters (Lava clips LearningDense's words silently: the
                 # synapse counters exist in the emulator only)
                 "counters": (lava.counters, {k: emu.counters.get(k) for k in lava.counters})}
        if emu.state.d_tag is not None:
            pairs["tag_2"] = (lava.state["tag_2"], emu.state.d_tag[0])
        return _compare(pairs, steps)
    from lava_procs import run_lava
    lava = run_lava(cfg, task, steps, seed, tag="fixed_pt", trial=0, eta=eta)
    st = emu.state
    pairs = {"weights": (lava["w_int"], emu.w_int[0]), "trace_m": (lava["vars"]["a_m"], st.a_m[0]),
             "trace_s": (lava["vars"]["a_s"], st.a_s[0]), "potential": (lava["vars"]["v"], st.v[0]),
             "output_spikes": (lava["n_spikes"], emu.output_spikes[0]),
             "counters": (lava["vars"]["counts"], st.counts)}
    return _compare(pairs, steps)


def _compare(pairs: dict, steps: int) -> dict:
    differ = [name for name, (a, b) in pairs.items()
              if not (a == b if isinstance(a, dict) else np.array_equal(a, b))]
    return {"lava_bit_exact": not differ, "steps": steps, "trial": 0,
            "compared": sorted(pairs), "differ": differ,
            "detail": "equal: " + ", ".join(sorted(pairs)) if not differ
            else "differ: " + ", ".join(differ)}


def _extremes(res, name) -> tuple[float, float] | None:
    """(min, max) of a variable over every step of every trial of a run (the kernels'
    running extremes, :attr:`emulator.RunResult.extremes`), None if not counted."""
    e = res.extremes.get(name)
    if e is None or not np.any(np.isfinite(e[0])):
        return None
    return float(np.nanmin(e[0])), float(np.nanmax(e[1]))


def _variable_table(cfg, fl, fx) -> dict:
    """Per-variable error statistics in LSB of the fixed format (from the recorded steps),
    plus range use from every step: the float run's and the chip's running extremes, and the
    headroom above the larger magnitude of the two (negative: float needs more range than the
    format has; 0: the chip saturated)."""
    out = {}
    for name, var in REPORT_VARS.items():
        f = variable_format(cfg, var)
        a, b = fl.record.get(name), fx.record.get(name)
        if a is None or b is None or a.size == 0:
            continue
        err = (b - a) / f["lsb"]
        ext_fl, ext_fx = _extremes(fl, name), _extremes(fx, name)
        seen = [v for e in (ext_fl, ext_fx) if e is not None for v in e]
        peak = max(abs(v) for v in seen) if seen else float(np.max(np.abs(a)))
        top = max(abs(f["lo"]), abs(f["hi"]))
        counters = fx.counters.get(var, {})
        out[name] = {
            "format": f"{'S' if f['signed'] else 'U'}{f['bits']}.{f['frac']}",
            "lsb": f["lsb"],
            "rmse_lsb": float(np.sqrt(np.mean(err**2))),
            "mean_err_lsb": float(np.mean(err)),
            "max_abs_err_lsb": float(np.max(np.abs(err))),
            "range_from": "every step" if seen else "recorded steps",
            "float_min": ext_fl[0] if ext_fl else float(np.min(a)),
            "float_max": ext_fl[1] if ext_fl else float(np.max(a)),
            "chip_min": ext_fx[0] if ext_fx else float(np.min(b)),
            "chip_max": ext_fx[1] if ext_fx else float(np.max(b)),
            "range_lo": f["lo"], "range_hi": f["hi"],
            "headroom_bits": float(math.log2(top / peak)) if peak > 0 else None,
            "overflow": int(counters.get("overflow", 0)),
            "saturation": int(counters.get("saturation", 0)),
            "underflow": int(counters.get("underflow", 0)),
            "first_step": counters.get("first_step", {}),
        }
    return out


#: The main job runs SPEC §3.1's validated scaled-down Fig 3F protocol: the code learning
#: rates times 4 (:mod:`natgrad.protocol`), so that a few hundred seconds show the whole
#: story (Euclid first, then the natural-gradient rules ahead) instead of only its beginning.
#: Default length: 300 s of simulated time.
DEFAULT_STEPS = 600_000


def _evidence(cfg, fx, variables: dict, upd: dict | None, steps: int, trials: int,
              learned: float) -> dict:
    """Candidate bottlenecks ``{name: (score, evidence, advice)}``: scores are the share of
    the learning signal a quantizer loses (0..1), from counters and local errors."""
    ev = {}
    n_syn = trials * fx.w_final.shape[-1] * fx.w_final.shape[-2] * max(steps, 1)
    if cfg.is_learning_engine:
        d = fx.state.design
        c = fx.counters
        sc = getattr(fx.state, "synapse_counters", {}) or {}
        n_neuron = max(trials * steps, 1)
        n_syn_epochs = max(n_syn // max(d.t_epoch, 1), 1)
        n_neuron = max(n_neuron * fx.w_final.shape[-2], 1)          # neurons x steps
        words = c.get("neuron_word", {}).get("saturation", 0)
        inputs = c.get("neuron_input", {}).get("saturation", 0)
        if words or inputs:
            nf = d.neuron
            ev["neuron word"] = (
                min(1.0, 20.0 * (words + inputs) / n_neuron),
                f"the learning neuron's {nf.word_bits}-bit words saturated {words} times and "
                f"its 16-bit input {inputs} times in {n_neuron} neuron steps (the task's "
                f"dendritic current exceeds what filter_frac {nf.filter_frac} leaves room for: "
                f"|A| <= 2**{nf.word_bits - 1 - nf.filter_frac} weight LSB x spikes)",
                "fewer fractional bits in the neuron's filters (neuron.filter_frac; each one "
                "doubles their range), or a coarser weight LSB (mapping.w_frac)")
        carried = c.get("post", {}).get("carry", c.get("post", {}).get("saturation", 0))
        share = carried / n_neuron
        coding = (f"{d.levels} levels of E_n and {d.unit_ratio} E_n" if d.encoding == "graded"
                  else "one event of E_q")
        ev["post"] = (min(1.0, share),
                      f"{carried} of {n_neuron} neuron steps ({100 * share:.2f} %) had more "
                      f"post factor than one step sends ({coding}); the excess was carried into "
                      "the next steps (delayed by a step or a few, not lost)",
                      "a larger level (mapping.c_ev) carries less but leaves fewer hidden "
                      "bits; on the Fig 3 task carries cost less than hidden bits "
                      "(docs/learning_engine.md)" if d.encoding == "graded" else
                      "raise neuron.g_cap (larger events) or lower eta")
        lost = int(sc.get("tag_saturation", 0)) + int(sc.get("acc_saturation", 0))
        ev["tag_2 range"] = (min(1.0, 2000.0 * lost / n_syn_epochs),
                             f"{sc.get('tag_saturation', 0)} tag_2 and "
                             f"{sc.get('acc_saturation', 0)} accumulator saturations in "
                             f"{n_syn_epochs:.3g} synapse epochs: updates beyond tag_2's room "
                             f"(offset {d.d_offset}, {d.hidden_bits} hidden bits) were clipped",
                             "fewer hidden bits (mapping.hidden_bits) or another "
                             "mapping.tag_offset")
        vq = c.get("vq", {}).get("saturation", 0)
        ev["vq"] = (min(1.0, 10.0 * vq / n_neuron),
                    f"y3 = 64 + Vq clipped {vq} times (V beyond +-{d.mapping.v_range_mv:.3g} "
                    "mV)", "raise mapping.v_range_mv")
        ev["weights"] = (0.5 * min(1.0, d.lsb_w * 2.0 ** -d.hidden_bits / max(learned, 1e-30)),
                         f"weight LSB 2^-{d.w_frac} = {d.lsb_w:.3g} against a learned change of "
                         f"{learned:.3g} RMS; updates are learnt {d.hidden_bits} bits below it "
                         "in tag_2 and carried, the rest rounded every epoch with one random "
                         "number shared by all synapses (Lava's engine)",
                         "more hidden bits (mapping.hidden_bits), if tag_2's room allows")
        return ev
    w = variables.get("weights", {})
    under = w.get("underflow", 0)
    share = (upd or {}).get("magnitude_share_below_half_lsb")
    head = w.get("headroom_bits")
    if share is not None:
        ev["weights"] = (share, f"{100 * under / n_syn:.1f} % of the {n_syn:.3g} weight updates "
                         f"rounded to zero; {100 * share:.1f} % of the update magnitude is below "
                         f"half a weight LSB; {head if head is None else round(head, 2)} bits of "
                         "weight headroom",
                         "+8 hidden weight bits (weights.extra_frac: 8)")
    for name, row in variables.items():
        loc = row.get("local")
        if not loc or name == "weights" or loc.get("snr") in (None, 0):
            continue
        fmt = variable_format(cfg, REPORT_VARS[name])
        advice = ("interpolate the sigmoid table (sigmoid.interpolate: true)"
                  if name == "sigma" and not cfg["sigmoid"]["interpolate"]
                  else f"+2 fractional bits on {REPORT_VARS[name]} ({fmt['format']})")
        ev[name] = (min(1.0, 1.0 / loc["snr"]),
                    f"{name}: local rounding error {loc['rms_lsb']:.3g} LSB RMS, bias "
                    f"{loc['bias_lsb']:.3g} LSB, signal/noise {loc['snr']:.3g}", advice)
    for name, row in variables.items():
        if row.get("saturation"):
            n_op = trials * steps * (fx.w_final.shape[-1] if name in (
                "usp", "trace_m", "trace_s", "weights") else 1) * fx.w_final.shape[-2]
            ev[f"{name} range"] = (min(1.0, 5.0 * row["saturation"] / n_op),
                                   f"{name} saturated {row['saturation']} times",
                                   f"widen {REPORT_VARS[name]} (more integer bits)")
    return ev


def run_main_job(cfg: HwConfig, steps: int, seed: int, trials: int = 4, out: Path | None = None,
                 lava_steps: int = 200, progress: bool = True, eta: float | None = None,
                 task_spec=None) -> dict:
    """Run the default job and return the report dictionary (also written when ``out``,
    with the deployment of the design judged).  ``eta``: the approximate rule's learning
    rate in code units (default: the task file's, else :func:`default_eta`); the Euclidean
    context run is scaled by the same factor against the paper's code rates.  ``task_spec``:
    an :class:`emulator.taskfile.TaskSpec` (default: the paper's Fig 3 task, N = 100)."""
    from natgrad import analysis
    t_start = time.time()
    if task_spec is None:
        task = fig3_task(n_trials=trials, N=N_AFFERENTS, seed=seed)
        task_info = {"name": "fig3 (built in)", "N": N_AFFERENTS, "M": 1}
    else:
        task = task_spec.build(trials, seed)
        task_info = task_spec.describe()
        eta = task_spec.eta if eta is None else eta
    eval_every = max(1, steps // 40) if steps else 1
    rec_every = eval_every
    x_test = metrics.test_set(task, seed)
    eta = default_eta() if eta is None else float(eta)
    eta_scale = eta / ETA_CODE["approx"]
    bar = Progress(3 * steps + 1, progress, prefix="natgrad run")
    bar.stage("float64 reference, chip config, Euclidean rule")
    print(f"natgrad run: config {cfg.name} ({cfg.kind}), {steps} steps "
          f"({steps * task.params.dt:g} s), {trials} trials, task {task_info['name']} "
          f"(N = {task.N}, M = {task.M}), seed {seed}, "
          f"learning rate eta {eta:.4g} (code units; x{eta_scale:.3g} the paper's)")

    rec = tuple(REPORT_VARS)
    chunk = chunk_steps(trials)
    fl = R.run("float64", task, steps, seed, eta=eta, record=rec, record_every=rec_every,
               chunk_steps=chunk, progress=lambda d: bar(d, "float64 approx"))
    if cfg.is_learning_engine:        # the engine model records the weights only
        rec = R.LE_RECORDABLE
    fx = R.run(cfg, task, steps, seed, eta=eta, record=rec, record_every=rec_every,
               chunk_steps=chunk, progress=lambda d: bar(steps + d, f"{cfg.name} emulator"))
    bar(2 * steps, "float64 Euclidean")
    eu = simulate(task, "euclid", ETA_CODE["euclid"] * eta_scale, steps, seed,
                  record_every=eval_every, eval_every=eval_every)
    bar(3 * steps, "float64 Euclidean")
    n_lava = min(lava_steps, steps)
    if n_lava and not cfg.is_float:
        bar.stage(f"Lava cross-check ({n_lava} steps)")
    cross = _lava_crosscheck(cfg, task, seed, n_lava, eta)
    bar(3 * steps + 1, "done")
    bar.close()

    def curve(w_rec):                 # (points, trials)
        w_all = np.concatenate([task.w_init[None], w_rec])
        return np.array([metrics.rate_rmse_hz(w, task.w_target, x_test, task.params).mean(axis=1)
                         for w in w_all])

    t_s = np.concatenate([[0.0], fl.record_t_s])
    ct_float = curve(fl.record["weights"])
    ct_fixed = curve(fx.record["weights"]) if not cfg.is_float else ct_float
    c_float, c_fixed = ct_float.mean(axis=1), ct_fixed.mean(axis=1)
    c_euclid = eu.rmse.mean(axis=(1, 2)) if eu.rmse is not None else None

    print(f"\n  {'t [s]':>7s} {'float RMSE [Hz]':>16s} {cfg.name + ' RMSE [Hz]':>18s} {'Euclid [Hz]':>12s}")
    for n in range(0, len(t_s), max(1, len(t_s) // 10)):
        eu_v = f"{c_euclid[n]:12.3f}" if c_euclid is not None and n < len(c_euclid) else ""
        print(f"  {t_s[n]:7.2f} {c_float[n]:16.3f} {c_fixed[n]:18.3f} {eu_v}")
    story = analysis.leader_story(t_s, c_float, c_euclid if c_euclid is not None else c_float + 1)
    print("  " + story["sentence"])

    variables, upd, d = {}, None, None
    if cfg.is_fixed:
        from emulator.discretize import discretize
        d = discretize(cfg, task.params, task.rates, eta)
        variables = _variable_table(cfg, fl, fx)
        local = analysis.local_references(fx.record, task, d, eta)
        for name, row in variables.items():
            lsb = row["lsb"]
            row["trajectory"] = analysis.error_split(fx.record[name], fl.record[name], lsb)
            if name in local:
                row["local"] = analysis.error_split(fx.record[name], local[name], lsb)
        upd = analysis.updates(fx.record, fl.record, task, d.variables["weights"].lsb)
    w_err = fx.w_final - fl.w_final
    learned = np.sqrt(np.mean((fl.w_final - task.w_init) ** 2))
    curves_all = {"t_s": t_s, "float_trials": ct_float, "fixed_trials": ct_fixed}
    verdict = analysis.verdict(curves_all, fx.counters,
                               {} if cfg.is_float else _evidence(cfg, fx, variables, upd, steps, trials,
                                                                  float(learned)))
    late = analysis.late_slice(len(t_s))
    report = {
        "config": {"name": cfg.name, "source": str(cfg.source), "kind": cfg.kind, "tree": cfg.tree},
        "verdict": verdict,
        "story": story,
        "steps": steps, "seed": seed, "trials": trials, "N": task.N, "M": task.M,
        "task": task_info,
        "dt_s": task.params.dt,
        "eta_code": {"approx": eta, "euclid": ETA_CODE["euclid"] * eta_scale,
                     "scale_vs_paper_code": eta_scale},
        "curves": {"t_s": t_s.tolist(),
                   "float": {"rate_rmse_hz": c_float.tolist(),
                             "per_trial": ct_float.T.tolist()},
                   "fixed": {"rate_rmse_hz": c_fixed.tolist(),
                             "per_trial": ct_fixed.T.tolist()},
                   "euclid_float": {"rate_rmse_hz": None if c_euclid is None else c_euclid.tolist()}},
        "late_window": {
            "t_s": verdict["late_window_s"],
            "float_rmse_hz": dict(zip(("mean", "ci95"), analysis.mean_ci(ct_float[late], axis=1))),
            "fixed_rmse_hz": dict(zip(("mean", "ci95"), analysis.mean_ci(ct_fixed[late], axis=1)))},
        "variables": variables,
        "updates": upd,
        "weights": {"final_rmse_vs_float": float(np.sqrt(np.mean(w_err**2))),
                    "final_max_abs_vs_float": float(np.max(np.abs(w_err))),
                    "learned_change_rms_float": float(learned)},
        "counters": fx.counters,
        "crosscheck": cross,
        "provenance": {**_provenance(seed, t_start), "task": task_info},
    }
    deployment = (_judged_deployment(cfg, fx, task, seed, eta,
                                     None if task_spec is None else task_spec.source)
                  if out is not None else None)
    if deployment is not None:
        report["deployment"] = {k: v for k, v in deployment.items() if k != "write"}
    v = verdict
    word = {"tracks": "TRACKS float", "does not track": "does NOT track float"}.get(
        v["status"], "NOT RESOLVED whether it tracks float")
    print(f"\n  verdict: {word} within "
          f"{v['tolerance_hz']:.3g} Hz: late excess {v['excess_hz']:+.3g} Hz "
          f"(+-{v['excess_ci95_hz']:.2g}, 95 % CI over trials)"
          + (f", {v['excess_pct_of_learned']:+.1f} % of the {v['learned_hz']:.3g} Hz learned"
             if v["excess_pct_of_learned"] is not None else ""))
    if v["status"] == "not resolved":
        print(f"  to resolve it: {v['resolve']}")
    if v["bottleneck"]:
        print(f"  bottleneck: {v['bottleneck']}: {v['evidence']}\n  advice: {v['advice']}")
    print(f"  Lava cross-check: {_verdict(cross)}")
    if out is not None:
        from natgrad.progress import Heartbeat
        from natgrad.report import write_report
        with Heartbeat("natgrad run", progress) as hb:
            hb.stage("writing the report")
            write_report(report, fl, fx, out,   # atomic: a temp folder, then renames
                         extra=None if deployment is None else deployment["write"])
        print(f"  report written to {out}/report.html, report.md, report.json")
    return report


def _judged_deployment(cfg, fx, task, seed: int, eta: float, task_source=None) -> dict | None:
    """The deployment of exactly the design this run judged (``natgrad deploy`` with the
    same --config, --seed, --trials and --eta writes the same bits): its files, digest and a
    writer into the report's folder."""
    import hashlib

    from natgrad import deploy_files as deploy
    task_arg = f" --task {task_source}" if task_source else ""
    if cfg.is_learning_engine:
        d = fx.state.design                          # the Design the emulator ran

        def write(folder):
            (folder / "deployment").mkdir()
            deploy.write_le_deployment(cfg, d, task, seed, folder / "deployment")
        from emulator.learning.deployment import design_digest
        return {"files": "deployment/", "design_digest": design_digest(d), "write": write,
                "same_as": f"natgrad deploy --config {cfg.source}{task_arg} --seed {seed} "
                           f"--trials {task.n_trials} --eta {eta!r} --out DIR"}
    if cfg.is_fixed:
        text = deploy.dump_yaml(deploy.deploy_record(cfg, seed=seed, n_afferents=task.N,
                                                     eta=eta, task=task))
        return {"files": "deploy.yaml",
                "design_digest": hashlib.sha256(text.encode()).hexdigest(),
                "write": lambda folder: (folder / "deploy.yaml").write_text(text),
                "same_as": f"natgrad deploy --config {cfg.source}{task_arg} --seed {seed} "
                           f"--eta {eta!r} --out FILE"}
    return None


def _provenance(seed: int, t_start: float) -> dict:
    """Versions, the git commit of the code that ran, and the wall time."""
    import subprocess
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parent, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5,
                               cwd=Path(__file__).resolve().parent).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", False
    versions = {}
    for pkg in ("numpy", "scipy", "numba", "lava-nc", "matplotlib", "pyyaml"):
        try:
            from importlib.metadata import version
            versions[pkg] = version(pkg)
        except Exception:  # noqa: BLE001 - provenance only
            versions[pkg] = "unavailable"
    return {"python": platform.python_version(), "natgrad": _version(),
            "git_commit": commit or "unknown (not a git checkout)", "git_dirty": dirty,
            "packages": versions, "numpy": np.__version__, "lava": _lava_version(),
            "seed": seed, "wall_s": round(time.time() - t_start, 1)}


def _verdict(cross) -> str:
    if cross.get("lava_bit_exact") is None:
        return cross.get("detail", "not run")
    return (f"bit-exact over {cross['steps']} steps" if cross["lava_bit_exact"]
            else f"MISMATCH over {cross['steps']} steps: {cross.get('detail', '')}")


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("natgrad")
    except Exception:  # noqa: BLE001 - provenance only
        return "unknown"


def _lava_version() -> str:
    try:
        from importlib.metadata import version
        return version("lava-nc")
    except Exception:  # noqa: BLE001
        return "unavailable"
