"""What ``natgrad run`` prints: the header, the learning curves, the verdict and the Lava check."""
from __future__ import annotations

import math

__all__ = ["crosscheck_text", "interval_text", "print_curves", "print_header", "print_verdict"]


def print_header(cfg, steps: int, dt: float, trials: int, task_info: dict, task, seed: int,
                 eta: float, eta_scale: float) -> None:
    print(f"natgrad run: config {cfg.name} ({cfg.kind}), {steps} steps "
          f"({steps * dt:g} s), {trials} trials, task {task_info['name']} "
          f"(N = {task.N}, M = {task.M}), seed {seed}, "
          f"learning rate eta {eta:.4g} (code units; x{eta_scale:.3g} the paper's)")


def print_curves(name: str, t_s, c_float, c_chip, c_euclid, story: dict) -> None:
    """Ten rows of the mean learning curves, then who leads when."""
    print(f"\n  {'t [s]':>7s} {'float RMSE [Hz]':>16s} {name + ' RMSE [Hz]':>18s} {'Euclid [Hz]':>12s}")
    for n in range(0, len(t_s), max(1, len(t_s) // 10)):
        eu_v = f"{c_euclid[n]:12.3f}" if c_euclid is not None and n < len(c_euclid) else ""
        print(f"  {t_s[n]:7.2f} {c_float[n]:16.3f} {c_chip[n]:18.3f} {eu_v}")
    print("  " + story["sentence"])


def print_verdict(v: dict, cross: dict) -> None:
    word = {"tracks": "TRACKS float", "does not track": "does NOT track float"}.get(
        v["status"], "NOT RESOLVED whether it tracks float")
    print(f"\n  verdict: {word} within "
          f"{v['tolerance_hz']:.3g} Hz: late excess {v['excess_hz']:+.3g} Hz"
          + interval_text(v["excess_ci95_hz"])
          + (f", {v['excess_pct_of_learned']:+.1f} % of the {v['learned_hz']:.3g} Hz learned"
             if v["excess_pct_of_learned"] is not None else ""))
    if v["status"] == "not resolved":
        print(f"  to resolve it: {v['resolve']}")
    if v["bottleneck"]:
        print(f"  bottleneck: {v['bottleneck']}: {v['evidence']}\n  advice: {v['advice']}")
    print(f"  Lava cross-check: {crosscheck_text(cross)}")


def interval_text(ci95) -> str:
    """'(+-x, 95 % CI over trials)', or why there is none (one trial has no spread)."""
    if ci95 is None or not math.isfinite(ci95):
        return " (no interval: one trial has no spread)"
    return f" (+-{ci95:.2g}, 95 % CI over trials)"


def crosscheck_text(cross: dict) -> str:
    if cross.get("lava_bit_exact") is None:
        return cross.get("detail", "not run")
    return (f"bit-exact over {cross['steps']} steps" if cross["lava_bit_exact"]
            else f"MISMATCH over {cross['steps']} steps: {cross.get('detail', '')}")
