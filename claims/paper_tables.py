"""Tables 1, 2 and 5 of Titans (arXiv 2501.00663v1) as data.

Numbers are copied from ``shared/reference/titans-paper.md`` §5 (a subset of Table 1: the
Transformer++, RetNet and Titans rows at 340M/400M/760M, plus the hybrid-baseline Avgs and the
GDN-H2-400M / TTT-760M cells that the reference gives). Nothing here is derived; derived values are
computed by the helpers below and checked in ``claims/test_paper_tables.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "ABLATION_RANKING",
    "ACC_COLUMNS",
    "KNOWN_AVG_MISMATCHES",
    "SNIAH_COLUMNS",
    "TABLE1",
    "TABLE2",
    "TABLE5",
    "TABLE5_COLUMNS",
    "TABLE5_FROM_TABLE1",
    "TABLE5_LOWER_IS_BETTER",
    "Table1Row",
    "ablation_costs",
    "recomputed_avg",
    "row",
    "rows_at",
    "sniah_mean",
]

ACC_COLUMNS = ("LMB acc", "PIQA", "Hella acc_n", "Wino", "ARC-e", "ARC-c acc_n", "SIQA", "BoolQ")


@dataclass(frozen=True)
class Table1Row:
    scale: str
    model: str
    hybrid: bool
    wiki_ppl: float | None
    lmb_ppl: float | None
    acc: tuple[float, ...] | None  # the 8 ACC_COLUMNS, None when the reference gives no cells
    avg: float  # as printed

    @property
    def key(self) -> str:
        return f"{self.model}-{self.scale}"


def _r(scale, model, hybrid, wiki, lmb, *cells_and_avg):
    *cells, avg = cells_and_avg
    return Table1Row(scale, model, hybrid, wiki, lmb, tuple(cells) if cells else None, avg)


# fmt: off
TABLE1: tuple[Table1Row, ...] = (
    #   scale   model           hyb    Wiki   LMBppl  LMB    PIQA   Hella  Wino   ARC-e  ARC-c  SIQA   BoolQ  Avg
    _r("340M", "Transformer++", False, 31.52, 41.08, 30.76, 62.98, 34.76, 50.53, 45.21, 24.05, 36.81, 58.24, 42.92),
    _r("340M", "RetNet",        False, 32.50, 49.73, 28.24, 62.61, 34.15, 50.91, 44.27, 23.62, 36.79, 59.72, 42.54),
    _r("340M", "Titans-LMM",    False, 26.18, 29.97, 34.98, 64.73, 39.61, 51.85, 55.60, 28.14, 34.52, 59.99, 46.17),
    _r("340M", "Titans-MAC",    True,  25.43, 28.13, 36.00, 65.32, 40.35, 51.21, 58.17, 29.00, 38.63, 60.18, 47.36),
    _r("340M", "Titans-MAG",    True,  25.07, 28.72, 36.71, 64.88, 40.56, 52.49, 57.72, 28.16, 39.75, 60.01, 47.54),
    _r("340M", "Titans-MAL",    True,  24.69, 28.80, 35.74, 64.97, 39.44, 51.97, 56.58, 28.21, 38.14, 57.32, 46.55),
    _r("400M", "Transformer++", False, 30.63, 37.37, 29.64, 64.27, 37.72, 51.53, 54.95, 27.36, 38.07, 61.59, 45.64),
    _r("400M", "RetNet",        False, 29.92, 46.83, 29.16, 65.23, 36.97, 51.85, 56.01, 27.55, 37.30, 59.66, 45.47),
    _r("400M", "Titans-LMM",    False, 25.03, 28.99, 35.21, 65.85, 40.91, 52.19, 59.97, 29.20, 38.74, 60.85, 47.83),
    _r("400M", "Titans-MAC",    True,  25.61, 27.73, 36.92, 66.39, 41.18, 52.80, 60.24, 29.69, 40.07, 61.93, 48.65),
    _r("400M", "Titans-MAG",    True,  23.59, 27.81, 37.24, 66.80, 40.92, 53.21, 60.01, 29.45, 39.91, 61.28, 48.60),
    _r("400M", "Titans-MAL",    True,  23.93, 27.89, 36.84, 66.29, 40.74, 52.26, 59.85, 29.71, 38.92, 58.40, 47.87),
    _r("400M", "Samba",         True,  25.32, None,  47.23),
    _r("400M", "GDN-H2",        True,  24.19, None,  36.77, 66.43, 40.79, 52.17, 59.55, 29.09, 39.04, 58.56, 47.69),
    _r("760M", "Transformer++", False, 25.21, 27.64, 35.78, 66.92, 42.19, 51.95, 60.38, 32.46, 39.51, 60.37, 48.69),
    _r("760M", "RetNet",        False, 26.08, 24.45, 34.51, 67.19, 41.63, 52.09, 63.17, 32.78, 38.36, 57.92, 48.46),
    _r("760M", "TTT",           False, None,  None,  34.74, 67.25, 43.92, 50.99, 64.53, 33.81, 40.16, 59.58, 47.32),
    _r("760M", "Titans-LMM",    False, 20.04, 21.96, 37.40, 69.28, 48.46, 52.27, 66.31, 35.84, 40.13, 62.76, 51.56),
    _r("760M", "Titans-MAC",    True,  19.93, 20.12, 39.62, 70.46, 49.01, 53.18, 67.86, 36.01, 41.87, 62.05, 52.51),
    _r("760M", "Titans-MAG",    True,  18.61, 19.86, 40.98, 70.25, 48.94, 52.89, 68.23, 36.19, 40.38, 62.11, 52.50),
    _r("760M", "Titans-MAL",    True,  19.07, 20.33, 40.05, 69.99, 48.82, 53.02, 67.54, 35.65, 30.98, 61.72, 50.97),
    _r("760M", "Samba",         True,  None,  None,  51.08),
    _r("760M", "GDN-H2",        True,  None,  None,  51.49),
)
# fmt: on

# Rows whose printed Avg is known (reference §5.2) not to equal the mean of its 8 accuracy cells:
# key -> the recomputed Avg as stated in the reference (cross-checked by the tests).
KNOWN_AVG_MISMATCHES: dict[str, float] = {
    "TTT-760M": 49.37,
    "GDN-H2-400M": 47.80,
    "Titans-LMM-400M": 47.865,
}

SNIAH_COLUMNS = ("PK2K", "PK4K", "PK8K", "PK16K", "N2K", "N4K", "N8K", "N16K", "W2K", "W4K", "W8K", "W16K")

# fmt: off
TABLE2: dict[str, tuple[float, ...]] = {
    #               PK2K  PK4K  PK8K  PK16K  N2K    N4K   N8K   N16K  W2K   W4K   W8K   W16K
    "TTT":         (98.4, 98.8, 98.0, 88.4,  60.2,  36.6, 10.2, 4.4,  78.8, 28.0, 4.4,  0.0),
    "Mamba2":      (98.6, 61.4, 31.0, 5.4,   98.4,  55.8, 14.2, 0.0,  42.2, 4.2,  0.0,  0.0),
    "DeltaNet":    (96.8, 98.8, 98.6, 71.4,  47.2,  15.4, 12.8, 5.4,  46.2, 20.0, 1.6,  0.0),
    "Titans-LMM":  (99.8, 98.4, 98.2, 96.2,  100.0, 99.8, 93.4, 80.2, 90.4, 89.4, 85.8, 80.6),
    "Titans-MAC":  (99.2, 98.8, 99.0, 98.4,  99.6,  98.2, 97.6, 97.4, 98.2, 98.2, 95.6, 95.2),
    "Titans-MAG":  (99.4, 98.0, 97.4, 97.4,  99.2,  98.8, 97.2, 98.6, 98.0, 98.0, 90.2, 88.2),
    "Titans-MAL":  (98.8, 98.6, 98.8, 97.8,  99.8,  98.1, 96.8, 96.4, 98.0, 97.4, 92.0, 90.4),
}

# Table 5 (ablations, base = LMM): variant -> (LM ppl (lower better), Reasoning, Long-context)
TABLE5: dict[str, tuple[float, float, float]] = {
    "LMM":                   (27.01, 47.83, 92.68),
    "+Attn (MAC)":           (26.67, 48.65, 97.95),
    "+Attn (MAG)":           (25.70, 48.60, 96.70),
    "+Attn (MAL)":           (25.91, 47.87, 96.91),
    "Linear Memory":         (28.49, 46.97, 85.34),
    "w/o Convolution":       (28.73, 45.82, 90.28),
    "w/o Momentum":          (28.98, 45.49, 87.12),
    "w/o Weight Decay":      (29.04, 45.11, 85.60),
    "w/o Persistent Memory": (27.63, 46.35, 92.49),
}
# fmt: on
TABLE5_COLUMNS = ("LM ppl", "Reasoning", "Long-context")
TABLE5_LOWER_IS_BETTER = {"LM ppl": True, "Reasoning": False, "Long-context": False}

# Table 5 rows that correspond to a Table 1 / Table 2 model (ref §5.4).
TABLE5_FROM_TABLE1 = {
    "LMM": "Titans-LMM",
    "+Attn (MAC)": "Titans-MAC",
    "+Attn (MAG)": "Titans-MAG",
    "+Attn (MAL)": "Titans-MAL",
}

# The paper's ranking (ref §5.4): most costly removal first.
ABLATION_RANKING = ("w/o Weight Decay", "w/o Momentum", "w/o Convolution", "w/o Persistent Memory")


def row(model: str, scale: str) -> Table1Row:
    for r in TABLE1:
        if r.model == model and r.scale == scale:
            return r
    raise KeyError(f"no Table 1 row {model} at {scale}")


def rows_at(scale: str) -> list[Table1Row]:
    return [r for r in TABLE1 if r.scale == scale]


def recomputed_avg(r: Table1Row) -> float:
    """Mean of the 8 accuracy columns (the definition of Avg)."""
    if r.acc is None:
        raise ValueError(f"{r.key}: no accuracy cells in the reference")
    return math.fsum(r.acc) / len(r.acc)


def sniah_mean(model: str) -> float:
    cells = TABLE2[model]
    return math.fsum(cells) / len(cells)


def ablation_costs(column: str) -> dict[str, float]:
    """Cost of each Table 5 variant vs LMM on ``column`` (positive = worse than LMM)."""
    j = TABLE5_COLUMNS.index(column)
    base = TABLE5["LMM"][j]
    sign = 1.0 if TABLE5_LOWER_IS_BETTER[column] else -1.0
    return {name: round(sign * (vals[j] - base), 6) for name, vals in TABLE5.items() if name != "LMM"}
