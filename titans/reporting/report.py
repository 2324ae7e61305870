"""Claim results: the record format, verdicts, and the markdown / JSON / terminal renderings.

Everything a claim test records travels as pytest *user properties* (``record_property``), one
``(name, value)`` pair per record, so it survives pytest-xdist (workers send reports to the
controller) and appears in ``--junitxml`` as ``<property>`` elements. Structured values are JSON
strings:

=================== ==========================================================================
property name        value
=================== ==========================================================================
``claim_id``         the registry id (added by the plugin at collection)
``claim_scale``      ``ci`` or ``full``
``claim_value``      ``{"name", "mean", "ci_low", "ci_high", "n", "unit"}``
``claim_seeds``      ``[0, 1, 2]``
``claim_curve``      ``{"name", "x", "y", "meta"}`` (figure data)
``claim_note``       free text
``claim_exception``  ``{"when", "type", "assertion", "message"}`` (added by the plugin)
=================== ==========================================================================

This module has no pytest or MLX dependency; :mod:`titans.reporting.plugin` wires it into pytest.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

P_ID = "claim_id"
P_SCALE = "claim_scale"
P_VALUE = "claim_value"
P_SEEDS = "claim_seeds"
P_CURVE = "claim_curve"
P_NOTE = "claim_note"
P_EXCEPTION = "claim_exception"
P_VERDICT = "claim_verdict"  # set by the plugin after a claim test's last phase (JUnit XML)

SUPPORTED = "supported"
NOT_REPRODUCED = "not reproduced"
ERROR = "error"
XPASSED = "unexpectedly passed (remove xfail)"
INCONCLUSIVE = "inconclusive"
SKIPPED = "skipped"
NOT_RUN = "not run"
VERDICTS = (SUPPORTED, NOT_REPRODUCED, INCONCLUSIVE, XPASSED, ERROR, SKIPPED, NOT_RUN)
# A test that skips with a reason starting with this word reports the verdict *inconclusive*
# (``titans.reporting.verdicts.inconclusive``): measured, but the interval straddles the threshold
# or a model it compares did not learn.
INCONCLUSIVE_PREFIX = "inconclusive"

XPASS_STRICT_PREFIX = "[XPASS(strict)]"

# Rows of this registry kind are structural checks (they can only fail on a bug): the report lists
# and counts them apart from the claims.
SANITY_KIND = "sanity"


# --------------------------------------------------------------------------------------------
# JSON helpers
# --------------------------------------------------------------------------------------------


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types from numbers, numpy/MLX scalars and arrays, tuples, mappings.

    Non-finite floats become the strings ``"nan"``, ``"inf"``, ``"-inf"`` (strict JSON has no NaN).
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy / MLX arrays and scalars
        return to_jsonable(obj.tolist())
    if hasattr(obj, "item"):
        return to_jsonable(obj.item())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot record {type(obj).__name__!r} as JSON: {obj!r}")


def encode(obj: Any) -> str:
    return json.dumps(to_jsonable(obj), allow_nan=False, separators=(",", ":"))


def _number(x: Any, what: str) -> Any:
    """A Python number (or bool) from x; numpy/MLX scalars and 1-element arrays accepted."""
    if isinstance(x, (bool, int, float)):
        return x
    if hasattr(x, "item"):
        return x.item()
    raise TypeError(f"{what} must be a number, got {type(x).__name__}")


# --------------------------------------------------------------------------------------------
# The record object handed to claim tests (fixture ``claim_record``)
# --------------------------------------------------------------------------------------------


class ClaimRecord:
    """What a claim test measured. Each call becomes one user property (see module docstring).

    ``record.value(name, mean, ci_low=None, ci_high=None, n=None, unit=None)`` -- the first value
    recorded is the one the report shows against the threshold. ``mean`` may also be a
    :class:`titans.reporting.MeanCI` (``record.value("acc", mean_ci(xs))``).
    """

    def __init__(self, claim_id: str, add_property: Callable[[str, Any], None], claim: Any = None):
        self.id = claim_id
        self.claim = claim
        self._add = add_property
        self.values: list[dict[str, Any]] = []

    def value(
        self,
        name: str,
        mean: Any,
        ci_low: Any = None,
        ci_high: Any = None,
        n: int | None = None,
        unit: str | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError("value name must be a non-empty string")
        if isinstance(mean, tuple) and getattr(mean, "_fields", None) == ("mean", "ci_low", "ci_high", "n"):
            if (ci_low, ci_high, n) != (None, None, None):
                raise TypeError("pass either a MeanCI or mean/ci_low/ci_high/n, not both")
            mean, ci_low, ci_high, n = mean
        if (ci_low is None) != (ci_high is None):
            raise ValueError("give both ci_low and ci_high, or neither")
        entry = {
            "name": name,
            "mean": _number(mean, "mean"),
            "ci_low": None if ci_low is None else _number(ci_low, "ci_low"),
            "ci_high": None if ci_high is None else _number(ci_high, "ci_high"),
            "n": None if n is None else int(n),
            "unit": unit,
        }
        self.values.append(to_jsonable(entry))
        self._add(P_VALUE, encode(entry))

    def seeds(self, seeds: Iterable[Any]) -> None:
        self._add(P_SEEDS, encode([int(_number(s, "seed")) for s in seeds]))

    def curve(self, name: str, x: Any, y: Any, **meta: Any) -> None:
        """One curve of the claim's figure. ``meta`` holds its figure spec (``panel``, ``xscale``,
        ``ylabel``, ``series``, ... -- :mod:`titans.reporting.figures`), checked here, and any free
        data (``mixer=``, ``theta=``)."""
        from titans.reporting.figures.spec import check_meta

        xs, ys = to_jsonable(x), to_jsonable(y)
        if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys):
            raise ValueError(f"curve {name!r}: x and y must be sequences of equal length")
        meta = to_jsonable(meta)
        check_meta(meta, len(ys), name)
        self._add(P_CURVE, encode({"name": name, "x": xs, "y": ys, "meta": meta}))

    def note(self, text: str) -> None:
        self._add(P_NOTE, str(text))


# --------------------------------------------------------------------------------------------
# Results: one per claim test (nodeid), assembled from its setup/call/teardown reports
# --------------------------------------------------------------------------------------------


def _longrepr_message(longrepr: Any) -> str | None:
    if longrepr is None:
        return None
    if isinstance(longrepr, (tuple, list)) and len(longrepr) == 3:  # skip: (path, lineno, reason)
        return str(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return str(crash.message)
    text = str(longrepr).strip()
    return text.splitlines()[-1] if text else None


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


@dataclass
class ClaimTestResult:
    nodeid: str
    claim_id: str
    scale: str | None = None
    phases: dict[str, str] = field(default_factory=dict)
    wasxfail: str | None = None
    xpass_strict: str | None = None
    exception: dict[str, Any] | None = None
    message: str | None = None
    skip_reason: str | None = None
    duration: float = 0.0
    values: list[dict[str, Any]] = field(default_factory=list)
    seeds: list[Any] | None = None
    curves: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    # ---------------------------------------------------------------- assembling
    def add_report(self, report: Any) -> None:
        when = report.when
        self.phases[when] = report.outcome
        self.duration += float(getattr(report, "duration", 0.0) or 0.0)
        if hasattr(report, "wasxfail"):
            self.wasxfail = str(report.wasxfail)
        longrepr = getattr(report, "longrepr", None)
        if isinstance(longrepr, str) and longrepr.startswith(XPASS_STRICT_PREFIX):
            self.xpass_strict = longrepr[len(XPASS_STRICT_PREFIX):].strip()
        elif report.outcome == "skipped" and not hasattr(report, "wasxfail"):
            self.skip_reason = _longrepr_message(longrepr)
        elif report.outcome in ("failed", "skipped") and longrepr is not None and self.message is None:
            self.message = _longrepr_message(longrepr)

        values, seeds, curves, notes = [], None, [], []
        for name, raw in getattr(report, "user_properties", ()):
            if name == P_SCALE:
                self.scale = str(raw)
            elif name == P_VALUE:
                values.append(_decode(raw))
            elif name == P_SEEDS:
                seeds = _decode(raw)
            elif name == P_CURVE:
                curves.append(_decode(raw))
            elif name == P_NOTE:
                notes.append(str(raw))
            elif name == P_EXCEPTION and self.exception is None:
                self.exception = _decode(raw)
        # Each phase's properties are a snapshot of everything recorded so far: keep the fullest.
        if len(values) >= len(self.values):
            self.values = values
        if seeds is not None:
            self.seeds = seeds
        if len(curves) >= len(self.curves):
            self.curves = curves
        if len(notes) >= len(self.notes):
            self.notes = notes

    # ---------------------------------------------------------------- verdict
    @property
    def _crashed(self) -> bool:
        """An exception other than an assertion (or pytest.fail / pytest.xfail) was raised."""
        return self.exception is not None and not self.exception.get("assertion", False)

    @property
    def verdict(self) -> str:
        setup, call, teardown = (self.phases.get(w) for w in ("setup", "call", "teardown"))
        if setup == "failed" or teardown == "failed":
            return ERROR
        if self.xpass_strict is not None or (call == "passed" and self.wasxfail is not None):
            return XPASSED
        if self.wasxfail is not None:
            return ERROR if self._crashed else NOT_REPRODUCED
        if call == "failed":
            if self.exception is None or self._crashed:
                return ERROR
            return NOT_REPRODUCED
        if setup == "skipped" or call == "skipped":
            reason = (self.skip_reason or "").removeprefix("Skipped: ")
            return INCONCLUSIVE if reason.startswith(INCONCLUSIVE_PREFIX) else SKIPPED
        if call == "passed":
            return SUPPORTED
        return ERROR  # incomplete (interrupted)

    @property
    def outcome(self) -> str:
        """pytest's word for the test: passed, failed, xfailed, xpassed, error, skipped."""
        setup, call, teardown = (self.phases.get(w) for w in ("setup", "call", "teardown"))
        if setup == "failed" or teardown == "failed":
            return "error"
        if self.wasxfail is not None:
            return "xpassed" if call == "passed" else "xfailed"
        if call == "failed":
            return "failed"
        if setup == "skipped" or call == "skipped":
            return "skipped"
        return call or "incomplete"

    @property
    def reason(self) -> str:
        v = self.verdict
        exc = self.exception or {}
        crash = f"{exc.get('type', 'error')}: {exc.get('message', '')}".strip()
        if v == XPASSED:
            why = self.xpass_strict if self.xpass_strict is not None else self.wasxfail
            return f"xfail reason was: {why}"
        if v == NOT_REPRODUCED:
            if self.wasxfail is not None:
                measured = (self.message or "").strip().splitlines()
                return f"{self.wasxfail} Measured: {measured[0]}" if measured else self.wasxfail
            first = (self.message or crash).strip().splitlines() or [""]
            return f"FAILED, not marked xfail: {first[0]}"
        if v == ERROR:
            if self.wasxfail is not None and self._crashed:
                return f"xfail hid a crash ({crash}); mark with raises=AssertionError"
            if self.exception is not None:
                return f"{crash} (in {exc.get('when', '?')})"
            return self.message or "test did not complete"
        if v in (SKIPPED, INCONCLUSIVE):
            return self.skip_reason or ""
        return ""

    @property
    def primary(self) -> dict[str, Any] | None:
        return self.values[0] if self.values else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "claim_id": self.claim_id,
            "verdict": self.verdict,
            "outcome": self.outcome,
            "reason": self.reason,
            "scale": self.scale,
            "phases": dict(self.phases),
            "xfail_reason": self.wasxfail if self.wasxfail is not None else self.xpass_strict,
            "message": self.message,
            "exception": self.exception,
            "duration_s": round(self.duration, 6),
            "values": self.values,
            "seeds": self.seeds,
            "curves": self.curves,
            "notes": self.notes,
        }


