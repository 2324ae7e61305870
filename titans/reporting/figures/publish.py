"""The figures of a claims report on disk: drawn for the rows of a session (before the report is
written, once), redrawn from a ``claims.json``, and extra figures linked from the report."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from .claims import remove_stale_figures, write_claim_figures
from .style import matplotlib_available

FIGURE_DIR = "figures"  # the report's figure folder, relative to claims.md


def _link(rows: Sequence[dict[str, Any]], made: Mapping[str, Path]) -> None:
    """Set every row's ``figure`` to its claim's figure drawn now (``figures/<name>.png``) or None."""
    for row in rows:
        path = made.get(row["claim_id"])
        row["figure"] = f"{FIGURE_DIR}/{path.name}" if path is not None else None


def draw_report_figures(report_dir: str | os.PathLike, rows: Sequence[dict[str, Any]]) -> str:
    """For a claims session: ``<report_dir>/figures/<claim-id>.png`` for every claim whose rows
    recorded curves, the PNGs of the rows' other claims removed (stale), and every row's
    ``figure`` set to its figure drawn now (or None). Returns one line for the terminal.

    Called before ``claims.md`` / ``claims.json`` are written, so that they link exactly this
    session's figures. Without matplotlib nothing is drawn (stale figures are still removed).
    """
    out = Path(report_dir) / FIGURE_DIR
    errors: list[str] = []
    if not matplotlib_available():
        remove_stale_figures(rows, out)
        _link(rows, {})
        return "figures: matplotlib is not installed; no figures drawn (pip install -e '.[figures]')"
    made = write_claim_figures(rows, out, errors=errors)
    _link(rows, made)
    note = f"figures: {len(made)} written to {out}" if made else "figures: no claim recorded a curve"
    if errors:
        note += f"; {len(errors)} failed: " + "; ".join(errors)
    retired = retired_key_notes(rows)
    if retired:
        note += "; meta keys no longer read (free data now): " + "; ".join(retired)
    return note


def retired_key_notes(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """``"x_label -> xlabel (curves 'a', 'b')"`` for every retired meta key (:data:`.spec.RETIRED_KEYS`)
    that curves of ``rows`` still use."""
    from .spec import RETIRED_KEYS

    found: dict[str, dict[str, None]] = {}
    for row in rows:
        for c in row.get("curves") or []:
            if isinstance(c, Mapping) and isinstance(c.get("meta"), Mapping):
                for k in c["meta"]:
                    if k in RETIRED_KEYS:
                        found.setdefault(k, {})[repr(str(c.get("name")))] = None
    notes = []
    for k, names in found.items():
        shown = list(names)[:3] + (["..."] if len(names) > 3 else [])
        notes.append(f"{k} -> {RETIRED_KEYS[k]} (curve{'s' if len(names) > 1 else ''} {', '.join(shown)})")
    return notes


def _rewrite(report_dir: Path, doc: Mapping[str, Any], rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    from titans.reporting import report as R

    R.write_report(report_dir, rows, meta, doc.get("claims") or {})


def generate(json_path: str | os.PathLike, out_dir: str | os.PathLike | None = None, *,
             refresh: bool = True, errors: list[str] | None = None,
             extra: Sequence[tuple[str, str]] = ()) -> dict[str, Path]:
    """Draw the figures of a ``claims.json`` (into ``figures/`` next to it unless ``out_dir``).

    When they go to the report's own figure folder and ``refresh``, the report is written again,
    once: ``claims.md`` and ``claims.json`` link the figures drawn now, the extra figures the JSON
    already links, and ``extra`` (``[(title, path relative to the report)]``).
    """
    from titans.reporting import report as R

    json_path = Path(json_path)
    doc = json.loads(json_path.read_text(encoding="utf-8"))
    rows = R.rows_from_doc(doc)
    default = json_path.parent / FIGURE_DIR
    out = Path(out_dir) if out_dir is not None else default
    made = write_claim_figures(rows, out, errors=errors)
    if refresh and out.resolve() == default.resolve():
        _link(rows, made)
        meta = R.meta_from_doc(doc)
        meta["extra_figures"] = _merge(meta["extra_figures"], extra)
        _rewrite(json_path.parent, doc, rows, meta)
    return made


def _merge(old: Sequence[tuple[str, str]], new: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Extra figures: ``new`` replaces an old entry with the same path, else is appended."""
    out = dict((path, title) for title, path in old)
    for title, path in new:
        out[path] = title
    return [(title, path) for path, title in out.items()]


def add_extra_figure(report_dir: str | os.PathLike, title: str, path: str) -> None:
    """Link a figure that belongs to no claim (``path`` relative to the report, e.g.
    ``figures/memory-utilization.png``) from ``claims.md`` under ``title``: the report of
    ``<report_dir>/claims.json`` is written again, once, with the claim figures it links."""
    from titans.reporting import report as R

    report_dir = Path(report_dir)
    doc = json.loads((report_dir / "claims.json").read_text(encoding="utf-8"))
    rows = R.rows_from_doc(doc)
    meta = R.meta_from_doc(doc)
    meta["extra_figures"] = _merge(meta["extra_figures"], [(title, path)])
    _rewrite(report_dir, doc, rows, meta)
