"""The rule and its discretization onto the learning engine (Path 2's :class:`Design`).

:class:`Product` is one term of the sum-of-products rule, :func:`rule_string` renders the
``dw`` string Lava parses, and :func:`design` / :func:`design_for_task` derive every constant
of Path 2: the products' mantissas and exponents, the static tags ``t = round(T / r_i)``,
the trace impulse, the event size and the learning neuron's integer constants.
Lava's counterparts: ``lava/magma/core/learning/product.py`` (a product as data) and
``lava/magma/core/learning/learning_rule.py`` (the string, its parsing into products,
the dependencies ``x0 / y0 / uK``).  ``docs/learning_engine.md`` derives every constant.

This module gathers the design's names from the modules that hold them:

* :mod:`.products`         -- :class:`Product`, :func:`rule_string`, the coefficient grid
* :mod:`.design_record`    -- :class:`Design`, :func:`lava_incompatibilities`
* :mod:`.unit_choice`      -- the task-free 'auto' choices (weight LSB, ``c_ev``, trace
  impulse headroom, the USP bound behind tag_2's room)
* :mod:`.neuron_constants` -- the learning neuron's integers
* :mod:`.derivation`       -- :func:`design`
* :mod:`.task_fit`         -- :func:`design_for_task` and the V range from a task
* :mod:`.expected`         -- the weight grid and the engine's expected update
"""
from __future__ import annotations

from .derivation import design
from .design_record import Design, e_bits, lava_incompatibilities
from .expected import expected_update, mis_scaled, quantize_weights
from .neuron_constants import neuron_integer_info, neuron_integers
from .products import Product, product_bound, rule_string, u_exponent, var_width
from .task_fit import auto_v_range, design_for_task, expected_max_abs_weight
from .unit_choice import (K_X_MIN, USP_N_SD, auto_c_ev, auto_level_unit, default_w_frac,
                          trace_headroom_kx, usp_diff_bound)

__all__ = [
    "Product", "rule_string", "product_bound", "var_width", "u_exponent",
    "Design", "lava_incompatibilities", "e_bits",
    "default_w_frac", "auto_c_ev", "auto_level_unit", "trace_headroom_kx", "usp_diff_bound",
    "K_X_MIN", "USP_N_SD",
    "neuron_integers", "neuron_integer_info",
    "design", "design_for_task", "expected_max_abs_weight", "auto_v_range",
    "mis_scaled", "quantize_weights", "expected_update",
]
