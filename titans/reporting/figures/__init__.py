"""Figures of the claims report, drawn from what each curve states (no guessing).

    python -m titans.reporting.figures reports/claims.json            # redraw; claims.md/json written once
    python -m titans.reporting.figures reports/claims.json --out DIR  # figures elsewhere, report untouched
    python -m titans.reporting.figures reports/claims.json --memory-utilization   # also the heatmaps

At the end of a claims session the plugin calls :func:`draw_report_figures` with the session's
rows *before* it writes the report: ``reports/figures/<claim-id>.png`` for every claim with
curves in this session, the PNGs of the other claims removed, and each row's ``figure`` set; then
``claims.md`` (each figure below its claim's verdicts) and ``claims.json`` (top-level
``"figures": {claim id: path}``) are written once, linking only this session's figures. Figures
that belong to no claim (the memory-utilization heatmaps) are linked with
:func:`add_extra_figure` and listed in ``claims.json`` as ``"extra_figures"``.

Figure spec
-----------
A curve is ``claim_record.curve(name, x, y, **meta)``; all curves of a claim (over all of its
tests) make one figure. These meta keys say how it is drawn (checked when recorded); any other
key is free data and changes nothing:

=========================  ===================================================================
``panel``                  which axes: curves with the same value share one, titled with it
                           (panels in order of first appearance, 3 per row). Default: the one
                           untitled panel.
``xscale``, ``yscale``     ``"linear"`` (default), ``"log"`` (base 10), ``"log2"``, ``"symlog"``
                           (linear up to the smallest non-zero value, for sweeps that include 0).
                           Values <= 0 on a log axis are not drawn.
``xlabel``, ``ylabel``     axis labels, shown as given (state the unit in the label).
``yunit``                  ``"bytes"`` only: y values are bytes, shown in KiB/MiB/GiB (picked by
                           the panel's median) with the unit appended to the y label.
``ylim``                   ``[low, high]`` y range, either None for matplotlib's own; a linear
                           axis gets a 3% margin beyond a stated bound.
``series``                 legend label (default: the curve name). Curves with the same label
                           share one legend entry.
``color_key``              curves with the same key share colour and marker in every panel
                           (default: the series label).
``y_low`` + ``y_high``     an uncertainty band (lists like y); ``yerr``: symmetric error bars.
``hline``, ``vline``       reference lines (a number or a list), in the legend when
(+ ``hline_label``,        labelled, e.g. chance level or an attention window.
``vline_label``)
=========================  ===================================================================

The curves of one panel must agree on the axis keys (``xlabel``, ``ylabel``, ``xscale``,
``yscale``, ``yunit``, ``ylim``) that they state; a disagreement is an error that costs that
claim its figure (reported in the terminal line), never a guess.

Colours: the colour keys of :data:`KNOWN_COLORS` (exact names: ``attention``, ``SWA``,
``RetNet``, ``LMM``, ``MAC``, ``MAG``, ``MAL``, ``Transformer++``, the model ids ``transformer``,
``transformer_swa``, ``retnet``, ``lmm``, ``mac``, ``mag``, ``mal``, and the probes' ``memory
L_M=1``, ``memory L_M=2``, ``hybrid (L_M=1)``, ``hybrid (L_M=2)``) have fixed colours in every
figure; other keys take :data:`PALETTE` colours in order of first appearance within the figure.

What needs no statement: non-numeric x values are categories (grouped bars); ``"nan"``, ``"inf"``
and None are gaps (``n/a`` on bars); a lone point is a marker labelled with its value; a panel
without a finite value says so; panels with the same y label on linear axes share their y range;
the same curve recorded by several tests of a claim is drawn once.

Nothing here needs MLX; matplotlib is imported only when drawing.
"""

from __future__ import annotations

# numpy at import time (matplotlib needs it anyway): the claims plugin imports this package when
# it loads, so numpy is never first imported inside a pytester in-process run, whose sys.modules
# snapshot would drop it again (numpy cannot be loaded twice in one process).
import numpy as np  # noqa: F401

from .claims import claim_figure, curves_figure, remove_stale_figures, write_claim_figures
from .heatmaps import MEMORY_UTILIZATION, MEMORY_UTILIZATION_TITLE, memory_utilization_figure
from .publish import FIGURE_DIR, add_extra_figure, draw_report_figures, generate, retired_key_notes
from .spec import RETIRED_KEYS, SCALES, SPEC_KEYS, Series, check_meta, claim_series
from .style import KNOWN_COLORS, PALETTE, STYLE, color_map, figure_to_png, human, matplotlib_available
from .cli import main

__all__ = [
    "FIGURE_DIR",
    "KNOWN_COLORS",
    "MEMORY_UTILIZATION",
    "MEMORY_UTILIZATION_TITLE",
    "PALETTE",
    "RETIRED_KEYS",
    "SCALES",
    "SPEC_KEYS",
    "STYLE",
    "Series",
    "add_extra_figure",
    "check_meta",
    "claim_figure",
    "claim_series",
    "color_map",
    "curves_figure",
    "draw_report_figures",
    "figure_to_png",
    "generate",
    "human",
    "main",
    "matplotlib_available",
    "memory_utilization_figure",
    "remove_stale_figures",
    "retired_key_notes",
    "write_claim_figures",
]
