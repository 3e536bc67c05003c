"""Path 2 with many outputs: the large bundled task under Lava, bit for bit
against the emulator, and the speed of both.

    uv run python benchmarks/bench_lava_path2_many_outputs.py [--steps 2000] [--no-numpy]
        [--scan 1 10 50 100 250] [--scan-steps 200] [--task large_n1000_m500]
        [--out benchmarks/results/issue22]

Main run: trial 0 of the bundled task ``large_n1000_m500`` (N = 1000 afferents at 5/10/20/50
Hz, M = 500 outputs, each with its own teacher; the file's learning rate, 4 x the paper's =
``natgrad run``'s) on the shipped ``loihi2`` config for ``--steps`` steps (reduced duration:
the file's protocol is 10 s = 20 000 steps):

* ``lava``: :func:`lava_procs.learning_engine.run_lava_le`, one ``LearningDense`` (500 x
  1000) and one learning neuron process of shape (500,), one blocking run.  ms/step is the
  blocking run only; ``setup_s`` (spikes, processes, compile, worker start) and ``read_s``
  (``get()`` of the Vars, which Lava 0.10 sends one element per message) are reported apart.
* ``emulator numba``: :func:`emulator.learning.run` (fused kernel, one trial, so one
  thread), timed after a warm-up call; ``emulator numpy``: the numpy steps (unless
  ``--no-numpy``).
* ``bit_exact``: every quantity Lava reads back (weights, tag_2, x1, x2, each Var of
  ``NEURON_VARS``, the counters, the levels sent) against each emulator backend.

``--scan``: the first M outputs of the same task (same design, same spikes and teachers
for those neurons), ``--scan-steps`` steps each, Lava and the numba emulator: how ms/step
grows with M.  Writes ``many_outputs.json`` and ``many_outputs.txt`` into ``--out``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from emulator import learning as LE  # noqa: E402
from emulator.hwconfig import load  # noqa: E402
from emulator.task import Task  # noqa: E402
from emulator.taskfile import load_task  # noqa: E402

SEED, TRIAL = 0, 0
NEURON_FIELDS = ("a_m", "a_s", "hbar", "gamma", "v", "sigma", "err", "p", "pend", "sent",
                 "carry")


def first_outputs(task: Task, m: int) -> Task:
    """The task's first ``m`` output neurons (their weights; spikes are per neuron index)."""
    return Task(rates=task.rates, w_init=task.w_init[:, :m], w_target=task.w_target[:, :m],
                params=task.params, f=task.f, inputs=task.inputs)


def compare(res: dict, emu) -> dict:
    """Field -> equal? for every quantity Lava reads back (trial index 0 of ``emu``)."""
    nv = res["neuron"]
    out = {"w_int": np.array_equal(res["w_int"], emu.w_int[0]),
           "tag_2": np.array_equal(res["tag_2"], emu.d_tag[0]),
           "x1": np.array_equal(res["x1"], emu.x_traces[0, 0]),
           "x2": np.array_equal(res["x2"], emu.x_traces[0, 1]),
           "counts": np.array_equal(nv["counts"], emu.neuron.counts),
           "events": np.array_equal(nv["events"], emu.events[0]),
           "counters": res["counters"] == emu.counters}
    for f in NEURON_FIELDS:
        out[f] = np.array_equal(nv[f], getattr(emu.neuron, f)[0])
    return out


