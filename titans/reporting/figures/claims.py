"""Claim figures, drawn from the curves' stated specs (:mod:`.spec`): panels, scales, labels,
colours by colour key, bands, error bars, reference lines; and the PNG per claim of a report."""

from __future__ import annotations

import json
import math
import os
import textwrap
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from .spec import Panel, Series, as_series, claim_series, file_name, floats, num, panels
from .style import STYLE, bytes_unit, color_map, figure_to_png, human, marker_map, new_figure, rc


def _ref_values(v: Any) -> list[float]:
    vals = v if isinstance(v, (list, tuple)) else [v]
    return [f for f in (num(x) for x in vals) if f is not None and math.isfinite(f)]


def _set_log(axis, base: int, values: list[float]) -> None:
    """Log ticks in ``base``, labelled with :func:`human`; 1-2-5 steps under two decades (base 10)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    pos = [v for v in values if math.isfinite(v) and v > 0]
    span = max(pos) / min(pos) if pos else 1.0
    if base == 2:
        octaves = math.log2(span) if span > 0 else 1
        axis.set_major_locator(LogLocator(base=2, numticks=min(12, int(octaves) + 2) if octaves <= 10 else 7))
    elif span < 100:
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(human))
    axis.set_minor_formatter(NullFormatter())


def _apply_scale(ax, which: str, scale: str, values: list[float]) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator

    axis = ax.xaxis if which == "x" else ax.yaxis
    setter = ax.set_xscale if which == "x" else ax.set_yscale
    fin = [v for v in values if math.isfinite(v)]
    if scale in ("log", "log2"):
        base = 2 if scale == "log2" else 10
        setter("log", base=base, nonpositive="mask")
        _set_log(axis, base, fin)
    elif scale == "symlog":  # linear up to the smallest non-zero |value|, logarithmic beyond
        positive = [abs(v) for v in fin if v != 0]
        setter("symlog", linthresh=min(positive) if positive else 1.0, linscale=0.5)
        ticks = sorted(set(fin))
        if 0 < len(ticks) <= 12:  # a sweep: its own values (symlog's default ticks miss them)
            axis.set_major_locator(FixedLocator(ticks))
        axis.set_major_formatter(FuncFormatter(human))
    else:
        if which == "x":
            axis.set_major_locator(MaxNLocator(nbins=6, integer=bool(fin) and all(float(v).is_integer() for v in fin)))
        if fin and max(abs(v) for v in fin) >= 1e4:
            axis.set_major_formatter(FuncFormatter(human))


def _visible(scale: str, v: float) -> bool:
    return math.isfinite(v) and (v > 0 if scale in ("log", "log2") else True)


def _draw_panel(ax, panel: Panel, colors: Mapping[str, str], markers: Mapping[str, str]) -> dict[str, Any]:
    """Draw one panel; returns ``{legend label: handle}``."""
    handles: dict[str, Any] = {}
    series = panel.series
    ylabel = panel.ylabel
    y_div = 1.0
    if panel.yunit == "bytes":
        y_div, unit = bytes_unit(v for s in series for v in floats(s.y))
        ylabel = f"{ylabel} ({unit})" if ylabel else unit
    shown = False  # any point drawn
    if any(s.categorical for s in series):
        cats = list(dict.fromkeys(str(v) for s in series for v in s.x))
        pos = {c: j for j, c in enumerate(cats)}
        width = 0.8 / max(1, len(series))
        for i, s in enumerate(series):
            ys = [v / y_div for v in floats(s.y)]
            xs = [pos[str(x)] - 0.4 + width * (i + 0.5) for x in s.x]
            keep = [(x, y) for x, y in zip(xs, ys) if _visible(panel.yscale, y)]
            for x, y in zip(xs, ys):
                if not math.isfinite(y):
                    ax.text(x, 0, "n/a", ha="center", va="bottom", color=STYLE["ref_color"],
                            fontsize=STYLE["font_size"] - 2)
            if keep:
                shown = True
                h = ax.bar([k[0] for k in keep], [k[1] for k in keep], width=width * 0.92,
                           color=colors[s.color_key], label=s.label, zorder=2)
                handles.setdefault(s.label, h)
        ax.set_xticks(range(len(cats)))
        many = len(cats) > 6
        ax.set_xticklabels(cats if many else ["\n".join(textwrap.wrap(c, 12)) or c for c in cats],
                           rotation=30 if many else 0, ha="right" if many else "center")
        ax.grid(axis="x", visible=False)
        ax.axhline(0, color=STYLE["ref_color"], lw=0.6, zorder=1)
        all_x: list[float] = []
    else:
        all_x = [v for s in series for v in floats(s.x)]
        for s in series:
            xs, ys = floats(s.x), [v / y_div for v in floats(s.y)]
            points = [(x, y) for x, y in zip(xs, ys) if _visible(panel.xscale, x) and _visible(panel.yscale, y)]
            if not points:
                continue
            shown = True
            color, marker = colors[s.color_key], markers[s.color_key]
            few = len(xs) <= STYLE["max_markers"] or len(points) == 1
            err = s.meta.get("yerr")
            if err is not None:
                h = ax.errorbar(xs, ys, yerr=[abs(e) / y_div for e in floats(err)], color=color,
                                marker=marker if few else None, ms=STYLE["marker_size"], lw=STYLE["line_width"],
                                capsize=2.5, label=s.label)
            else:
                (h,) = ax.plot(xs, ys, color=color, marker=marker if few else None, ms=STYLE["marker_size"],
                               lw=STYLE["line_width"], label=s.label)
            if len(points) == 1:  # a lone point: print its value
                ax.annotate(human(points[0][1]), points[0], textcoords="offset points", xytext=(6, 6),
                            color=color, fontsize=STYLE["font_size"] - 1)
            if "y_low" in s.meta:
                ax.fill_between(xs, [v / y_div for v in floats(s.meta["y_low"])],
                                [v / y_div for v in floats(s.meta["y_high"])], color=color,
                                alpha=STYLE["band_alpha"], lw=0)
            handles.setdefault(s.label, h)
        _apply_scale(ax, "x", panel.xscale, all_x)
    all_y = [v / y_div for s in series for v in floats(s.y)]
    _apply_scale(ax, "y", panel.yscale, all_y)
    for s in series:  # reference lines
        for key, draw, ls, div in (("hline", ax.axhline, "--", y_div), ("vline", ax.axvline, ":", 1.0)):
            text = s.meta.get(f"{key}_label")
            for v in _ref_values(s.meta.get(key)):
                line = draw(v / div, color=STYLE["ref_color"], ls=ls, lw=1.2, zorder=1)
                if text:
                    handles.setdefault(text, line)
    if panel.ylim is not None:
        _set_ylim(ax, panel.ylim, y_div, panel.yscale)
    if not shown:
        ax.text(0.5, 0.5, "no finite values recorded", transform=ax.transAxes, ha="center", va="center",
                color=STYLE["ref_color"])
        ax.set_xticks([])
        ax.set_yticks([])
    if panel.xlabel:
        ax.set_xlabel(panel.xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if panel.title:
        ax.set_title(panel.title)
    return handles


def _set_ylim(ax, ylim: Sequence[Any], y_div: float, yscale: str) -> None:
    """The stated [low, high] (None: matplotlib's own), widened by ``ylim_margin`` on a linear axis."""
    auto_lo, auto_hi = ax.get_ylim()
    lo = auto_lo if ylim[0] is None else ylim[0] / y_div
    hi = auto_hi if ylim[1] is None else ylim[1] / y_div
    if yscale == "linear" and hi > lo:
        pad = STYLE["ylim_margin"] * (hi - lo)
        lo, hi = (lo - pad if ylim[0] is not None else lo), (hi + pad if ylim[1] is not None else hi)
    ax.set_ylim(lo, hi)


def _share_ylims(axes) -> None:
    """Panels that plot the same quantity (y label, linear scale) get the same y range."""
    groups: dict[str, list] = {}
    for ax in axes:
        if ax.get_ylabel() and ax.get_yscale() == "linear" and (ax.get_lines() or ax.patches):
            groups.setdefault(ax.get_ylabel(), []).append(ax)
    for group in groups.values():
        if len(group) > 1:
            lo = min(ax.get_ylim()[0] for ax in group)
            hi = max(ax.get_ylim()[1] for ax in group)
            for ax in group:
                ax.set_ylim(lo, hi)


def _unique(series: Iterable[Series]) -> list[Series]:
    """The same curve recorded by several tests of a claim (a shared baseline) is drawn once."""
    seen: dict[str, Series] = {}
    for s in series:
        seen.setdefault(json.dumps([s.name, s.x, s.y, s.meta], sort_keys=True, default=str), s)
    return list(seen.values())


def _figure(series: list[Series], title_lines: Callable[[int], list[str]]):
    """Panels, one legend and a title (``title_lines(width)``: lines wrapped to the figure width)."""
    series = _unique(series)
    ps = panels(series) or [Panel(None, [])]
    keys = [s.color_key for s in series]
    colors, markers = color_map(keys), marker_map(keys)
    n = len(ps)
    ncols = min(STYLE["max_cols"], n)
    nrows = math.ceil(n / ncols)
    entries = list(dict.fromkeys([s.label for s in series]
                                 + [s.meta[k] for s in series for k in ("hline_label", "vline_label") if k in s.meta]))
    longest = max((len(e) for e in entries), default=0)
    outside = n > 1 or len(entries) > 5 or longest > 28
    pw, ph = STYLE["panel_size"]
    extra_w = min(3.2, 0.9 + 0.065 * longest) if outside and entries else 0.0
    with rc():
        fig = new_figure(pw * ncols + extra_w, ph * nrows + 0.85)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        handles: dict[str, Any] = {}
        for i, panel in enumerate(ps):
            ax = axes[i // ncols][i % ncols]
            mine = _draw_panel(ax, panel, colors, markers)
            for label, h in mine.items():
                handles.setdefault(label, h)
            if not outside and mine:
                ax.legend(list(mine.values()), list(mine.keys()), loc="best")
        for j in range(n, nrows * ncols):  # no empty axes
            fig.delaxes(axes[j // ncols][j % ncols])
        _share_ylims([axes[i // ncols][i % ncols] for i in range(n)])
        if outside and handles:
            fig.legend(list(handles.values()), list(handles.keys()), loc="outside right center")
        lines = title_lines(max(50, int(11.5 * pw * ncols)))
        if lines:
            fig.suptitle("\n".join(lines), ha="center")
    return fig


def curves_figure(curves: Iterable[Any], title: str | None = None):
    """A ``Figure`` of curves given as ``{"name", "x", "y", "meta"}`` dicts (as recorded by
    ``claim_record.curve``) or :class:`Series`, drawn from their specs in the report's style."""
    return _figure(as_series(curves), lambda width: textwrap.wrap(title, width) if title else [])


def _verdict_summary(series: Sequence[Series], rows: Sequence[Mapping[str, Any]]) -> str:
    verdicts = [str(r.get("verdict", "")) for r in rows] or [s.verdict for s in series]
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[v] = counts.get(v, 0) + 1
    parts = []
    for v, k in counts.items():
        mark = STYLE["verdict_marks"].get(v, "")
        parts.append(f"{mark} {v}" + (f" ({k}/{len(verdicts)})" if len(counts) > 1 or k > 1 else ""))
    return ", ".join(parts)


def claim_figure(claim_id: str, series: Iterable[Any], rows: Sequence[Mapping[str, Any]] = (), *,
                 statement: str | None = None, threshold: str | None = None):
    """A ``Figure`` with every curve of one claim, titled with the claim id, its verdicts, the
    measured value (one row) and threshold, and its statement (by default from ``rows``)."""
    series = as_series(series)
    first = rows[0] if rows else {}
    statement = str(statement if statement is not None else first.get("statement") or "")
    threshold = threshold if threshold is not None else first.get("threshold")
    head = f"{claim_id} — {_verdict_summary(series, rows)}"
    if len(rows) == 1:
        measured = rows[0].get("measured")
        if measured and measured != "—":
            head += f"  ·  {measured}"
    if threshold and threshold != "?":
        head += f"  ·  threshold {threshold}"

    def title_lines(width: int) -> list[str]:
        return textwrap.wrap(head, width) + textwrap.wrap(statement, width, max_lines=2, placeholder=" …")

    return _figure(series, title_lines)


def write_claim_figures(rows: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike, *, prune: bool = True,
                        errors: list[str] | None = None) -> dict[str, Path]:
    """Draw ``<out_dir>/<claim-id>.png`` for every claim whose ``rows`` recorded curves; returns
    ``{claim id: path}`` of the figures drawn.

    With ``prune``, the PNGs of the other claims of ``rows`` (stale: from an earlier run) are
    removed; other files in ``out_dir`` are left alone. A claim whose figure cannot be drawn is
    skipped (its old PNG removed) and described in ``errors`` when a list is given.
    """
    out = Path(out_dir)
    rows = list(rows)
    by_claim = claim_series(rows)
    rows_by_claim: dict[str, list] = {}
    for row in rows:
        rows_by_claim.setdefault(str(row.get("claim_id")), []).append(row)
    made: dict[str, Path] = {}
    for cid, series in by_claim.items():
        path = out / file_name(cid)
        try:
            fig = claim_figure(cid, series, [r for r in rows_by_claim[cid] if r.get("verdict") != "not run"])
            figure_to_png(fig, path)
        except Exception as err:  # noqa: BLE001 - one odd curve set must not cost the other figures
            if errors is not None:
                errors.append(f"{cid}: {type(err).__name__}: {err}")
            continue
        made[cid] = path
    if prune:
        remove_stale_figures(rows, out, made)
    return made


def remove_stale_figures(rows: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike,
                         made: Mapping[str, Any] | None = None) -> None:
    """Remove ``<out_dir>/<claim-id>.png`` of every claim of ``rows`` not in ``made``."""
    for cid in {str(r.get("claim_id")) for r in rows} - set(made or {}):
        stale = Path(out_dir) / file_name(cid)
        if stale.is_file():
            stale.unlink()
