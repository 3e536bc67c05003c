"""Derived formats of a hardware config, for ``natgrad check-config`` and the reports."""
from __future__ import annotations

from emulator.hwconfig import HwConfig

#: variable -> (config section, signed, unit)
VARIABLES = {
    "traces": ("traces", False, "spike counts"),
    "usp": ("usp", True, "mV"),
    "weights": ("weights", True, "1"),
    "potential": ("potential", True, "mV"),
    "sigma": ("sigmoid", False, "1"),
    "error": ("error", True, "1 per bin"),
    "gamma_s": ("gamma_s", False, "1"),
    "bracket": ("bracket", True, "1"),
    "post": ("post", True, "1"),
}


def variable_format(cfg: HwConfig, var: str) -> dict:
    """bits, frac, signed, lsb and representable [lo, hi] of one datapath variable."""
    section, signed, unit = VARIABLES[var]
    sec = cfg[section]
    frac = sec["frac"]
    if var == "sigma":
        bits = frac + 1                      # U0.F plus the value 1.0 itself
    elif var == "error":
        bits = frac + 2                      # |e| <= 1, signed
    else:
        bits = sec["bits"]
    lsb = 2.0 ** -frac
    if signed:
        lo, hi = -(2 ** (bits - 1)) * lsb, (2 ** (bits - 1) - 1) * lsb
    else:
        lo, hi = 0.0, (2 ** bits - 1) * lsb
    return {"bits": bits, "frac": frac, "signed": signed, "lsb": lsb, "lo": lo, "hi": hi,
            "unit": unit, "rounding": sec.get("rounding", "-")}


def describe(cfg: HwConfig) -> str:
    """A human-readable table of every variable's derived format."""
    lines = [f"config {cfg.name} ({cfg.source}): kind {cfg.kind}: valid"]
    if cfg.is_float:
        lines.append("  float64 reference: no fixed-point formats")
        return "\n".join(lines)
    lines.append(f"  {'variable':10s} {'format':>9s} {'LSB':>10s} {'range':>27s}  rounding   unit")
    for var in VARIABLES:
        f = variable_format(cfg, var)
        fmt = f"{'S' if f['signed'] else 'U'}{f['bits']}.{f['frac']}"
        rng = f"[{f['lo']:.4g}, {f['hi']:.4g}]"
        lines.append(f"  {var:10s} {fmt:>9s} {f['lsb']:10.3g} {rng:>27s}  {f['rounding']:10s} {f['unit']}")
    w = cfg["weights"]
    g = cfg["gamma_s"]
    lines.append(f"  weight accumulator: {w['bits'] + w['extra_frac']} bits "
                 f"({w['extra_frac']} hidden below the visible LSB)")
    lines.append(f"  gamma_s table: {2**g['m_lut_bits']} x {2**g['v_lut_bits']} nodes over "
                 f"m in [-32, 32) mV, v in [0, 64) mV^2, refreshed every {g['epoch_steps']} steps")
    lines.append(f"  sigmoid table: {2**cfg['sigmoid']['lut_bits'] + 1} nodes, "
                 f"{'interpolated' if cfg['sigmoid']['interpolate'] else 'nearest-below'}")
    return "\n".join(lines)