class ResultCollector:
    """Collects claim-test reports (``pytest_runtest_logreport``) into :class:`ClaimTestResult`."""

    def __init__(self) -> None:
        self.results: dict[str, ClaimTestResult] = {}

    def add(self, report: Any) -> ClaimTestResult | None:
        claim_id = None
        for name, value in getattr(report, "user_properties", ()):
            if name == P_ID:
                claim_id = str(value)
                break
        if claim_id is None:
            return None
        result = self.results.get(report.nodeid)
        if result is None:
            result = self.results[report.nodeid] = ClaimTestResult(report.nodeid, claim_id)
        result.add_report(report)
        return result

    def __len__(self) -> int:
        return len(self.results)


# --------------------------------------------------------------------------------------------
# Rows and rendering
# --------------------------------------------------------------------------------------------


def _fmt_num(x: Any) -> str:
    if isinstance(x, bool) or isinstance(x, str):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return format(x, ".4g")
    return str(x)


def format_value(v: Mapping[str, Any] | None) -> str:
    """``name = mean ± half (n=N) unit`` or ``name = mean [lo, hi] …`` for an asymmetric CI."""
    if not v:
        return "—"
    text = f"{v.get('name')} = {_fmt_num(v.get('mean'))}"
    lo, hi, mean = v.get("ci_low"), v.get("ci_high"), v.get("mean")
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and isinstance(mean, (int, float)):
        half = (hi - lo) / 2.0
        if abs((mean - lo) - (hi - mean)) <= 1e-9 * max(1.0, abs(mean), abs(half)):
            text += f" ± {_fmt_num(float(half))}"
        else:
            text += f" [{_fmt_num(float(lo))}, {_fmt_num(float(hi))}]"
    elif lo is not None or hi is not None:
        text += f" [{_fmt_num(lo)}, {_fmt_num(hi)}]"
    if v.get("n") is not None:
        text += f" (n={v['n']})"
    if v.get("unit"):
        text += f" {v['unit']}"
    return text


