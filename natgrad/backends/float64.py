"""The float64 reference (``kind: float64``): the approximate rule in double precision.

It is the reference every chip is judged against, so it has no formats, no quantization
error, no weight grid and no third-factor coding; it cannot be deployed, budgeted or swept.
"""
from __future__ import annotations

from natgrad.backends.base import Backend, ReportSections

__all__ = ["Float64Backend"]

#: why the report's chip sections do not apply to the float reference
NOT_A_CHIP = ("the config is float64 itself: its run is the float reference, so it has no "
              "formats, no quantization error, no weight LSB and no third-factor coding")


class Float64Backend(Backend):
    """``kind: float64``: the float reference itself."""

    kind = "float64"
    kind_text = "float64"
    lava_text = "Lava floating_pt ProcessModel"
    report_records = ("weights",)

    def label(self) -> None:
        return None

    def refuses(self, action: str) -> str:
        return {"deploy": "deploy needs a chip config (kind fixed or learning_engine), "
                          "not kind float64",
                "budget": "a float64 config has no quantizers",
                "sweep": "sweep needs a fixed-point or learning-engine config "
                         "(kind: fixed or learning_engine), not kind float64"}.get(action, f"float64 cannot {action}")

    def check_task(self, task, eta) -> None:
        return None

    def weight_range(self, task=None, eta=None) -> None:
        return None

    def report_sections(self, fl, fx, task, eta, steps, trials) -> ReportSections:
        return ReportSections({}, None, None)

    def not_applicable(self) -> dict:
        return {"variables": NOT_A_CHIP, "updates": NOT_A_CHIP, "third_factor": NOT_A_CHIP,
                "counters": NOT_A_CHIP + "; nothing saturates or underflows"}

    def lava_crosscheck(self, task, seed, steps, eta) -> dict:
        return {"lava_bit_exact": None, "steps": 0,
                "detail": "float config: no fixed-point process"}

    def describe_lines(self) -> list[str]:
        return ["  float64 reference: no fixed-point formats"]

    def sweep_fields(self) -> list[str]:
        return []
