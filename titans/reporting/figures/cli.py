"""``python -m titans.reporting.figures [reports/claims.json] [--out DIR] [--no-report] [--memory-utilization]``"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from .heatmaps import MEMORY_UTILIZATION, MEMORY_UTILIZATION_TITLE, memory_utilization_figure
from .publish import FIGURE_DIR, generate, retired_key_notes
from .style import figure_to_png, matplotlib_available


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m titans.reporting.figures",
        description="Redraw the claim figures of a claims.json and write its claims.md / claims.json again, once.")
    parser.add_argument("claims_json", nargs="?", default="reports/claims.json", help="default: reports/claims.json")
    parser.add_argument("--out", default=None, help="figure folder (default: figures/ next to the JSON; "
                        "elsewhere, the report is left alone)")
    parser.add_argument("--no-report", action="store_true", help="do not write claims.md / claims.json again")
    parser.add_argument("--memory-utilization", action="store_true",
                        help="also compute, draw and link figures/memory-utilization.png (fresh tiny LMM/MAC/MAG)")
    args = parser.parse_args(argv)
    if not matplotlib_available():
        print("matplotlib is not installed: pip install -e '.[figures]'", file=sys.stderr)
        return 2
    path = Path(args.claims_json)
    if not path.is_file():
        print(f"{path}: no such file (run the claims first: ./run claims)", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else path.parent / FIGURE_DIR
    extra = []
    if args.memory_utilization:
        from titans import analysis

        target = out / f"{MEMORY_UTILIZATION}.png"
        figure_to_png(memory_utilization_figure(analysis.default_memory_utilization(), analysis.DEFAULT_TITLE), target)
        print(f"written: {target}")
        extra.append((MEMORY_UTILIZATION_TITLE, f"{FIGURE_DIR}/{target.name}"))
    errors: list[str] = []
    made = generate(path, out, refresh=not args.no_report, errors=errors, extra=extra)
    for p in made.values():
        print(f"written: {p}")
    for e in errors:
        print(f"failed: {e}", file=sys.stderr)
    from titans.reporting.report import rows_from_doc

    for line in retired_key_notes(rows_from_doc(json.loads(path.read_text(encoding="utf-8")))):
        print(f"meta keys no longer read (free data now): {line}", file=sys.stderr)
    if not made and not errors:
        print("no claim in the report recorded a curve")
    return 0