def format_seeds(seeds: list[Any] | None) -> str:
    if not seeds:
        return "—"
    if len(seeds) <= 5:
        return ",".join(str(s) for s in seeds)
    return f"{len(seeds)} seeds ({seeds[0]}..{seeds[-1]})"


def shorten(text: str, width: int = 110) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def build_rows(
    results: Iterable[ClaimTestResult],
    claims: Mapping[str, Any],
    default_scale: str | None = None,
) -> list[dict[str, Any]]:
    """One row per claim test, then one ``not run`` row per registered claim without a test.

    Every row's ``figure`` is None: the session sets it for the figures it draws
    (:func:`titans.reporting.figures.draw_report_figures`) before the report is written."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()

    for r in sorted(results, key=lambda r: (r.claim_id, r.nodeid)):
        seen.add(r.claim_id)
        c = claims.get(r.claim_id)
        row = r.to_dict()
        row.update(
            measured=format_value(r.primary),
            threshold=getattr(c, "threshold_text", "?"),
            statement=getattr(c, "statement", "(not in registry)"),
            kind=getattr(c, "kind", None),
            origin=getattr(c, "origin", None),
            registered=getattr(c, "registered", None) or None,
            figure=None,
            scale=r.scale or default_scale,
            amendments=[a.to_dict() for a in getattr(c, "amendments", ())],
        )
        rows.append(row)
    for claim_id, c in claims.items():
        if claim_id in seen:
            continue
        rows.append(
            {
                "nodeid": c.test,
                "claim_id": claim_id,
                "verdict": NOT_RUN,
                "outcome": None,
                "reason": "",
                "scale": default_scale,
                "measured": "—",
                "threshold": c.threshold_text,
                "statement": c.statement,
                "kind": c.kind,
                "origin": getattr(c, "origin", None),
                "registered": getattr(c, "registered", None) or None,
                "amendments": [a.to_dict() for a in getattr(c, "amendments", ())],
                "figure": None,
                "values": [],
                "seeds": None,
                "curves": [],
                "notes": [],
            }
        )
    return rows


def count_verdicts(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Rows per verdict (every verdict of ``VERDICTS``, zeros included)."""
    counts = {v: 0 for v in VERDICTS}
    for row in rows:
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    return counts


