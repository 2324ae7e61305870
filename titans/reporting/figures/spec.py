"""The figure spec of a curve: the meta keys that say how ``claim_record.curve(name, x, y, **meta)``
is drawn, their validation, and the curves of a report as :class:`Series`.

Nothing is inferred from labels or data: what a curve does not state is a linear axis, the one
default panel, the curve name as legend label and a colour from the cycle. Every other meta key is
free data (``mixer=``, ``theta=``, ...) and does not change the figure.

This module imports neither matplotlib nor MLX (``ClaimRecord.curve`` validates with it).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

SCALES = ("linear", "log", "log2", "symlog")

# key -> what it is (the module docstring of titans.reporting.figures has the long form)
SPEC_KEYS: dict[str, str] = {
    "panel": "which axes (str or number; curves with the same value share one; default: the one panel)",
    "xscale": "x axis scale: linear (default), log, log2, symlog",
    "yscale": "y axis scale: linear (default), log, log2, symlog",
    "xlabel": "x axis label, shown as given (units included)",
    "ylabel": "y axis label, shown as given (units included)",
    "yunit": '"bytes": y values are bytes, shown in KiB/MiB/GiB (the unit appended to ylabel)',
    "ylim": "[low, high] y range (either may be None)",
    "series": "legend label (default: the curve name)",
    "color_key": "curves with the same key share colour and marker (default: the series label)",
    "y_low": "lower edge of an uncertainty band (list like y; with y_high)",
    "y_high": "upper edge of an uncertainty band (list like y; with y_low)",
    "yerr": "symmetric error bars (list like y)",
    "hline": "horizontal reference line(s): a number or a list",
    "vline": "vertical reference line(s): a number or a list",
    "hline_label": "legend text of the hline(s)",
    "vline_label": "legend text of the vline(s)",
}

# Keys the previous, guessing figure code read. They are free data now; the figure notes name them
# so that a curve still written the old way does not lose its labels unnoticed.
RETIRED_KEYS: dict[str, str] = {
    "x_label": "xlabel", "y_label": "ylabel", "x_unit": "xlabel (units in the label)",
    "xunit": "xlabel (units in the label)", "y_unit": "ylabel (units in the label) or yunit='bytes'",
    "figure": "panel", "loglog": "xscale/yscale", "ci_low": "y_low", "ci_high": "y_high",
}

_PER_PANEL = ("xlabel", "ylabel", "xscale", "yscale", "yunit", "ylim")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_value(v: Any) -> bool:
    """A y-like entry: a number, None, or a non-finite number as recorded ("nan", "inf", "-inf")."""
    return v is None or _is_number(v) or (isinstance(v, str) and num(v) is not None)


def check_meta(meta: Mapping[str, Any], n: int | None = None, name: str = "curve") -> None:
    """Raise ``ValueError`` when a spec key of ``meta`` has a value the figures cannot draw.

    ``n`` is the number of points (``len(y)``), checked against the per-point lists.
    """

    def bad(key: str, why: str) -> ValueError:
        return ValueError(f"curve {name!r}: meta {key}={meta[key]!r}: {why}")

    for key in ("xscale", "yscale"):
        if key in meta and meta[key] not in SCALES:
            raise bad(key, f"must be one of {', '.join(SCALES)}")
    for key in ("xlabel", "ylabel", "series", "color_key", "hline_label", "vline_label"):
        if key in meta and not isinstance(meta[key], str):
            raise bad(key, "must be a string")
    if "panel" in meta and not (meta["panel"] is None or isinstance(meta["panel"], str) or _is_number(meta["panel"])):
        raise bad("panel", "must be a string or a number")
    if "yunit" in meta and meta["yunit"] != "bytes":
        raise bad("yunit", 'the only unit the figures convert is "bytes"; put other units in ylabel')
    if "ylim" in meta:
        v = meta["ylim"]
        if not (isinstance(v, (list, tuple)) and len(v) == 2 and all(x is None or _is_number(x) for x in v)):
            raise bad("ylim", "must be [low, high] (numbers, either may be None)")
    if ("y_low" in meta) != ("y_high" in meta):
        raise ValueError(f"curve {name!r}: an uncertainty band needs both y_low and y_high")
    for key in ("y_low", "y_high", "yerr"):
        if key in meta:
            v = meta[key]
            if not (isinstance(v, (list, tuple)) and all(_is_value(x) for x in v)):
                raise bad(key, "must be a list of numbers like y")
            if n is not None and len(v) != n:
                raise bad(key, f"has {len(v)} entries for {n} points")
    for key in ("hline", "vline"):
        if key in meta:
            v = meta[key]
            vals = v if isinstance(v, (list, tuple)) else [v]
            if not all(_is_number(x) for x in vals):
                raise bad(key, "must be a number or a list of numbers")


def retired_keys(meta: Mapping[str, Any]) -> list[str]:
    """The keys of ``meta`` that the figures no longer read (see :data:`RETIRED_KEYS`)."""
    return [k for k in meta if k in RETIRED_KEYS]


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------


def num(v: Any) -> float | None:
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


def floats(values: Sequence[Any]) -> list[float]:
    """Numbers as floats, NaN for gaps and for anything else."""
    out = []
    for v in values:
        f = num(v)
        out.append(math.nan if f is None else f)
    return out


# --------------------------------------------------------------------------------------------
# Series
# --------------------------------------------------------------------------------------------


@dataclass
class Series:
    """One recorded curve: ``name``, ``x``, ``y`` and its ``meta`` (spec keys and free data)."""

    name: str
    x: list
    y: list
    meta: dict
    verdict: str = ""

    @property
    def label(self) -> str:
        """The legend label: meta ``series``, else the curve name."""
        return self.meta.get("series") or self.name

    @property
    def color_key(self) -> str:
        """Curves with the same key share colour and marker: meta ``color_key``, else the label."""
        return self.meta.get("color_key") or self.label

    @property
    def panel(self) -> Any:
        return self.meta.get("panel")

    @property
    def categorical(self) -> bool:
        return any(num(v) is None for v in self.x)


def as_series(curves: Iterable[Any]) -> list[Series]:
    """:class:`Series` from ``{"name", "x", "y", "meta"}`` dicts (as recorded) or Series."""
    out = []
    for c in curves:
        if isinstance(c, Series):
            out.append(c)
            continue
        x, y = list(c.get("x") or []), list(c.get("y") or [])
        n = min(len(x), len(y))
        meta = c.get("meta") if isinstance(c.get("meta"), Mapping) else {}
        out.append(Series(str(c.get("name", "curve")), x[:n], y[:n], dict(meta), str(c.get("verdict", ""))))
    return out


def claim_series(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Series]]:
    """``{claim id: [Series, ...]}`` for every claim whose rows (report rows, or the ``results``
    of ``claims.json``) recorded at least one curve, in row order."""
    out: dict[str, list[Series]] = {}
    for row in rows:
        for c in row.get("curves") or []:
            if isinstance(c, Mapping):
                s = as_series([c])[0]
                s.verdict = str(row.get("verdict", ""))
                out.setdefault(str(row.get("claim_id")), []).append(s)
    return out


def file_name(claim_id: str) -> str:
    """The figure's file name for a claim id: ``<id>.png`` (odd characters replaced)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", claim_id) + ".png"


