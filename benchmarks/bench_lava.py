"""Milliseconds per step of path 1 (the NatGradNeuron Lava process) and of the emulator.

    uv run python benchmarks/bench_lava.py [--sizes 100 1000] [--steps 5000] [--json out.json]

Path 1 is timed on the blocking ``run`` only (compile and worker start-up are reported
separately as ``setup``); one trial, M = 1, loihi2 config.  Rows:

* ``lava async numba``  -- the default ``run_lava``: models converted to free-running
  AsyncProtocol models, fixed_pt step = the emulator's fused numba kernel
* ``lava loihi numba``  -- LoihiProtocol (phase handshake every step), same model
* ``lava async numpy``  -- fixed_pt step = ``emulator.datapath.step``
* ``emulator numba`` / ``emulator numpy`` -- ``emulator.run`` on the same task (after a
  warm-up call for numba's compilation)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emulator import runner as R  # noqa: E402
from emulator.task import fig3_task  # noqa: E402
from lava_procs import run_lava  # noqa: E402

CONFIG = "loihi2"
SEED = 1


def bench_lava(task, steps, backend, sync):
    res = run_lava(CONFIG, task, steps, SEED, backend=backend, sync=sync, read_output=False)
    t = res["timing"]
    return {"ms_per_step": 1e3 * t["run"] / steps, "steps": steps, "setup_s": t["setup"],
            "read_s": t["read"]}


def bench_emulator(task, steps, backend):
    if backend == "numba":
        R.run(CONFIG, task, 10, SEED, backend="numba")         # compile / load the cache
    t0 = time.perf_counter()
    R.run(CONFIG, task, steps, SEED, backend=backend)
    return {"ms_per_step": 1e3 * (time.perf_counter() - t0) / steps, "steps": steps}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--steps", type=int, default=5000, help="steps of the fast rows")
    ap.add_argument("--slow-steps", type=int, default=1000,
                    help="steps of the rows that use the numpy datapath")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    rows = []
    for n in args.sizes:
        task = fig3_task(n_trials=1, N=n, M=1, seed=0)
        cases = [
            ("lava async numba", lambda: bench_lava(task, args.steps, "numba", "async")),
            ("lava loihi numba", lambda: bench_lava(task, args.slow_steps, "numba", "loihi")),
            ("lava async numpy", lambda: bench_lava(task, args.slow_steps, "numpy", "async")),
            ("emulator numba", lambda: bench_emulator(task, 10 * args.steps, "numba")),
            ("emulator numpy", lambda: bench_emulator(task, args.slow_steps, "numpy")),
        ]
        for name, fn in cases:
            r = fn()
            r.update(name=name, N=n)
            rows.append(r)
            extra = f"  (setup {r['setup_s']:.2f} s)" if "setup_s" in r else ""
            print(f"N={n:5d}  {name:18s} {r['ms_per_step']:8.4f} ms/step over {r['steps']} steps"
                  f"{extra}", flush=True)
    print()
    print("| N | " + " | ".join(name for name, _ in cases) + " |")
    print("|---|" + "---|" * len(cases))
    for n in args.sizes:
        vals = [f"{r['ms_per_step']:.4f}" for r in rows if r["N"] == n]
        print(f"| {n} | " + " | ".join(vals) + " |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