def is_sanity(row: Mapping[str, Any]) -> bool:
    """Whether ``row`` is a sanity check (registry kind ``sanity``) rather than a claim."""
    return row.get("kind") == SANITY_KIND


def split_rows(rows: Iterable[Mapping[str, Any]]) -> tuple[list, list]:
    """``(claim rows, sanity rows)``, each in the given order."""
    rows = list(rows)
    return [r for r in rows if not is_sanity(r)], [r for r in rows if is_sanity(r)]


def _counts_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k}: {n}" for k, n in counts.items() if n) or "none"


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|") if text not in (None, "") else ""


_MD_COLUMNS = ["Test", "Verdict", "Measured", "Threshold", "Scale", "Seeds", "Statement", "Figure", "Reason"]


def _md_table(rows: list[dict[str, Any]], first: list[str],
              cells: Callable[[dict[str, Any]], list[str]]) -> list[str]:
    """A markdown table of ``rows``: the ``first`` columns filled by ``cells(row)``, then the rest."""
    header = first + _MD_COLUMNS
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        verdict = row["verdict"]
        shown_verdict = f"**{verdict}**" if verdict in (NOT_REPRODUCED, ERROR, XPASSED) else verdict
        fig = f"[figure]({row['figure']})" if row.get("figure") else ""
        lines.append(
            "| "
            + " | ".join(
                cells(row)
                + [
                    f"`{_cell(row['nodeid'])}`",
                    shown_verdict,
                    _cell(row["measured"]),
                    _cell(row["threshold"]),
                    _cell(row.get("scale") or ""),
                    _cell(format_seeds(row.get("seeds")) if verdict != NOT_RUN else ""),
                    _cell(shorten(row["statement"])),
                    fig,
                    _cell(row.get("reason") or ""),
                ]
            )
            + " |"
        )
    return lines


