"""One look for every figure of the project: matplotlib rc, palette, fixed colours, tick text, PNG output.

matplotlib is imported only inside the functions (``Figure`` objects are rendered by the Agg
canvas; pyplot and the global backend are never touched).
"""

from __future__ import annotations

import importlib.util
import io
import math
import os
from pathlib import Path
from typing import Any, Iterable

STYLE: dict[str, Any] = {
    "dpi": 110,
    "panel_size": (5.0, 3.4),  # inches per small multiple
    "max_cols": 3,
    "font_size": 9.5,
    "title_size": 10,
    "suptitle_size": 11,
    "line_width": 1.8,
    "marker_size": 4.5,
    "max_markers": 60,  # curves with more points are drawn without markers
    "markers": ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<"),
    "verdict_marks": {
        "supported": "✓",
        "not reproduced": "✗",
        "inconclusive": "◐",
        "error": "⚠",
        "unexpectedly passed (remove xfail)": "!",
        "skipped": "○",
        "not run": "○",
    },
    "grid_alpha": 0.3,
    "band_alpha": 0.18,
    "ylim_margin": 0.03,  # a stated linear ylim is widened by this fraction on each side
    "ref_color": "#555555",
    "cmap": "viridis",
    "cmap_diverging": "RdBu_r",
}

# The colour cycle: colour keys without a fixed colour take these in order of first appearance
# within a figure, skipping the fixed colours already used in that figure.
PALETTE: tuple[str, ...] = (
    "#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3",
    "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd",
)

_BLUE, _ORANGE, _GREEN, _RED, _PURPLE, _BROWN, _PINK, _GREY, _OLIVE, _CYAN = PALETTE

# Fixed colours of the known mixers and models, by exact colour key (the series label unless a
# curve states ``color_key``). Exact strings only: "memory L_M=2 (random haystack)" is not
# "memory L_M=2"; state ``color_key="memory L_M=2"`` to get its colour.
KNOWN_COLORS: dict[str, str] = {
    # attention and the Transformer++ baseline (model id "transformer")
    "attention": _BLUE, "Transformer++": _BLUE, "transformer": _BLUE,
    # sliding-window attention (model id "transformer_swa")
    "SWA": _CYAN, "transformer_swa": _CYAN,
    "RetNet": _GREEN, "retnet": _GREEN,
    # the memory alone: linear (matrix, L_M = 1) and deep (L_M = 2, the paper's LMM)
    "memory L_M=1": _ORANGE,
    "memory L_M=2": _RED, "LMM": _RED, "lmm": _RED,
    "MAC": _PURPLE, "mac": _PURPLE,
    "MAG": _BROWN, "mag": _BROWN,
    "MAL": _PINK, "mal": _PINK,
    # MAC-style hybrids of the probes (titans.probes.mixers)
    "hybrid (L_M=1)": _OLIVE, "hybrid (L_M=2)": _GREY,
}

_RC = {
    "font.size": STYLE["font_size"],
    "axes.titlesize": STYLE["title_size"],
    "axes.labelsize": STYLE["font_size"],
    "legend.fontsize": STYLE["font_size"] - 1,
    "xtick.labelsize": STYLE["font_size"] - 1,
    "ytick.labelsize": STYLE["font_size"] - 1,
    "figure.titlesize": STYLE["suptitle_size"],
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": STYLE["grid_alpha"],
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "savefig.dpi": STYLE["dpi"],
    "figure.dpi": STYLE["dpi"],
    "image.cmap": STYLE["cmap"],
}


def matplotlib_available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def rc():
    """The project's rc settings as a context manager (drawing and saving happen inside it)."""
    import matplotlib

    return matplotlib.rc_context(_RC)


def new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def figure_to_png(fig, path: str | os.PathLike | None = None) -> bytes:
    """Render a matplotlib ``Figure`` to PNG bytes (Agg), written to ``path`` when given (atomically)."""
    buf = io.BytesIO()
    with rc():
        fig.savefig(buf, format="png", dpi=STYLE["dpi"], bbox_inches="tight", pad_inches=0.08)
    data = buf.getvalue()
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return data


def color_map(keys: Iterable[str]) -> dict[str, str]:
    """``{colour key: colour}`` for the keys of one figure, in order of first appearance: a known
    key (:data:`KNOWN_COLORS`) gets its fixed colour unless an earlier key of the figure took that
    colour; every other key takes the next :data:`PALETTE` colour not fixed in this figure."""
    order = list(dict.fromkeys(keys))
    colors: dict[str, str] = {}
    for key in order:
        fixed = KNOWN_COLORS.get(key)
        if fixed is not None and fixed not in colors.values():
            colors[key] = fixed
    free = [c for c in PALETTE if c not in colors.values()] or list(PALETTE)
    i = 0
    for key in order:
        if key not in colors:
            colors[key] = free[i % len(free)]
            i += 1
    return {key: colors[key] for key in order}


def marker_map(keys: Iterable[str]) -> dict[str, str]:
    """One marker per colour key, in order of first appearance."""
    return {key: STYLE["markers"][i % len(STYLE["markers"])] for i, key in enumerate(dict.fromkeys(keys))}


def human(v: float, _pos: Any = None) -> str:
    """Short tick text: 8192 -> 8k, 65536 -> 64k, 1500 -> 1.5k, 2.5e6 -> 2.5M, 0.25 -> 0.25."""
    if v is None or not math.isfinite(v):
        return ""
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1024 and float(v).is_integer() and int(a) & (int(a) - 1) == 0:  # powers of two
        for div, suffix in ((1 << 30, "G"), (1 << 20, "M"), (1 << 10, "k")):
            if a >= div:
                return f"{v / div:g}{suffix}"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{v / div:.3g}{suffix}"
    if a < 1e-3:
        return f"{v:.0e}"
    return f"{v:.3g}"


def bytes_unit(values: Iterable[float]) -> tuple[float, str]:
    """``(divisor, unit)`` for byte values: the largest of GiB, MiB, KiB not above their median."""
    finite = sorted(abs(v) for v in values if math.isfinite(v))
    if not finite:
        return 1.0, "bytes"
    median = finite[len(finite) // 2]
    for power, unit in ((3, "GiB"), (2, "MiB"), (1, "KiB")):
        if median >= 1024**power:
            return float(1024**power), unit
    return 1.0, "bytes"
