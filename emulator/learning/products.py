"""The rule as data: one :class:`Product` of the sum-of-products rule, the ``dw`` string
Lava parses (:func:`rule_string`), and how a coefficient becomes a product's mantissa and
exponent.

Lava's counterparts: ``lava/magma/core/learning/product.py`` (a product as data) and
``lava/magma/core/learning/learning_rule.py`` (the string, its parsing into products,
the dependencies ``x0 / y0 / uK``).  ``docs/learning_engine.md`` derives every constant.
"""
from __future__ import annotations

import dataclasses
import math

from .constants import DEFAULT_ENGINE, EngineSpec


def var_width(engine: EngineSpec, var: str) -> int:
    """Width (bits) a factor ``var`` is clipped to: traces ``trace_bits``, w/d/t
    ``synaptic_bits`` (Lava's ``FACTOR_TO_WIDTH_DICT``)."""
    if var in ("x1", "x2", "y1", "y2", "y3"):
        return engine.trace_bits
    if var in ("w", "t", "d"):
        return engine.synaptic_bits
    raise ValueError(f"unknown factor {var!r}")


def u_exponent(dep: str) -> int | None:
    """k of a ``u<k>`` dependency, None for x0 / y0."""
    return int(dep[1:]) if dep.startswith("u") else None




@dataclasses.dataclass(frozen=True)
class Product:
    """One product of the sum-of-products rule: ``mant * 2**exp * dep * factors``.

    ``factors`` are ``(variable, const)`` pairs meaning ``(variable + const)``.  ``mant`` is
    in [-7, 7] and is what Lava's parser keeps (it halves even mantissas above 7);
    ``exp`` in [-7, 8] is the literal exponent (Lava stores ``exp + 7``).
    """

    mant: int
    exp: int
    dep: str
    factors: tuple
    engine: EngineSpec = dataclasses.field(default=DEFAULT_ENGINE, repr=False)

    def __post_init__(self):
        if not -7 <= self.mant <= 7 or self.mant == 0:
            raise ValueError(f"mantissa {self.mant} outside [-7, 7] \\ {{0}}")
        if not -7 <= self.exp <= 8:
            raise ValueError(f"exponent {self.exp} outside [-7, 8]")
        if self.dep not in ("x0", "y0") and not (self.dep[:1] == "u" and self.dep[1:].isdigit()):
            raise ValueError(f"dependency {self.dep!r}")

    @property
    def shift(self) -> int:
        """Right shift applied by the fixed-point applier: max(0, sum(widths) + 4 - 15)."""
        e = self.engine
        return max(0, sum(var_width(e, v) for v, _ in self.factors) + e.scale_mant_bits
                   - e.accumulator_bits)

    @property
    def coef(self) -> float:
        """Accumulator units per unit of the factor product (before the floor)."""
        return self.mant * 2.0 ** (self.exp + self.engine.acc_shift - self.shift)

    def render(self) -> str:
        parts = [f"{abs(self.mant)}*2^{self.exp}", self.dep]
        for v, c in self.factors:
            parts.append(v if not c else f"({v}{'+' if c > 0 else '-'}{abs(c)})")
        return ("- " if self.mant < 0 else "+ ") + "*".join(parts)


def rule_string(products) -> str:
    """The Lava ``dw`` (or ``dd``) string of a product list ('' for none)."""
    if not products:
        return ""
    s = " ".join(p.render() for p in products)
    return s[2:] if s.startswith("+ ") else "-" + s[2:]


def product_bound(p: Product) -> int:
    """Largest |value| of the product before its right shift (must stay below 2**31)."""
    b = abs(p.mant)
    for v, _ in p.factors:
        b *= 2 ** var_width(p.engine, v)
    return b


def _scale(coef: float, shift: int, what: str, acc_shift: int) -> tuple[int, int]:
    """(mant, exp) with ``mant * 2**(exp + acc_shift - shift) == coef`` exactly, largest
    mantissa."""
    target = coef * 2.0 ** (shift - acc_shift)          # = mant * 2**exp
    for m in (7, 6, 5, 4, 3, 2, 1):
        e = math.log2(target / m)
        if abs(e - round(e)) < 1e-12 and -7 <= round(e) <= 8:
            return m, int(round(e))
    raise ValueError(f"{what}: coefficient {coef} is not m * 2**e on the learning engine")


def _representable_at_least(x: float) -> float:
    """Smallest m * 2**j (m in 1..7, j >= 0) that is >= x."""
    best = math.inf
    for m in range(1, 8):
        j = max(0, math.ceil(math.log2(max(x, 1e-300) / m)))
        while m * 2.0 ** j < x:
            j += 1
        best = min(best, m * 2.0 ** j)
    return best



def _graded_order(pos, neg, ratio: int, euclid: bool) -> tuple:
    """The graded rule's products in the order Lava's applier should add them.

    ``pos`` are the bap's products (homosynaptic x1, x2 at the u0 products' size, then the
    constant and heterosynaptic ones), ``neg`` the u0 products.  Lava clips the 16-bit
    accumulator after every product, in the string's order, and each product on its own.
    A bap step needs (ratio + 1) t x (x1 - x2) against the u0 pair's t x (x1 - x2); one
    product that large exceeds the accumulator where the net update does not.  So the
    bap's homosynaptic term is ratio + 1 copies of the u0 size, ordered

        (-x2, +x1) * ratio, -x2, [u0: -x1], +x1, [u0: +x2]

    In units of one copy, a bap step's partial sums are k (x1 - x2), k x1 - (k+1) x2,
    (ratio - 1) x1 - (ratio + 1) x2, ratio x1 - (ratio + 1) x2 and the net ratio (x1 - x2):
    none above the net update (0 <= x2 <= x1), none below -(ratio + 1) x2.  Without a bap
    only the u0 pair runs: -x1, then x2 - x1, never above 0.  The accumulator starts at
    tag_2 << 7, whose room above is the scarce one (``Design.info['tag_budget']``).
    """
    x1p, x2p, rest_p = pos[0], pos[1], pos[2:]
    x1n, x2n, rest_n = neg[0], neg[1], neg[2:]
    homo = (x2p, x1p) * ratio + (x2p, x1n, x1p, x2n)
    if euclid:
        return homo
    return homo + (rest_p[0], rest_n[0], rest_p[1], rest_n[1])