def _render_amendments(rows: list[dict[str, Any]]) -> list[str]:
    """``## Amendments``: per amended claim its origin and registration date, then every amendment."""
    amended: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row.get("amendments") and row["claim_id"] not in amended:
            amended[row["claim_id"]] = row
    if not amended:
        return []
    lines = ["", "## Amendments", "",
             "Registered claims changed after registration, oldest first: when, what changed, why, and "
             "what the rule in force before had measured.", ""]
    for claim_id, row in amended.items():
        head = [f"`{claim_id}`"]
        if row.get("origin"):
            head.append(f"origin {row['origin']}" + (" (sanity check)" if is_sanity(row) else ""))
        head.append(f"registered {row.get('registered') or 'unknown'}")
        lines.append("- " + " · ".join(head))
        for a in row["amendments"]:
            lines.append(f"  - {a['date']}: {_cell(a['what'])} *Why:* {_cell(a['why'])} "
                         f"*Before:* {_cell(a['before'])}")
    return lines


def render_markdown(rows: list[dict[str, Any]], meta: Mapping[str, Any]) -> str:
    claim_rows, sanity_rows = split_rows(rows)
    lines = [
        "# Titans claims report",
        "",
        f"Generated {meta.get('generated', '')} · scale `{meta.get('scale', '')}` · "
        f"pytest exit status {meta.get('exitstatus', '')}",
        "",
    ]
    env = meta.get("environment") or {}
    if env:
        lines.append("Environment: " + ", ".join(f"{k} `{v}`" for k, v in env.items()))
        lines.append("")
    seeds = meta.get("seeds") or {}
    if seeds.get("source") == "--seeds":
        lines += [f"Seeds: `--seeds {','.join(map(str, seeds.get('seeds', [])))}` replaced the registered seeds "
                  f"of {len(seeds.get('claims') or [])} claims in this run.", ""]
    elif seeds:
        lines += ["Seeds: as registered.", ""]
    lines.append("Claims: " + _counts_text(count_verdicts(claim_rows)))
    if sanity_rows:
        lines.append("")
        lines.append("Sanity checks (counted apart): " + _counts_text(count_verdicts(sanity_rows)))
    lines += [
        "",
        "Decision rule: a claim measured on a sample (seeds, rounds) is *supported* when the 95% "
        "interval of its mean lies on the threshold's side, *not reproduced* when it lies wholly on the "
        "other side (expected failures are `xfail(strict=True)` with their mechanism), "
        "*inconclusive* otherwise, or when a compared model did not learn (its learning control "
        "failed) or a memory stored nothing; a deterministic quantity (bytes, a structural check) is "
        "compared directly. *error* = "
        "the test crashed; *not run* = registered in `claims/registry.py` but not executed in this "
        "session. Origin: *paper* = a claim of the paper or its tables, *seed* = the project's "
        "failure cases and reviewer prompts, *harness* = the harness's own controls.",
        "",
    ]
    lines += _md_table(claim_rows, ["Claim", "Origin"],
                       lambda row: [f"`{row['claim_id']}`", _cell(row.get("origin") or "")])
    if sanity_rows:
        lines += ["", "## Sanity checks", "",
                  "Structural checks of the implementation (they can only fail on a bug), listed and "
                  "counted apart from the claims.", ""]
        lines += _md_table(sanity_rows, ["Check"], lambda row: [f"`{row['claim_id']}`"])
    lines += _render_amendments(rows)
    notes = [(row["claim_id"], row["nodeid"], n) for row in rows for n in row.get("notes") or []]
    if notes:
        lines += ["", "## Notes", ""]
        lines += [f"- `{cid}` (`{nodeid}`): {_cell(n)}" for cid, nodeid, n in notes]
    lines += _render_figures(rows, meta)
    lines.append("")
    return "\n".join(lines)


