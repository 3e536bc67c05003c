"""Emulator speed: ms per step and ns per synapse-step, numba kernel vs numpy datapath.

Shapes: the Fig 3F task (N = 100, 1 and 16 trials), and the 1000 -> 500 scenario of the
Zenke & Ganguli slides (N = 1000 inputs shared by M = 500 output neurons).

    uv run python benchmarks/bench_emulator.py
"""
from __future__ import annotations

import time

from emulator import run as R
from emulator.task import fig3_task

SHAPES = [  # (trials B, outputs M, afferents N, steps for numba, steps for numpy)
    (1, 1, 100, 20_000, 1_000),
    (16, 1, 100, 10_000, 500),
    (1, 500, 1000, 200, 10),
]


def timed(cfg, task, steps, backend):
    R.run(cfg, task, 2, 0, backend=backend)          # compile / warm caches
    t0 = time.perf_counter()
    R.run(cfg, task, steps, 0, backend=backend, chunk_steps=min(steps, 4000))
    return (time.perf_counter() - t0) / steps


def main():
    print("| config | B x M x N | numba ms/step | numba ns/syn-step | numpy ms/step |")
    print("|---|---|---|---|---|")
    for cfg in ("loihi2", "fxp32"):
        for b, m, n, s_nb, s_np in SHAPES:
            task = fig3_task(n_trials=b, N=n, M=m, seed=0)
            t_nb = timed(cfg, task, s_nb, "numba")
            t_np = timed(cfg, task, s_np, "numpy")
            syn = b * m * n
            print(f"| {cfg} | {b} x {m} x {n} | {1e3 * t_nb:.3f} | {1e9 * t_nb / syn:.1f} "
                  f"| {1e3 * t_np:.2f} |")


if __name__ == "__main__":
    main()