# --------------------------------------------------------------------------------------------
# Panels: curves grouped by their stated panel, and what the panel's curves agree on
# --------------------------------------------------------------------------------------------


@dataclass
class Panel:
    """One axes: its ``key`` (the curves' ``panel`` value), its curves, and the per-axes spec."""

    key: Any
    series: list[Series]
    xlabel: str | None = None
    ylabel: str | None = None
    xscale: str = "linear"
    yscale: str = "linear"
    yunit: str | None = None
    ylim: tuple | None = None

    @property
    def title(self) -> str | None:
        return None if self.key in (None, "") else str(self.key)


def panels(series: Sequence[Series]) -> list[Panel]:
    """The curves grouped by their ``panel`` value (in order of first appearance), each panel with
    the axis spec its curves state. Two curves of one panel that state different values of an
    axis key (xlabel, ylabel, xscale, yscale, yunit, ylim) are an error (``ValueError``)."""
    groups: dict[Any, list[Series]] = {}
    for s in series:
        check_meta(s.meta, len(s.y), s.name)
        groups.setdefault(s.panel, []).append(s)
    out = []
    for key, members in groups.items():
        p = Panel(key, members)
        for attr in _PER_PANEL:
            stated = {}
            for s in members:
                if s.meta.get(attr) is not None:
                    v = s.meta[attr]
                    stated.setdefault(tuple(v) if isinstance(v, list) else v, s.name)
            if len(stated) > 1:
                where = f"panel {p.title!r}" if p.title else "the default panel"
                raise ValueError(f"{where}: curves state different {attr}: "
                                 + "; ".join(f"{v!r} ({name})" for v, name in stated.items())
                                 + " -- give them different panel= values or the same " + attr)
            if stated:
                setattr(p, attr, next(iter(stated)))
        if any(s.categorical for s in members) and (p.xscale != "linear"):
            raise ValueError(f"panel {p.title!r}: non-numeric x (categories) cannot have xscale={p.xscale!r}")
        out.append(p)
    return out