def _render_figures(rows: list[dict[str, Any]], meta: Mapping[str, Any]) -> list[str]:
    """Each claim's figure under its verdicts (``## Figures``), then ``meta["extra_figures"]``."""
    by_claim: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("figure"):
            by_claim.setdefault(row["claim_id"], []).append(row)
    extra = extra_figures(meta)
    if not by_claim and not extra:
        return []
    lines = ["", "## Figures", ""]
    for cid, claim_rows in by_claim.items():
        lines += [f"### `{cid}`", ""]
        if claim_rows[0].get("statement"):
            lines += [_cell(claim_rows[0]["statement"]), ""]
        for row in claim_rows:
            test = row["nodeid"].split("::", 1)[-1] if row["verdict"] != NOT_RUN else row["nodeid"]
            lines.append(
                f"- **{row['verdict']}** · {_cell(row['measured'])} (threshold {_cell(row['threshold'])})"
                f" · `{_cell(test)}`"
            )
        lines += ["", f"![{cid}]({claim_rows[0]['figure']})", ""]
    for title, path in extra:
        lines += [f"### {title}", "", f"![{title}]({path})", ""]
    return lines


def extra_figures(meta: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``meta["extra_figures"]`` (figures that belong to no claim) as ``[(title, path)]``; entries
    may be ``(title, path)`` pairs or ``{"title", "path"}`` (as ``claims.json`` holds them)."""
    out = []
    for e in meta.get("extra_figures") or []:
        title, path = (e.get("title"), e.get("path")) if isinstance(e, Mapping) else e
        out.append((str(title), str(path)))
    return out


# meta keys of claims.json that the report computes itself (the rest is the session's meta)
_DOC_KEYS = ("schema", "counts", "sanity_counts", "results", "not_run", "claims", "figures", "extra_figures")


def json_doc(rows: list[dict[str, Any]], meta: Mapping[str, Any], claims: Mapping[str, Any]) -> dict[str, Any]:
    """The ``claims.json`` document: ``meta``, the verdict counts, the rows that ran, the ids not
    run, the registry (``claims``: :class:`claims.registry.Claim` objects or their dicts), and the
    figures the report links: ``figures`` ``{claim id: path}`` (the rows' ``figure``) and
    ``extra_figures`` ``[{"title", "path"}]``."""
    claim_rows, sanity_rows = split_rows(rows)
    return {
        "schema": 1,
        **to_jsonable({k: v for k, v in meta.items() if k not in _DOC_KEYS}),
        "counts": count_verdicts(claim_rows),
        "sanity_counts": count_verdicts(sanity_rows),
        "results": [to_jsonable(r) for r in rows if r["verdict"] != NOT_RUN],
        "not_run": [r["claim_id"] for r in rows if r["verdict"] == NOT_RUN],
        "claims": {cid: to_jsonable(c.to_dict() if hasattr(c, "to_dict") else dict(c)) for cid, c in claims.items()},
        "figures": {r["claim_id"]: r["figure"] for r in rows if r.get("figure")},
        "extra_figures": [{"title": t, "path": p} for t, p in extra_figures(meta)],
    }


def render_json(rows: list[dict[str, Any]], meta: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    return json.dumps(json_doc(rows, meta, claims), indent=2, allow_nan=False) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(report_dir: str | os.PathLike, rows: list[dict[str, Any]], meta: Mapping[str, Any],
                 claims: Mapping[str, Any]) -> list[Path]:
    """Write ``claims.md`` and ``claims.json`` into ``report_dir``, once each; returns their paths.
    The figures they link are the rows' ``figure`` fields and ``meta["extra_figures"]``."""
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "claims.md", out / "claims.json"
    _write_atomic(md, render_markdown(rows, meta))
    _write_atomic(js, render_json(rows, meta, claims))
    return [md, js]


def rows_from_doc(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The report rows of a ``claims.json`` document (the inverse of :func:`json_doc`): its results,
    then a ``not run`` row per id of ``not_run`` from the registry copy."""
    rows = [dict(r) for r in doc.get("results") or []]
    claims = doc.get("claims") or {}
    for cid in doc.get("not_run") or []:
        c = claims.get(cid, {})
        rows.append({
            "nodeid": c.get("test", ""), "claim_id": cid, "verdict": NOT_RUN, "outcome": None, "reason": "",
            "scale": doc.get("scale"), "measured": "—", "threshold": c.get("threshold_text", "?"),
            "statement": c.get("statement", ""), "kind": c.get("kind"), "origin": c.get("origin"),
            "registered": c.get("registered") or None, "amendments": list(c.get("amendments") or []),
            "figure": None, "values": [], "seeds": None, "curves": [], "notes": [],
        })
    return rows


def meta_from_doc(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The session meta of a ``claims.json`` document (generated, scale, command, ...) with its
    ``extra_figures``."""
    meta = {k: v for k, v in doc.items() if k not in _DOC_KEYS}
    meta["extra_figures"] = extra_figures(doc)
    return meta


def _terminal_table(ran: list[dict[str, Any]], name: str, origin: bool) -> list[str]:
    """The run rows as aligned columns (verdict, [origin,] id, measured, threshold, test)."""
    if not ran:
        return []
    vw = max(len("verdict"), *(len(r["verdict"]) for r in ran))
    ow = max(len("origin"), *(len(r.get("origin") or "") for r in ran)) if origin else 0
    cw = max(len(name), *(len(r["claim_id"]) for r in ran))
    mw = min(40, max(len("measured"), *(len(r["measured"]) for r in ran)))
    tw = max(len("threshold"), *(len(r["threshold"]) for r in ran))

    def line(verdict: str, org: str, cid: str, measured: str, threshold: str, test: str) -> str:
        org = f"{org:<{ow}}  " if origin else ""
        return f"{verdict:<{vw}}  {org}{cid:<{cw}}  {measured:<{mw}}  {threshold:<{tw}}  {test}"

    lines = [line("verdict", "origin", name, "measured", "threshold", "test")]
    for r in ran:
        test = r["nodeid"].split("::", 1)[-1]
        lines.append(line(r["verdict"], r.get("origin") or "", r["claim_id"], shorten(r["measured"], mw),
                          r["threshold"], test))
        if r["verdict"] in (NOT_REPRODUCED, ERROR, XPASSED) and r.get("reason"):
            lines.append(" " * (vw + 2) + "-> " + " ".join(str(r["reason"]).split()))
    return lines


def render_terminal(rows: list[dict[str, Any]]) -> list[str]:
    """Lines for the terminal summary: the run claim tests as a table with their counts and the
    not-run ids, then the sanity checks the same way."""
    claim_rows, sanity_rows = split_rows(rows)
    lines: list[str] = []
    for part, name, label in ((claim_rows, "claim", "claims"), (sanity_rows, "check", "sanity checks")):
        if not part:
            continue
        ran = [r for r in part if r["verdict"] != NOT_RUN]
        not_run = [r["claim_id"] for r in part if r["verdict"] == NOT_RUN]
        if label != "claims":
            lines.append(f"{label} (structural, counted apart from the claims):")
        lines += _terminal_table(ran, name, origin=label == "claims")
        counts = count_verdicts(part)
        lines.append(f"{label}: " + (", ".join(f"{n} {k}" for k, n in counts.items() if n) or "none"))
        if not_run:
            prefix = "not run" if label == "claims" else f"{label} not run"
            lines.append(f"{prefix} ({len(not_run)}): " + ", ".join(not_run))
    ran = [r for r in rows if r["verdict"] != NOT_RUN]
    silent = [r["nodeid"] for r in ran if r["verdict"] == SUPPORTED and not r.get("values")]
    if silent:
        lines.append(f"WARNING: {len(silent)} supported claim test(s) recorded no measured value: " + ", ".join(silent))
    return lines