def maxrss_mb() -> dict:
    """Peak resident memory [MB]: this process, and the largest finished child (Lava's
    workers are forked children, reaped at ``stop()``)."""
    return {"self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def time_emulator(task, d, steps, backend):
    LE.run(task, 10, SEED, d, trials=[TRIAL], backend=backend)          # compile / warm up
    t0 = time.perf_counter()
    emu = LE.run(task, steps, SEED, d, trials=[TRIAL], backend=backend)
    return emu, time.perf_counter() - t0


def main_run(task, d, steps, numpy_backend):
    from lava_procs.learning_engine import run_lava_le
    m, n = task.M, task.N
    print(f"lava: N = {n}, M = {m}, {steps} steps ...", flush=True)
    res = run_lava_le(d, task, steps, SEED, trial=TRIAL)
    t = res["timing"]
    out = {"N": n, "M": m, "synapses": m * n, "steps": steps,
           "lava": {"ms_per_step": 1e3 * t["run"] / steps, "run_s": t["run"],
                    "setup_s": t["setup"], "read_s": t["read"], "maxrss_mb": maxrss_mb()}}
    print(f"  {out['lava']}", flush=True)
    backends = ["numba"] + (["numpy"] if numpy_backend else [])
    for b in backends:
        emu, s = time_emulator(task, d, steps, b)
        out[f"emulator {b}"] = {"ms_per_step": 1e3 * s / steps, "run_s": s}
        eq = compare(res, emu)
        out[f"bit_exact vs {b}"] = eq
        print(f"  emulator {b}: {1e3 * s / steps:.3f} ms/step; bit-exact: "
              f"{all(eq.values())} {'' if all(eq.values()) else eq}", flush=True)
        if b == "numba":
            w0 = LE.quantize_weights(d, task.w_init[TRIAL])
            dw = np.abs(emu.w_int[0] - w0)
            ev = emu.events[0]
            out["activity"] = {
                "levels_sent_pos": int(ev[:, 0].sum()), "levels_sent_neg": int(ev[:, 1].sum()),
                "neurons_with_both_signs": int(np.sum((ev[:, 0] > 0) & (ev[:, 1] > 0))),
                "teacher_spikes": int(emu.teacher_spikes.sum()),
                "neurons_whose_weights_moved": int(np.sum(dw.max(axis=1) > 0)),
                "max_weight_change_lsb": int(dw.max()),
                "synapses_changed": int(np.sum(dw > 0)),
                "counters": emu.counters, "synapse_counters": emu.synapse_counters}
            print(f"  {out['activity']}", flush=True)
    return out


def scan(task, d, ms, steps):
    from lava_procs.learning_engine import run_lava_le
    rows = []
    for m in ms:
        sub = first_outputs(task, m)
        res = run_lava_le(d, sub, steps, SEED, trial=TRIAL)
        emu, s = time_emulator(sub, d, steps, "numba")
        eq = compare(res, emu)
        t = res["timing"]
        rows.append({"M": m, "steps": steps, "lava_ms_per_step": 1e3 * t["run"] / steps,
                     "lava_setup_s": t["setup"], "lava_read_s": t["read"],
                     "emulator_numba_ms_per_step": 1e3 * s / steps,
                     "bit_exact": all(eq.values())})
        print(f"  scan M = {m:4d}: lava {rows[-1]['lava_ms_per_step']:8.2f} ms/step, emulator "
              f"{rows[-1]['emulator_numba_ms_per_step']:7.3f} ms/step, setup {t['setup']:.1f} s,"
              f" read {t['read']:.1f} s, bit-exact {rows[-1]['bit_exact']}", flush=True)
    return rows


def table(out) -> str:
    lines = [f"task {out['task']} (N = {out['main']['N']}, M = {out['main']['M']}), config "
             f"loihi2, {out['main']['steps']} steps, seed {SEED}, trial {TRIAL}, "
             f"eta {out['eta']:g}; 1-min load average {out['loadavg_1min_before']:.1f} before, "
             f"{out['loadavg_1min_after']:.1f} after, on {out['machine']['cpus']} CPUs", ""]
    mr = out["main"]
    lines.append("| run | ms/step | synapse-steps/s | bit-exact with Lava |")
    lines.append("|---|---|---|---|")
    for k in [k for k in ("lava", "emulator numba", "emulator numpy") if k in mr]:
        ms = mr[k]["ms_per_step"]
        ok = "" if k == "lava" else str(all(mr[f"bit_exact vs {k.split()[1]}"].values()))
        lines.append(f"| {k} | {ms:.3f} | {mr['synapses'] / ms * 1e3:.3g} | {ok} |")
    lv = mr["lava"]
    lines += ["", f"lava setup {lv['setup_s']:.1f} s, read {lv['read_s']:.1f} s, peak RSS "
              f"{lv['maxrss_mb']['self']:.0f} MB (host) / {lv['maxrss_mb']['children']:.0f} MB "
              "(largest worker)", f"activity: {json.dumps(mr.get('activity'))}"]
    if out.get("scan"):
        lines += ["", "| M | lava ms/step | emulator numba ms/step | lava setup s | lava read s |"
                  " bit-exact |", "|---|---|---|---|---|---|"]
        for r in out["scan"]:
            lines.append(f"| {r['M']} | {r['lava_ms_per_step']:.2f} | "
                         f"{r['emulator_numba_ms_per_step']:.3f} | {r['lava_setup_s']:.1f} | "
                         f"{r['lava_read_s']:.1f} | {r['bit_exact']} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="large_n1000_m500")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--no-numpy", action="store_true", help="skip the numpy emulator backend")
    ap.add_argument("--scan", type=int, nargs="*", default=[1, 10, 50, 100, 250])
    ap.add_argument("--scan-steps", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "issue22")
    a = ap.parse_args(argv)
    spec = load_task(a.task)
    task = spec.build(n_trials=1, seed=spec.seed)
    d = LE.design_for_config(load("loihi2"), task, spec.eta)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip()
    out = {"task": spec.name, "task_sha256": spec.digest, "eta": spec.eta, "rule": d.rule,
           "encoding": d.encoding, "seed": SEED, "trial": TRIAL, "git_commit": commit,
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
           "loadavg_1min_before": os.getloadavg()[0]}
    t0 = time.perf_counter()
    out["main"] = main_run(task, d, a.steps, not a.no_numpy)
    out["scan"] = scan(task, d, a.scan, a.scan_steps) if a.scan else []
    out["wall_s"] = time.perf_counter() - t0
    out["loadavg_1min_after"] = os.getloadavg()[0]       # other jobs on the machine slow both
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "many_outputs.json").write_text(json.dumps(out, indent=1, default=str))
    txt = table(out)
    (a.out / "many_outputs.txt").write_text(txt)
    print(txt)
    ok = all(all(v.values()) for k, v in out["main"].items() if k.startswith("bit_exact"))
    ok = ok and all(r["bit_exact"] for r in out["scan"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
