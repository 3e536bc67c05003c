"""What ran: versions, the git commit of the code and the wall time, for a report's provenance."""
from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np

__all__ = ["provenance"]


def provenance(seed: int, t_start: float) -> dict:
    """Versions, the git commit of the code that ran, and the wall time since ``t_start``."""
    import subprocess
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=here, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5,
                               cwd=here).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", False
    versions = {pkg: _version(pkg) for pkg in ("numpy", "scipy", "numba", "lava-nc",
                                               "matplotlib", "pyyaml")}
    return {"python": platform.python_version(), "natgrad": _version("natgrad", "unknown"),
            "git_commit": commit or "unknown (not a git checkout)", "git_dirty": dirty,
            "packages": versions, "numpy": np.__version__, "lava": versions["lava-nc"],
            "seed": seed, "wall_s": round(time.time() - t_start, 1)}


def _version(pkg: str, missing: str = "unavailable") -> str:
    try:
        from importlib.metadata import version
        return version(pkg)
    except Exception:  # noqa: BLE001 - provenance only
        return missing
