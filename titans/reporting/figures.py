"""Figures for the claims report: one PNG per claim that recorded curves, drawn from ``claims.json``.

    python -m titans.reporting.figures reports/claims.json            # redraw, refresh claims.md
    python -m titans.reporting.figures reports/claims.json --out DIR  # figures elsewhere, report untouched
    python -m titans.reporting.figures reports/claims.json --memory-utilization   # also the heatmaps

The claims plugin calls :func:`after_session` once ``claims.json`` is written (when matplotlib is
importable): ``reports/figures/<claim-id>.png`` for every claim with curves, figures of claims that
recorded none in this session are removed, ``claims.md`` is re-rendered with each figure below its
verdicts, and ``claims.json`` gains a top-level ``"figures"`` map ``{claim id: "figures/<id>.png"}``
(the per-row ``figure`` fields keep what existed when the JSON was first written).

Nothing here needs MLX, and matplotlib is imported only when drawing (``Figure`` objects are
rendered by the Agg canvas; pyplot and the global backend are never touched).

Curve conventions
-----------------
A curve is ``claim_record.curve(name, x, y, **meta)``. All curves of a claim (over all of its
tests, e.g. parametrizations) go into one figure. Meta keys the figures understand, all optional:

==================================  =============================================================
``x_label`` / ``xlabel``,           axis labels; a unit is appended as ``label (unit)``. Length-like
``y_label`` / ``ylabel``,           x labels without a unit get ``(tokens)``; ``bytes`` on y are
``x_unit``, ``y_unit``              shown in KiB/MiB/GiB.
``xscale``, ``yscale``              ``"linear"``, ``"log"``, ``"log2"``; ``loglog=True`` sets both.
                                    Otherwise: x is logarithmic when positive, spanning >= 8x and
                                    geometrically spaced (or spanning >= 100x), the same for every
                                    panel with that x label; y when throughput/memory/time-like
                                    and spanning >= 3x (log-log for throughput vs length).
``panel`` (or ``figure``)           explicit small-multiple group (one axes per value).
``ylim``                            ``[low, high]`` y range (fractions in [0, 1], and percentages
                                    labelled ``%``, otherwise show their whole range).
``series``                          legend label (default: the curve name).
``y_low`` + ``y_high``              an uncertainty band (lists like ``y``; ``ci_low``/``ci_high``
(or ``ci_low`` + ``ci_high``),      also accepted); ``yerr`` gives symmetric error bars.
``yerr``
``hline``, ``vline``                reference lines (a number or a list), e.g. chance level or
(+ ``hline_label``, ``vline_label``) an attention window; labelled when a label is given.
==================================  =============================================================

Any other meta key is free. Grouping into small multiples: curves with different y labels never
share an axes; within a y label, an explicit ``panel``/``figure``; else a varying length/size-like
meta key (``seq_len``, ``length``, ``context``, ...) when some panel then holds several curves;
else one panel per test when the claim's tests record several curves each. The rest overlay on
one axes. Legend labels are the curve names, except that when panels were split by a meta key
and the names spell its value out ("attention @ L=8192"), a series-naming key (``mixer``,
``model``, ``variant``, ``method``, ``depth``) labels them instead, so each series keeps one
entry and one colour across panels; known mixers and models (attention, SWA, RetNet, linear/deep
memory, MAC, MAG, MAL) have fixed colours across figures. The same curve recorded by several
tests is drawn once. Non-numeric x values are categories (grouped bars); ``"nan"``/``"inf"`` and
``None`` are gaps; single points are markers with their value; a panel without a finite value
says so.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import math
import os
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

# numpy at import time (matplotlib needs it anyway): the claims plugin imports this module when it
# loads, so numpy is never first imported inside a pytester in-process run, whose sys.modules
# snapshot would drop it again (numpy cannot be loaded twice in one process).
import numpy as np

__all__ = [
    "FIGURE_DIR",
    "MEMORY_UTILIZATION",
    "STYLE",
    "after_session",
    "claim_figure",
    "claim_series",
    "curves_figure",
    "figure_to_png",
    "generate",
    "main",
    "matplotlib_available",
    "memory_utilization_figure",
    "write_claim_figures",
]

FIGURE_DIR = "figures"
MEMORY_UTILIZATION = "memory-utilization"

# One style for every figure of the project.
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
    "palette": (
        "#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3",
        "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd",
    ),
    # Fixed colours of known mixers/models (first match of a label's words, in this order).
    "known_colors": (
        (("swa", "sliding", "window"), "#64b5cd"),
        (("retnet", "retention"), "#55a868"),
        (("mac",), "#8172b3"),
        (("mag",), "#937860"),
        (("mal",), "#da8bc3"),
        (("linear", "matrix"), "#dd8452"),
        (("deep", "lmm", "memory", "titans"), "#c44e52"),
        (("attention", "transformer", "full"), "#4c72b0"),
    ),
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
    "ref_color": "#555555",
    "cmap": "viridis",
    "cmap_diverging": "RdBu_r",
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

_LABEL_KEYS = ("x_label", "xlabel", "y_label", "ylabel", "x_unit", "xunit", "y_unit", "yunit")
_STYLE_KEYS = (
    "xscale", "yscale", "loglog", "panel", "series", "y_low", "y_high", "ci_low", "ci_high", "yerr",
    "hline", "vline", "hline_label", "vline_label", "kind", "color", "style", "figure", "ylim",
)
_PANEL_KEYS = (
    "seq_len", "length", "context", "context_length", "seq", "T", "n_tokens", "window",
    "size", "model_size", "scale", "d", "dims", "task", "haystack",
)
_LENGTH_RE = re.compile(r"(length|seq[_ ]?len|context|distance|position|stored|pairs|steps?\b|\btokens\b(?!\s*/))", re.I)
_THROUGHPUT_RE = re.compile(
    r"(tokens?\s*/\s*s|tok/s|throughput|memory|bytes|\bKiB|\bMiB|\bGiB|latency|seconds|\btime\b|\(s\)|\bms\b)", re.I
)
_BYTES_RE = re.compile(r"\bbytes?\b", re.I)
_DEPTH1_RE = re.compile(r"(\bL_?M\s*=\s*1\b|\bdepth\s*=?\s*1\b)", re.I)
_FRACTION_RE = re.compile(r"(accuracy|recall|success|fraction|rate|precision|hit)", re.I)


def matplotlib_available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def _rc():
    import matplotlib

    return matplotlib.rc_context(_RC)


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def figure_to_png(fig, path: str | os.PathLike | None = None) -> bytes:
    """Render a matplotlib ``Figure`` to PNG bytes (Agg), written to ``path`` when given."""
    buf = io.BytesIO()
    with _rc():
        fig.savefig(buf, format="png", dpi=STYLE["dpi"], bbox_inches="tight", pad_inches=0.08)
    data = buf.getvalue()
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return data


# --------------------------------------------------------------------------------------------
# Numbers, labels, scales
# --------------------------------------------------------------------------------------------


def _num(v: Any) -> float | None:
    """A float for numbers (NaN for gaps: None, "nan", "inf"); None for a category (other text)."""
    if v is None:
        return math.nan
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        f = float(v)
        return f if math.isfinite(f) else math.nan
    if isinstance(v, str) and v.strip().lower() in ("nan", "inf", "+inf", "-inf", "infinity", "-infinity", ""):
        return math.nan
    return None


def _floats(values: Sequence[Any]) -> list[float]:
    out = []
    for v in values:
        f = _num(v)
        out.append(math.nan if f is None else f)
    return out


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


def _meta_text(meta: Mapping[str, Any], *keys: str) -> str | None:
    for k in keys:
        v = meta.get(k)
        if isinstance(v, str) and v.strip():
            return v.strip()
    return None


def _axis_label(series: Sequence["Series"], axis: str) -> str | None:
    label = unit = None
    for s in series:
        label = label or _meta_text(s.meta, f"{axis}_label", f"{axis}label")
        unit = unit or _meta_text(s.meta, f"{axis}_unit", f"{axis}unit")
    if label and unit and unit.lower() not in label.lower():
        return f"{label} ({unit})"
    return label or (unit and f"({unit})")


def _is_pow2_ints(values: Iterable[float]) -> bool:
    vals = [v for v in values if math.isfinite(v)]
    return bool(vals) and all(v >= 1 and float(v).is_integer() and (int(v) & (int(v) - 1)) == 0 for v in vals)


def _geometric(values: Sequence[float]) -> bool:
    u = sorted({v for v in values if math.isfinite(v)})
    if len(u) < 3 or u[0] <= 0:
        return False
    ratios = [b / a for a, b in zip(u, u[1:])]
    return min(ratios) >= 1.4 and max(ratios) / min(ratios) <= 4.0


def _explicit_scale(series: Sequence["Series"], axis: str) -> str | None:
    for s in series:
        v = s.meta.get(f"{axis}scale")
        if isinstance(v, str) and v in ("linear", "log", "log2", "log10", "symlog"):
            return v
        if s.meta.get("loglog") is True:
            return "log"
    return None


# --------------------------------------------------------------------------------------------
# Series and panels
# --------------------------------------------------------------------------------------------


@dataclass
class Series:
    """One recorded curve with where it came from."""

    name: str
    x: list
    y: list
    meta: dict
    source: str = ""  # the test's parameter id (or its name)
    verdict: str = ""
    label: str = ""

    @property
    def categorical(self) -> bool:
        return any(_num(v) is None for v in self.x)


@dataclass
class Panel:
    title: str | None
    series: list[Series] = field(default_factory=list)
    key: str | None = None  # the meta key the panels were split by, if any


def _source(nodeid: str) -> str:
    tail = nodeid.split("::")[-1]
    m = re.search(r"\[(.*)\]$", tail)
    return m.group(1) if m else tail


def claim_series(doc: Mapping[str, Any]) -> dict[str, list[Series]]:
    """``{claim id: [Series, ...]}`` for every claim whose tests recorded at least one curve."""
    out: dict[str, list[Series]] = {}
    for row in doc.get("results") or []:
        curves = row.get("curves") or []
        for c in curves:
            if not isinstance(c, Mapping):
                continue
            x, y = list(c.get("x") or []), list(c.get("y") or [])
            n = min(len(x), len(y))
            meta = c.get("meta") if isinstance(c.get("meta"), Mapping) else {}
            out.setdefault(str(row.get("claim_id")), []).append(
                Series(
                    name=str(c.get("name", "curve")),
                    x=x[:n],
                    y=y[:n],
                    meta=dict(meta),
                    source=_source(str(row.get("nodeid", ""))),
                    verdict=str(row.get("verdict", "")),
                )
            )
    return out


def _hashable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return json.dumps(v, sort_keys=True, default=str)


def _varying_keys(series: Sequence[Series]) -> list[str]:
    keys: list[str] = []
    for s in series:
        for k in s.meta:
            if k not in keys and k not in _LABEL_KEYS and k not in _STYLE_KEYS:
                keys.append(k)
    varying = []
    for k in keys:
        vals = {_hashable(s.meta.get(k)) for s in series}
        if len(vals) > 1 and all(isinstance(s.meta.get(k), (str, int, float, bool, type(None))) for s in series):
            varying.append(k)
    return varying


def _fmt_group(key: str, value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{key} = {human(float(value))}"
    return f"{key} = {value}"


def _group(series: list[Series]) -> list[Panel]:
    """Split the curves of one claim into panels (see the module docstring)."""
    by_label: dict[Any, list[Series]] = {}
    for s in series:  # curves with different y labels never share an axes
        by_label.setdefault(_axis_label([s], "y"), []).append(s)
    panels: list[Panel] = []
    for group in by_label.values():
        panels.extend(_split(group))
    return panels


def _split(series: list[Series]) -> list[Panel]:
    groups: dict[Any, Panel] = {}

    def add(key: Any, title: str | None, s: Series) -> None:
        groups.setdefault(key, Panel(title)).series.append(s)

    explicit = next((k for k in ("panel", "figure") if any(k in s.meta for s in series)), None)
    if explicit is not None:
        for s in series:
            v = s.meta.get(explicit, "")
            add(_hashable(v), str(v) if v not in (None, "") else None, s)
        return list(groups.values())
    varying = _varying_keys(series)
    key = next(
        (k for k in _PANEL_KEYS if k in varying and len({_hashable(s.meta.get(k)) for s in series}) < len(series)),
        None,
    )
    sources = list(dict.fromkeys(s.source for s in series))
    multi = len(sources) > 1 and any(sum(s.source == src for s in series) > 1 for src in sources)
    for s in series:
        if key is not None:
            add(_hashable(s.meta.get(key)), _fmt_group(key, s.meta.get(key)), s)
        elif multi:
            add(s.source, s.source, s)
        else:
            add(None, None, s)
    panels = list(groups.values())
    for p in panels:
        p.key = key
    return panels


_SERIES_KEYS = ("mixer", "model", "variant", "method", "depth", "memory_depth", "name")


def _series_key(panels: list[Panel]) -> str | None:
    """When panels were split by a meta key (say ``length``) and the curve names spell that value
    out ("attention @ L=8192"), a meta key that names the series (``mixer``, ``model``, ...) gives
    the legend one entry, and one colour, per series across all panels."""
    split = {p.key for p in panels}
    if len(panels) < 2 or len(split) != 1 or None in split:
        return None
    series = [s for p in panels for s in p.series]
    for k in _SERIES_KEYS:
        if k in split or not all(k in s.meta for s in series) or _hashable(series[0].meta.get(k)) is None:
            continue
        names: dict[Any, set[str]] = {}
        for s in series:
            names.setdefault(_hashable(s.meta[k]), set()).add(s.name)
        if len(names) > 1 and any(len(v) > 1 for v in names.values()):
            return k
    return None


_PREFIX_SEPS = (": ", " — ", " - ", " | ", " · ")
_SUFFIX_SEPS = (" @ ", " (", " [", " — ", " · ")


def _strip_common(labels: list[str]) -> tuple[list[str], str]:
    """Drop a prefix ("forward tokens/s: ") or suffix (" (random haystack)") shared by all labels
    at a separator, when what is left stays distinct; returns the labels and what was dropped."""
    if len(labels) < 2:
        return labels, ""
    prefix = os.path.commonprefix(labels)
    cut = max((prefix.rfind(sep) + len(sep) for sep in _PREFIX_SEPS if sep in prefix), default=0)
    if cut:
        rest = [label[cut:] for label in labels]
        if all(rest) and len(set(rest)) == len(rest):
            return rest, labels[0][:cut].rstrip(" :—-|·")
    suffix = os.path.commonprefix([label[::-1] for label in labels])[::-1]
    cut = max((len(suffix) - suffix.find(sep) for sep in _SUFFIX_SEPS if sep in suffix), default=0)
    if cut:
        rest = [label[: len(label) - cut] for label in labels]
        if all(rest) and len(set(rest)) == len(rest):
            return rest, labels[0][len(labels[0]) - cut :].strip(" @([])—·")
    return labels, ""


def _assign_labels(panels: list[Panel]) -> None:
    """Legend labels: the curve name (or meta ``series``), disambiguated inside each panel."""
    by = _series_key(panels)
    for panel in panels:
        for s in panel.series:
            v = s.meta.get(by) if by else None
            s.label = _meta_text(s.meta, "series") or (
                (str(v) if isinstance(v, str) else f"{by} {v}") if v is not None else s.name
            )
        stripped, common = _strip_common([s.label for s in panel.series])
        if common:
            for s, label in zip(panel.series, stripped):
                s.label = label
            if not panel.title:
                panel.title = common
        counts: dict[str, list[Series]] = {}
        for s in panel.series:
            counts.setdefault(s.label, []).append(s)
        for label, dup in counts.items():
            if len(dup) < 2:
                continue
            keys = _varying_keys(dup)
            for s in dup:
                if keys:
                    s.label = f"{label} (" + ", ".join(f"{k}={s.meta.get(k)}" for k in keys[:2]) + ")"
                elif len({d.source for d in dup}) == len(dup):
                    s.label = s.source if len({d.name for d in dup}) == 1 else f"{label} [{s.source}]"
        seen: dict[str, int] = {}
        for s in panel.series:  # last resort: numbering
            seen[s.label] = seen.get(s.label, 0) + 1
            if seen[s.label] > 1:
                s.label = f"{s.label} #{seen[s.label]}"


def _color_map(labels: Iterable[str]) -> dict[str, str]:
    colors: dict[str, str] = {}
    used: set[str] = set()
    pending = []
    for label in dict.fromkeys(labels):
        words = set(re.split(r"[^a-z0-9]+", label.lower()))
        if _DEPTH1_RE.search(label):  # "memory L_M=1", "depth 1": the linear (matrix) memory
            words.add("linear")
        color = next((c for names, c in STYLE["known_colors"] if words & set(names)), None)
        if color is not None and color not in used:
            colors[label] = color
            used.add(color)
        else:
            pending.append(label)
    free = [c for c in STYLE["palette"] if c not in used] or list(STYLE["palette"])
    for i, label in enumerate(pending):
        colors[label] = free[i % len(free)]
    return colors


# --------------------------------------------------------------------------------------------
# Drawing one claim
# --------------------------------------------------------------------------------------------


def _ref_values(v: Any) -> list[float]:
    vals = v if isinstance(v, (list, tuple)) else [v]
    return [f for f in (_num(x) for x in vals) if f is not None and math.isfinite(f)]


def _band(s: Series, n: int) -> tuple[list[float], list[float]] | None:
    for lo_key, hi_key in (("y_low", "y_high"), ("ci_low", "ci_high")):
        lo, hi = s.meta.get(lo_key), s.meta.get(hi_key)
        if isinstance(lo, list) and isinstance(hi, list) and len(lo) == len(hi) == n:
            return _floats(lo), _floats(hi)
    return None


def _bytes_scale(values: list[float]) -> tuple[float, str]:
    finite = sorted(abs(v) for v in values if math.isfinite(v))
    if not finite:
        return 1.0, "bytes"
    median = finite[len(finite) // 2]
    for power, unit in ((3, "GiB"), (2, "MiB"), (1, "KiB")):
        if median >= 1024**power:
            return float(1024**power), unit
    return 1.0, "bytes"


def _set_log(axis, base: int, values: list[float]) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    pos = [v for v in values if math.isfinite(v) and v > 0]
    span = max(pos) / min(pos) if pos else 1.0
    if base == 2:
        decades = math.log2(span) if span > 0 else 1
        axis.set_major_locator(LogLocator(base=2, numticks=min(12, int(decades) + 2) if decades <= 10 else 7))
    elif span < 100:  # under two decades: label 1-2-5 steps, not just the powers of ten
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(human))
    axis.set_minor_formatter(NullFormatter())


def _auto_xscale(fin_x: list[float]) -> str:
    """``log``/``log2`` for positive x spanning >= 8x that is geometrically spaced or spans
    >= 100x (lengths 1k..64k, distances 1..8k); ``symlog`` for a geometric sweep starting at 0."""
    if not fin_x:
        return "linear"
    if min(fin_x) > 0:
        span = max(fin_x) / min(fin_x)
        if span >= 8 and (_geometric(fin_x) or span >= 100):
            return "log2" if _is_pow2_ints(fin_x) else "log"
        return "linear"
    positive = [v for v in fin_x if v > 0]
    if min(fin_x) == 0 and len(positive) >= 3 and max(positive) / min(positive) >= 10 and _geometric(positive):
        return "symlog"  # a geometric sweep that includes 0 (e.g. a gate switched off)
    return "linear"


def _xscale_hints(panels: list[Panel]) -> dict[Any, str]:
    """One x scale per x label over all panels of a figure, so small multiples compare."""
    by_label: dict[Any, list[Series]] = {}
    for p in panels:
        for s in p.series:
            if not s.categorical:
                by_label.setdefault(_axis_label([s], "x"), []).append(s)
    hints = {}
    for label, series in by_label.items():
        hints[label] = _auto_xscale([v for s in series for v in _floats(s.x) if math.isfinite(v)])
    return hints


def _draw_panel(ax, panel: Panel, colors: dict[str, str], markers: dict[str, str],
                xscale_hint: str | None = None) -> dict[str, Any]:
    """Draw one panel; returns {label: handle} for the legend."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    handles: dict[str, Any] = {}
    series = panel.series
    categorical = any(s.categorical for s in series)
    xlabel, ylabel = _axis_label(series, "x"), _axis_label(series, "y")
    all_y = [v for s in series for v in _floats(s.y)]
    y_div = 1.0
    if ylabel and _BYTES_RE.search(ylabel):
        y_div, unit = _bytes_scale(all_y)
        if unit != "bytes":
            ylabel = _BYTES_RE.sub(unit, ylabel)
    if ylabel is None and len({s.name for s in series}) == 1:
        ylabel = series[0].name
    if xlabel and not categorical and _LENGTH_RE.search(xlabel) and "(" not in xlabel:
        xlabel = f"{xlabel} (tokens)" if re.search(r"length|context|distance|position|seq", xlabel, re.I) else xlabel

    finite_any = False
    if categorical:
        cats: list[str] = []
        for s in series:
            for v in s.x:
                if str(v) not in cats:
                    cats.append(str(v))
        width = 0.8 / max(1, len(series))
        for i, s in enumerate(series):
            ys = [v / y_div for v in _floats(s.y)]
            pos = {str(x): j for j, x in enumerate(cats)}
            xs = [pos[str(x)] - 0.4 + width * (i + 0.5) for x in s.x]
            keep = [(x, y) for x, y in zip(xs, ys) if math.isfinite(y)]
            finite_any |= bool(keep)
            for x, y in zip(xs, ys):
                if not math.isfinite(y):
                    ax.text(x, 0, "n/a", ha="center", va="bottom", color=STYLE["ref_color"],
                            fontsize=STYLE["font_size"] - 2)
            if keep:
                h = ax.bar([k[0] for k in keep], [k[1] for k in keep], width=width * 0.92,
                           color=colors[s.label], label=s.label, zorder=2)
                handles.setdefault(s.label, h)
        ax.set_xticks(range(len(cats)))
        many = len(cats) > 6
        wrapped = cats if many else ["\n".join(textwrap.wrap(c, 12)) or c for c in cats]
        ax.set_xticklabels(wrapped, rotation=30 if many else 0, ha="right" if many else "center")
        ax.grid(axis="x", visible=False)
        ax.axhline(0, color=STYLE["ref_color"], lw=0.6, zorder=1)
    else:
        all_x = [v for s in series for v in _floats(s.x)]
        for s in series:
            xs, ys = _floats(s.x), [v / y_div for v in _floats(s.y)]
            n_finite = sum(math.isfinite(x) and math.isfinite(y) for x, y in zip(xs, ys))
            finite_any |= n_finite > 0
            if n_finite == 0:
                continue
            few = len(xs) <= STYLE["max_markers"]
            err = s.meta.get("yerr")
            if isinstance(err, list) and len(err) == len(xs):
                h = ax.errorbar(xs, ys, yerr=[abs(e) / y_div for e in _floats(err)], color=colors[s.label],
                                marker=markers[s.label] if few else None, ms=STYLE["marker_size"],
                                lw=STYLE["line_width"], capsize=2.5, label=s.label)
            else:
                (h,) = ax.plot(xs, ys, color=colors[s.label], marker=markers[s.label] if few or n_finite == 1 else None,
                               ms=STYLE["marker_size"], lw=STYLE["line_width"], label=s.label)
            if n_finite == 1:  # a lone point: print its value
                x1, y1 = next((x, y) for x, y in zip(xs, ys) if math.isfinite(x) and math.isfinite(y))
                ax.annotate(human(y1), (x1, y1), textcoords="offset points", xytext=(6, 6),
                            color=colors[s.label], fontsize=STYLE["font_size"] - 1)
            band = _band(s, len(xs))
            if band is not None:
                ax.fill_between(xs, [v / y_div for v in band[0]], [v / y_div for v in band[1]],
                                color=colors[s.label], alpha=STYLE["band_alpha"], lw=0)
            handles.setdefault(s.label, h)
        # scales
        xscale = _explicit_scale(series, "x")
        yscale = _explicit_scale(series, "y")
        pos_x = bool(all_x) and all(v > 0 for v in all_x if math.isfinite(v)) and any(math.isfinite(v) for v in all_x)
        fin_x = [v for v in all_x if math.isfinite(v)]
        span_x = (max(fin_x) / min(fin_x)) if pos_x and fin_x else 1.0
        fin_y = [v / y_div for v in all_y if math.isfinite(v)]
        pos_y = bool(fin_y) and all(v > 0 for v in fin_y)
        span_y = (max(fin_y) / min(fin_y)) if pos_y else 1.0
        throughput_y = bool(ylabel and _THROUGHPUT_RE.search(ylabel))
        if xscale is None:
            xscale = xscale_hint or _auto_xscale(fin_x)
        if yscale is None and pos_y and throughput_y and span_y >= 3:
            yscale = "log"
        if xscale in ("log", "log2", "log10") and pos_x:
            base = 2 if xscale == "log2" or (xscale == "log" and _is_pow2_ints(fin_x) and span_x < 2**12) else 10
            ax.set_xscale("log", base=base)
            _set_log(ax.xaxis, base, fin_x)
        elif xscale == "symlog":
            positive = [v for v in fin_x if v > 0]
            ax.set_xscale("symlog", linthresh=min(positive) if positive else 1.0, linscale=0.5)
            ax.xaxis.set_major_formatter(FuncFormatter(human))
        else:
            ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=all(float(v).is_integer() for v in fin_x) if fin_x else False))
            if fin_x and max(abs(v) for v in fin_x) >= 1e4:
                ax.xaxis.set_major_formatter(FuncFormatter(human))
        if yscale in ("log", "log2", "log10") and pos_y:
            base = 2 if yscale == "log2" else 10
            ax.set_yscale("log", base=base)
            _set_log(ax.yaxis, base, fin_y)
        elif yscale == "symlog":
            ax.set_yscale("symlog")
        elif fin_y and max(abs(v) for v in fin_y) >= 1e4:
            ax.yaxis.set_major_formatter(FuncFormatter(human))
        # a nearly constant non-negative quantity (memory that stays flat) is shown from 0, so
        # noise is not magnified into a trend
        if (yscale is None and fin_y and min(fin_y) >= 0 and max(fin_y) > 0
                and max(fin_y) - min(fin_y) <= 0.05 * max(fin_y)
                and not (ylabel and _FRACTION_RE.search(ylabel))):
            ax.set_ylim(0, 1.15 * max(fin_y))
        # bounded quantities get their full range
        if yscale is None and fin_y and ylabel and _FRACTION_RE.search(ylabel):
            lo, hi = min(fin_y), max(fin_y)
            full = 1.0 if hi <= 1 else (100.0 if hi <= 100 and "%" in ylabel else None)
            if lo >= 0 and full is not None:  # the whole range: 0.92 vs 1.0 is not a collapse
                ax.set_ylim(-0.03 * full, 1.03 * full)
        ylim = next((s.meta.get("ylim") for s in series if isinstance(s.meta.get("ylim"), list)), None)
        if ylim and len(ylim) == 2 and all(_num(v) is not None and math.isfinite(_num(v)) for v in ylim):
            ax.set_ylim(_num(ylim[0]) / y_div, _num(ylim[1]) / y_div)
    # reference lines
    for s in series:
        for key, draw, ls in (("hline", ax.axhline, "--"), ("vline", ax.axvline, ":")):
            text = _meta_text(s.meta, f"{key}_label")
            for v in _ref_values(s.meta.get(key)):
                v = v / y_div if key == "hline" else v
                line = draw(v, color=STYLE["ref_color"], ls=ls, lw=1.2, zorder=1)
                if text and text not in handles:
                    handles[text] = line
    if not finite_any:
        ax.text(0.5, 0.5, "no finite values recorded", transform=ax.transAxes, ha="center", va="center",
                color=STYLE["ref_color"])
        ax.set_xticks([])
        ax.set_yticks([])
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if panel.title:
        ax.set_title(panel.title)
    return handles


