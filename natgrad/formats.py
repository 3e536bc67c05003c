"""Derived formats of a hardware config, for ``natgrad check-config`` and the reports.

Everything here is read from the variable table of :mod:`emulator.variables` (built by
:func:`emulator.variables.variable_table`), so a new datapath variable appears without
edits to this module.
"""
from __future__ import annotations

from emulator.hwconfig import HwConfig
from emulator.variables import SPECS, variable_table

#: Datapath variables in datapath order.
VARIABLES = tuple(s.name for s in SPECS)


def variable_format(cfg: HwConfig, var: str) -> dict:
    """bits, frac, signed, lsb, representable [lo, hi], unit and rounding of one variable."""
    return variable_table(cfg)[var].describe()


def datapath_lines(cfg: HwConfig) -> list[str]:
    """The datapath config's table: every variable's format, the accumulator and tables."""
    lines = []
    lines.append(f"  {'variable':10s} {'format':>9s} {'LSB':>10s} {'range':>27s}  rounding   unit")
    for var in variable_table(cfg).values():
        f = var.describe()
        rng = f"[{f['lo']:.4g}, {f['hi']:.4g}]"
        lines.append(f"  {var.name:10s} {f['format']:>9s} {f['lsb']:10.3g} {rng:>27s}  "
                     f"{f['rounding']:10s} {f['unit']}")
    w = cfg["weights"]
    g = cfg["gamma_s"]
    lines.append(f"  weight accumulator: {w['bits'] + w['extra_frac']} bits "
                 f"({w['extra_frac']} hidden below the visible LSB)")
    lines.append(f"  gamma_s table: {2**g['m_lut_bits']} x {2**g['v_lut_bits']} nodes over "
                 f"m in [-32, 32) mV, v in [0, 64) mV^2, refreshed every {g['epoch_steps']} steps")
    lines.append(f"  sigmoid table: {2**cfg['sigmoid']['lut_bits'] + 1} nodes, "
                 f"{'interpolated' if cfg['sigmoid']['interpolate'] else 'nearest-below'}")
    lines += _range_warnings(cfg)
    return lines


def _range_warnings(cfg: HwConfig) -> list[str]:
    """Valid formats that cannot hold the Fig 3 task's weights (the config is still valid:
    runs count the saturations, but the user should know before running)."""
    from emulator.task import fig3_task
    task = fig3_task(n_trials=4, N=100, seed=0)
    need = float(max(abs(task.w_init).max(), task.w_range))
    hi = variable_table(cfg)["weights"].describe()["hi"]
    if hi >= need:
        return []
    return [f"  warning: weights range +-{hi:.3g} is below the Fig 3 task's expected largest "
            f"|w| ({need:.3g}): its runs would saturate the weights (counted); widen "
            "weights.bits - weights.frac"]


