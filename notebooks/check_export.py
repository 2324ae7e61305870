"""Check that an exported notebook shows every claim row of the report it was rendered from.

    python notebooks/check_export.py reports/claims.json reports/titans_claims.html

Exits 1 and lists the missing claim ids when a claim row (run or not run) is absent from the HTML.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def report_claim_ids(doc: dict) -> list[str]:
    """Every claim id of a claims report: the rows that ran and the registered ones that did not."""
    ran = [r["claim_id"] for r in doc.get("results") or []]
    return list(dict.fromkeys(ran + list(doc.get("not_run") or [])))


def missing_claim_ids(doc: dict, html: str) -> list[str]:
    """The claim ids of ``doc`` that do not occur in ``html``."""
    return [cid for cid in report_claim_ids(doc) if cid not in html]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    report, export = (Path(a) for a in argv)
    for name, path in (("report", report), ("export", export)):
        if not path.is_file():
            print(f"check_export: {name} file {path} does not exist", file=sys.stderr)
            return 2
    doc = json.loads(report.read_text(encoding="utf-8"))
    missing = missing_claim_ids(doc, export.read_text(encoding="utf-8"))
    if missing:
        print(f"check_export: {len(missing)} claim id(s) of {report} missing from {export}: {', '.join(missing)}",
              file=sys.stderr)
        return 1
    print(f"check_export: all {len(report_claim_ids(doc))} claim ids of {report} are in {export}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