def _verdict_summary(series: Sequence[Series], rows: Sequence[Mapping[str, Any]]) -> str:
    verdicts = [str(r.get("verdict", "")) for r in rows] or [s.verdict for s in series]
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[v] = counts.get(v, 0) + 1
    parts = []
    for v, n in counts.items():
        mark = STYLE["verdict_marks"].get(v, "")
        parts.append(f"{mark} {v}" + (f" ({n}/{len(verdicts)})" if len(counts) > 1 or n > 1 else ""))
    return ", ".join(parts)


def _figure(series: list[Series], title_lines) -> Any:
    """Panels, legend and a title (``title_lines(width)`` -> lines wrapped to the figure width)."""
    unique: dict[str, Series] = {}
    for s in series:  # the same curve recorded by several tests of a claim is drawn once
        ident = json.dumps([s.name, s.x, s.y, s.meta], sort_keys=True, default=str)
        unique.setdefault(ident, Series(s.name, list(s.x), list(s.y), dict(s.meta), s.source, s.verdict))
    series = list(unique.values())
    panels = _group(series) or [Panel(None)]
    _assign_labels(panels)
    labels = [s.label for p in panels for s in p.series]
    colors = _color_map(labels)
    markers = {label: STYLE["markers"][i % len(STYLE["markers"])] for i, label in enumerate(dict.fromkeys(labels))}
    hints = _xscale_hints(panels)
    n = len(panels)
    ncols = min(STYLE["max_cols"], n)
    nrows = math.ceil(n / ncols)
    legend_labels = list(dict.fromkeys(labels))
    show_legend = len(legend_labels) > 1 or any(_meta_text(s.meta, "hline_label", "vline_label") for s in series)
    longest = max((len(label) for label in legend_labels), default=0)
    outside = show_legend and (n > 1 or len(legend_labels) > 5 or longest > 28)
    pw, ph = STYLE["panel_size"]
    extra_w = min(3.2, 0.9 + 0.065 * longest) if outside else 0.0
    with _rc():
        fig = _new_figure(pw * ncols + extra_w, ph * nrows + 0.85)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        handles: dict[str, Any] = {}
        for i, panel in enumerate(panels):
            ax = axes[i // ncols][i % ncols]
            mine = _draw_panel(ax, panel, colors, markers, hints.get(_axis_label(panel.series, "x")))
            for label, h in mine.items():
                handles.setdefault(label, h)
            if show_legend and not outside and mine:
                ax.legend(list(mine.values()), list(mine.keys()), loc="best")
        for j in range(n, nrows * ncols):  # no empty panels
            fig.delaxes(axes[j // ncols][j % ncols])
        _share_ylims([axes[i // ncols][i % ncols] for i in range(n)])
        if show_legend and outside and handles:
            fig.legend(list(handles.values()), list(handles.keys()), loc="outside right center")
        lines = title_lines(max(50, int(11.5 * pw * ncols)))
        if lines:
            fig.suptitle("\n".join(lines), ha="center")
    return fig


def _share_ylims(axes) -> None:
    """Panels that plot the same quantity (y label and scale) get the same y range."""
    groups: dict[tuple, list] = {}
    for ax in axes:
        if ax.get_ylabel() and ax.get_yscale() == "linear" and (ax.get_lines() or ax.patches):
            groups.setdefault((ax.get_ylabel(), ax.get_yscale()), []).append(ax)
    for group in groups.values():
        if len(group) > 1:
            lo = min(ax.get_ylim()[0] for ax in group)
            hi = max(ax.get_ylim()[1] for ax in group)
            for ax in group:
                ax.set_ylim(lo, hi)


def _as_series(curves: Iterable[Any]) -> list[Series]:
    out = []
    for c in curves:
        if isinstance(c, Series):
            out.append(c)
            continue
        x, y = list(c.get("x") or []), list(c.get("y") or [])
        n = min(len(x), len(y))
        meta = c.get("meta") if isinstance(c.get("meta"), Mapping) else {}
        out.append(Series(str(c.get("name", "curve")), x[:n], y[:n], dict(meta), str(c.get("source", ""))))
    return out


def curves_figure(curves: Iterable[Any], title: str | None = None):
    """A ``Figure`` of curves given as ``{"name", "x", "y", "meta"}`` dicts (as recorded by
    ``claim_record.curve``) or :class:`Series`, in the report's style and grouping rules."""
    series = _as_series(curves)
    return _figure(series, lambda width: textwrap.wrap(title, width) if title else [])


def claim_figure(claim_id: str, series: list[Series], claim: Mapping[str, Any] | None = None,
                 rows: Sequence[Mapping[str, Any]] = ()):
    """A matplotlib ``Figure`` with every curve of one claim (small multiples where needed), titled
    with the claim id, its verdicts, the measured value (one test) and threshold, and its statement."""
    claim = claim or {}
    series = _as_series(series)
    head = f"{claim_id} — {_verdict_summary(series, rows)}"
    if len(rows) == 1:
        measured = rows[0].get("measured")
        if measured and measured != "—":
            head += f"  ·  {measured}"
    if claim.get("threshold_text"):
        head += f"  ·  threshold {claim['threshold_text']}"
    statement = str(claim.get("statement") or "")

    def title_lines(width: int) -> list[str]:
        return textwrap.wrap(head, width) + textwrap.wrap(statement, width, max_lines=2, placeholder=" …")

    return _figure(series, title_lines)


def _clean(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def write_claim_figures(doc: Mapping[str, Any], out_dir: str | os.PathLike, *, prune: bool = True,
                        errors: list[str] | None = None) -> dict[str, Path]:
    """Draw ``<out_dir>/<claim-id>.png`` for every claim with curves; returns ``{claim id: path}``.

    With ``prune``, figures of claims in ``doc`` that recorded no curve (stale from an earlier run)
    are removed; other files in ``out_dir`` are left alone. A claim whose figure cannot be drawn
    is skipped (its old figure removed) and described in ``errors`` when a list is given.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_claim = claim_series(doc)
    claims = doc.get("claims") or {}
    rows_by_claim: dict[str, list] = {}
    for row in doc.get("results") or []:
        rows_by_claim.setdefault(str(row.get("claim_id")), []).append(row)
    made: dict[str, Path] = {}
    for cid, series in by_claim.items():
        path = out / f"{_clean(cid)}.png"
        try:
            fig = claim_figure(cid, series, claims.get(cid), rows_by_claim.get(cid, []))
            figure_to_png(fig, path)
        except Exception as err:  # noqa: BLE001 - one odd curve set must not cost the other figures
            if errors is not None:
                errors.append(f"{cid}: {type(err).__name__}: {err}")
            continue
        made[cid] = path
    if prune:  # stale figures, and those of claims that failed to draw now
        known = set(claims) | set(rows_by_claim) | set(doc.get("not_run") or [])
        for cid in known - set(made):
            stale = out / f"{_clean(cid)}.png"
            if stale.is_file():
                stale.unlink()
    return made


# --------------------------------------------------------------------------------------------
# Memory-utilization heatmaps (data from titans.analysis)
# --------------------------------------------------------------------------------------------


def _marks(ax, marks: Mapping[str, Any] | None) -> None:
    if not marks:
        return
    for name, pos in marks.items():
        if pos is None:
            continue
        ax.axvline(pos, color="white", lw=0.9, ls=(0, (3, 2)), alpha=0.9)
        ax.text(pos, 1.005, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                fontsize=STYLE["font_size"] - 2, color="#222222", clip_on=False)


def memory_utilization_figure(results: Sequence[Mapping[str, Any]], title: str | None = None):
    """Heatmaps of :func:`titans.analysis.model_memory_utilization` results, one column per model.

    Rows: write strength θ_t‖∇ℓ_t‖ per (layer, head) over token positions (log colour scale);
    memory weight norm relative to its initial value ‖M_t‖/‖M_0‖ per (layer, head) at chunk ends;
    for models with an attention branch, log10 of the memory-to-attention branch norm ratio per
    layer and position (the two inputs of the gate ``y ⊗ M``). Batch row 0 is shown; the
    positions of ``marks`` (e.g. the needle and the query of a far-pointer sequence) are dashed.
    """
    from matplotlib.colors import LogNorm, Normalize, TwoSlopeNorm

    results = list(results)
    has_branch = any(r.get("attention_norm") is not None for r in results)
    nrows = 3 if has_branch else 2
    ncols = max(1, len(results))
    pw, ph = 4.6, 2.5
    with _rc():
        fig = _new_figure(pw * ncols + 0.6, ph * nrows + 0.9)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for c, r in enumerate(results):
            name = str(r.get("model", f"model {c}"))
            ws = np.asarray(r["write_strength"])[0]  # (layers, heads, T)
            L, H, T = ws.shape
            rows_label = [f"L{l}h{h}" for l in range(L) for h in range(H)]
            ax = axes[0][c]
            data = ws.reshape(L * H, T)
            pos = data[np.isfinite(data) & (data > 0)]
            if pos.size:
                lo, hi = np.percentile(pos, 1), pos.max()
                norm = LogNorm(vmin=max(lo, hi * 1e-4), vmax=hi)
                im = ax.imshow(np.where(data > 0, data, np.nan), aspect="auto", interpolation="nearest",
                               norm=norm, cmap=STYLE["cmap"], extent=(-0.5, T - 0.5, L * H - 0.5, -0.5))
                fig.colorbar(im, ax=ax, label="θ·‖∇ℓ‖", pad=0.01)
            else:
                ax.text(0.5, 0.5, "no writes (θ = 0 or ∇ℓ = 0)", transform=ax.transAxes, ha="center", va="center")
            ax.set_yticks(range(L * H))
            ax.set_yticklabels(rows_label)
            ax.set_ylabel("layer L, head h")
            ax.set_title(f"{name}: write strength θ_t·‖∇ℓ_t‖", pad=12)
            ax.set_xlabel("token position")
            ax.grid(False)
            _marks(ax, r.get("marks"))

            ax = axes[1][c]
            wn = np.asarray(r["weight_norm"])[0]  # (layers, heads, n_chunks)
            w0 = np.asarray(r["weight_norm_initial"])[0]  # (layers, heads)
            ends = np.asarray(r["chunk_end"])
            rel = (wn / np.where(w0 > 0, w0, 1.0)[..., None]).reshape(L * H, -1)
            edges = np.concatenate([[ends[0] - (ends[1] - ends[0] if len(ends) > 1 else 1)], ends]) + 0.5
            fin = rel[np.isfinite(rel)]
            lo, hi = (float(fin.min()), float(fin.max())) if fin.size else (0.0, 1.0)
            if lo < 1.0 < hi:  # grows somewhere, shrinks elsewhere: diverging around "unchanged"
                norm, cmap = TwoSlopeNorm(vcenter=1.0, vmin=lo, vmax=hi), STYLE["cmap_diverging"]
            else:
                norm, cmap = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1e-6), STYLE["cmap"]
            im = ax.pcolormesh(edges, np.arange(L * H + 1) - 0.5, rel, cmap=cmap, norm=norm, shading="flat")
            ax.invert_yaxis()
            fig.colorbar(im, ax=ax, label="‖M_t‖ / ‖M_0‖", pad=0.01)
            ax.set_yticks(range(L * H))
            ax.set_yticklabels(rows_label)
            ax.set_xlim(-0.5, T - 0.5)
            chunk = r.get("chunk_size")
            ax.set_title(f"{name}: memory norm ‖M_t‖/‖M_0‖ per chunk" + (f" ({chunk} tokens)" if chunk else ""),
                         pad=12)
            ax.set_xlabel("token position")
            ax.grid(False)
            _marks(ax, r.get("marks"))

            if has_branch:
                ax = axes[2][c]
                if r.get("attention_norm") is None:
                    ax.text(0.5, 0.5, f"{name} has no attention branch\n(memory is the only mixer)",
                            transform=ax.transAxes, ha="center", va="center", color=STYLE["ref_color"])
                    ax.set_xticks([])
                    ax.set_yticks([])
                    ax.set_title(f"{name}: attention vs memory")
                    for sp in ax.spines.values():
                        sp.set_visible(False)
                    ax.grid(False)
                    continue
                a = np.asarray(r["attention_norm"])[0]  # (layers, T)
                m = np.asarray(r["memory_norm"])[0]
                ratio = np.log10(np.maximum(m, 1e-12) / np.maximum(a, 1e-12))
                lim = float(np.nanmax(np.abs(ratio))) if np.isfinite(ratio).any() else 1.0
                lim = max(lim, 0.05)
                im = ax.imshow(ratio, aspect="auto", interpolation="nearest", cmap=STYLE["cmap_diverging"],
                               vmin=-lim, vmax=lim, extent=(-0.5, ratio.shape[1] - 0.5, ratio.shape[0] - 0.5, -0.5))
                fig.colorbar(im, ax=ax, label="log10 ‖M‖/‖attn‖", pad=0.01)
                ax.set_yticks(range(ratio.shape[0]))
                ax.set_yticklabels([f"layer {i}" for i in range(ratio.shape[0])])
                ax.set_title(f"{name}: memory vs attention branch (gate inputs)", pad=12)
                ax.set_xlabel("token position")
                ax.grid(False)
                _marks(ax, r.get("marks"))
        if title:
            fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------------------------
# Report integration
# --------------------------------------------------------------------------------------------


def _rows_from_json(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows for :func:`titans.reporting.report.render_markdown`, rebuilt from ``claims.json``."""
    from titans.reporting import report as R

    rows = [dict(r) for r in doc.get("results") or []]
    claims = doc.get("claims") or {}
    for cid in doc.get("not_run") or []:
        c = claims.get(cid, {})
        rows.append({
            "nodeid": c.get("test", ""), "claim_id": cid, "verdict": R.NOT_RUN, "outcome": None, "reason": "",
            "scale": doc.get("scale"), "measured": "—", "threshold": c.get("threshold_text", "?"),
            "statement": c.get("statement", ""), "kind": c.get("kind"), "figure": None, "values": [],
            "seeds": None, "curves": [], "notes": [],
        })
    return rows


def _extra_figures(report_dir: Path) -> list[tuple[str, str]]:
    path = report_dir / FIGURE_DIR / f"{MEMORY_UTILIZATION}.png"
    if path.is_file():
        return [("Memory utilization (titans.analysis)", f"{FIGURE_DIR}/{MEMORY_UTILIZATION}.png")]
    return []


def refresh_report(report_dir: str | os.PathLike, rows: list[dict[str, Any]] | None = None,
                   meta: Mapping[str, Any] | None = None, made: Mapping[str, Path] | None = None) -> None:
    """Re-render ``claims.md`` with the figures on disk, and record them in ``claims.json``."""
    from titans.reporting import report as R

    report_dir = Path(report_dir)
    js = report_dir / "claims.json"
    doc = json.loads(js.read_text(encoding="utf-8"))
    if rows is None:
        rows = _rows_from_json(doc)
    if meta is None:
        meta = {k: doc.get(k) for k in ("generated", "scale", "exitstatus", "git_commit", "command", "environment")}
    for row in rows:
        rel = f"{FIGURE_DIR}/{_clean(row['claim_id'])}.png"
        row["figure"] = rel if (report_dir / rel).is_file() else None
    md_meta = dict(meta)
    md_meta["extra_figures"] = _extra_figures(report_dir)
    (report_dir / "claims.md").write_text(R.render_markdown(rows, md_meta), encoding="utf-8")
    figs = {cid: f"{FIGURE_DIR}/{p.name}" for cid, p in (made or {}).items()}
    if made is None:
        figs = {r["claim_id"]: r["figure"] for r in rows if r.get("figure")}
    for title, rel in md_meta["extra_figures"]:
        figs[MEMORY_UTILIZATION] = rel
    doc["figures"] = figs
    js.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def generate(json_path: str | os.PathLike, out_dir: str | os.PathLike | None = None, *,
             refresh: bool = True, errors: list[str] | None = None) -> dict[str, Path]:
    """Draw the figures of ``claims.json`` (into ``<its dir>/figures`` unless ``out_dir``), then,
    when they went to the report's own figure folder and ``refresh``, re-render ``claims.md``."""
    json_path = Path(json_path)
    doc = json.loads(json_path.read_text(encoding="utf-8"))
    default = json_path.parent / FIGURE_DIR
    out = Path(out_dir) if out_dir is not None else default
    made = write_claim_figures(doc, out, errors=errors)
    if refresh and out.resolve() == default.resolve():
        refresh_report(json_path.parent, made=made)
    return made


def after_session(report_dir: str | os.PathLike, rows: list[dict[str, Any]], meta: Mapping[str, Any]) -> str:
    """Called by the claims plugin after ``claims.json`` is written; returns one terminal line."""
    if not matplotlib_available():
        return "figures: matplotlib is not installed; no figures drawn (pip install -e '.[figures]')"
    report_dir = Path(report_dir)
    doc = json.loads((report_dir / "claims.json").read_text(encoding="utf-8"))
    errors: list[str] = []
    made = write_claim_figures(doc, report_dir / FIGURE_DIR, errors=errors)
    refresh_report(report_dir, rows, meta, made)
    note = f"figures: {len(made)} written to {report_dir / FIGURE_DIR}" if made else "figures: no claim recorded a curve"
    if errors:
        note += f"; {len(errors)} failed: " + "; ".join(errors)
    return note


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m titans.reporting.figures", description=__doc__.split("\n\n")[0])
    parser.add_argument("claims_json", nargs="?", default="reports/claims.json", help="default: reports/claims.json")
    parser.add_argument("--out", default=None, help="figure folder (default: figures/ next to the JSON)")
    parser.add_argument("--no-report", action="store_true", help="do not re-render claims.md")
    parser.add_argument("--memory-utilization", action="store_true",
                        help="also compute and draw figures/memory-utilization.png (fresh tiny LMM/MAC/MAG)")
    args = parser.parse_args(argv)
    if not matplotlib_available():
        print("matplotlib is not installed: pip install -e '.[figures]'", file=sys.stderr)
        return 2
    path = Path(args.claims_json)
    if not path.is_file():
        print(f"{path}: no such file (run the claims first: ./run claims)", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else path.parent / FIGURE_DIR
    if args.memory_utilization:
        from titans import analysis

        results = analysis.default_memory_utilization()
        target = out / f"{MEMORY_UTILIZATION}.png"
        figure_to_png(memory_utilization_figure(results, analysis.DEFAULT_TITLE), target)
        print(f"written: {target}")
    errors: list[str] = []
    made = generate(path, out, refresh=not args.no_report, errors=errors)
    for cid, p in made.items():
        print(f"written: {p}")
    for e in errors:
        print(f"failed: {e}", file=sys.stderr)
    if not made:
        print("no claim in the report recorded a curve")
    return 0


if __name__ == "__main__":
    sys.exit(main())
