"""pytest plugin: claim markers, ``--scale``, the ``claim_record`` fixture and the claims report.

Loaded by the top-level ``conftest.py`` (``pytest_plugins = ["titans.reporting.plugin"]``), or with
``-p titans.reporting.plugin``.

Options
    ``--scale {ci,full}``        problem sizes (default ``ci``); fixture ``scale`` returns it. Tests
                                 marked ``slow`` are skipped at ``ci``. A test marked
                                 ``not_reproduced(scale, reason=...)`` becomes a strict xfail
                                 (on AssertionError) at that scale only: a claim measured not to
                                 reproduce at CI scale stays an open question at full scale. The
                                 reason names the mechanism only; the report appends the run's
                                 own measured message to it.
    ``--claims-report-dir DIR``  where ``claims.md`` / ``claims.json`` go (default ``reports``,
                                 relative to the rootdir).
    ``--seeds 3,4,5``            run every claim that takes seeds on these instead: at configure
                                 time (before collection) the ``"seeds"`` entry of the active
                                 scale of every registered claim that has one is replaced, in the
                                 registry's own ``CLAIMS`` dict, so tests that read
                                 ``CLAIMS[id].scales[scale]["seeds"]`` or ``claim.scales[...]`` see
                                 the same list. Distinct non-negative integers; the report's meta
                                 records them (``seeds``).
    ini ``claims_registry``      module holding ``CLAIMS`` (default ``claims.registry``).

Fixtures
    ``scale``         session: ``"ci"`` or ``"full"``.
    ``claim``         the registry entry (:class:`claims.registry.Claim`) of the test's
                      ``@pytest.mark.claim(id)``.
    ``claim_record``  a :class:`titans.reporting.report.ClaimRecord`: ``.value()``, ``.seeds()``,
                      ``.curve()``, ``.note()``; records travel as user properties.
    ``report_figure`` ``report_figure(title, stem, draw)``: a figure that is not a claim's curves
                      (a heatmap): ``draw()`` returns a matplotlib figure, written to
                      ``<report dir>/figures/<stem>.png`` and linked from ``claims.md`` under
                      ``title`` (nothing is drawn without matplotlib; returns the path or None).
                      The link is collected in the process that writes the report: under
                      pytest-xdist a worker's figure is written but not linked.

Exceptions
    A failed ``assert`` (or ``pytest.fail``) is a verdict: *not reproduced*. Any other exception is
    an *error*, and a :class:`titans.reporting.verdicts.SanityError` (a failed check of the harness
    itself) is never taken for an expected failure, whatever xfail marker the test carries.

At the end of the session (on the xdist controller, or the only process), provided at least one
claim test ran: first, when matplotlib is importable, ``figures/<claim-id>.png`` are drawn for the
claims that recorded curves in this session and the other claims' PNGs removed
(:mod:`titans.reporting.figures`); then ``claims.md`` and ``claims.json`` are written, once each,
linking exactly those figures. The same table is printed in the terminal summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import difflib
import importlib
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from titans.reporting import figures as _figures
from titans.reporting import report as _report
from titans.reporting.report import ClaimRecord
from titans.reporting.verdicts import SanityError

REPORTER_NAME = "titans-claims-reporter"
SCALES = ("ci", "full")
_registry_key = pytest.StashKey[Any]()
_seeds_key = pytest.StashKey[Any]()
_extra_figures_key = pytest.StashKey[list]()


# --------------------------------------------------------------------------------------------
# Options, markers, registry
# --------------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("titans-claims", "Titans claims")
    group.addoption(
        "--scale",
        action="store",
        default="ci",
        choices=SCALES,
        help="problem sizes for claim tests: ci (minutes on a laptop CPU, default) or full.",
    )
    group.addoption(
        "--claims-report-dir",
        action="store",
        default="reports",
        help="directory for claims.md / claims.json (relative to the rootdir; default: reports).",
    )
    group.addoption(
        "--seeds",
        action="store",
        default=None,
        type=parse_seeds,
        metavar="S1,S2,...",
        help="run every claim that takes seeds on these (comma-separated distinct non-negative "
        "integers) instead of the registry's seeds for the active --scale.",
    )
    parser.addini(
        "claims_registry",
        "module that defines CLAIMS, a dict of claim id -> Claim (default: claims.registry)",
        default="claims.registry",
    )


def parse_seeds(text: str) -> list[int]:
    """``"3,4,5"`` -> ``[3, 4, 5]``; anything but distinct non-negative integers is an error."""
    parts = [p.strip() for p in str(text).split(",")]
    if not all(parts):
        raise argparse.ArgumentTypeError(f"--seeds wants comma-separated non-negative integers, got {text!r}")
    bad = [p for p in parts if not (p.isascii() and p.isdigit())]
    if bad:
        raise argparse.ArgumentTypeError(
            f"--seeds wants comma-separated non-negative integers, got {text!r} ({', '.join(map(repr, bad))})"
        )
    seeds = [int(p) for p in parts]
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(
            f"--seeds must not repeat a seed (repeated: {', '.join(map(str, repeated))}): a repeated seed "
            "repeats its sample and narrows the interval for nothing"
        )
    return seeds


def _registry_module(config: pytest.Config) -> Any:
    name = config.getini("claims_registry")
    try:
        return importlib.import_module(name)
    except Exception as err:  # noqa: BLE001 - reported as a usage problem
        raise pytest.UsageError(f"cannot load the claims registry {name!r}: {type(err).__name__}: {err}") from err


def override_seeds(config: pytest.Config, seeds: list[int]) -> list[str]:
    """Replace, in the registry module's ``CLAIMS``, the ``"seeds"`` of the active scale of every
    claim that has them by ``seeds``; returns the ids replaced."""
    scale = config.getoption("scale")
    module = _registry_module(config)
    claims = module.CLAIMS
    replaced = []
    for cid, claim in list(claims.items()):
        params = claim.scales.get(scale)
        if params is None or "seeds" not in params:
            continue
        scales = {k: dict(v) for k, v in claim.scales.items()}
        scales[scale]["seeds"] = list(seeds)
        try:
            claims[cid] = dataclasses.replace(claim, scales=scales)
        except TypeError as err:
            raise pytest.UsageError(f"--seeds: cannot replace the seeds of {cid!r} in the claims registry "
                                    f"({type(err).__name__}: {err})") from err
        replaced.append(cid)
    config.stash[_registry_key] = None  # load_claims copies the updated dict
    return replaced


def _declared_markers(config: pytest.Config) -> set[str]:
    return {line.split(":", 1)[0].split("(", 1)[0].strip() for line in config.getini("markers")}


def pytest_configure(config: pytest.Config) -> None:
    declared = _declared_markers(config)
    if "claim" not in declared:
        config.addinivalue_line("markers", "claim(id): the test checks the registered claim with this id")
    if "slow" not in declared:
        config.addinivalue_line("markers", "slow: long-running; runs only with --scale=full")
    if "not_reproduced" not in declared:
        config.addinivalue_line("markers", "not_reproduced(scale, reason): measured not to reproduce at "
                                "that scale (strict xfail there; the reason names the mechanism, the report "
                                "appends the run's own numbers)")
    seeds = config.getoption("seeds", None)
    if seeds is not None:
        config.stash[_seeds_key] = (list(seeds), override_seeds(config, seeds))
    config.pluginmanager.register(ClaimsSession(config), REPORTER_NAME)


def load_claims(config: pytest.Config) -> dict[str, Any]:
    """The registry's ``CLAIMS`` (imported once per session; module from ini ``claims_registry``)."""
    cached = config.stash.get(_registry_key, None)
    if cached is not None:
        return cached
    module = _registry_module(config)
    try:
        claims = dict(module.CLAIMS)
    except Exception as err:  # noqa: BLE001 - reported as a usage problem
        name = config.getini("claims_registry")
        raise pytest.UsageError(f"cannot load the claims registry {name!r}: {type(err).__name__}: {err}") from err
    config.stash[_registry_key] = claims
    return claims


def _claim_id(marker: pytest.Mark) -> Any:
    if marker.args and not marker.kwargs:
        return marker.args[0] if len(marker.args) == 1 else None
    if not marker.args and set(marker.kwargs) == {"id"}:
        return marker.kwargs["id"]
    return None


def _marker_problem(item: pytest.Item, claims: dict[str, Any]) -> str | None:
    for marker in item.iter_markers("claim"):
        cid = _claim_id(marker)
        if not isinstance(cid, str):
            return (
                f"{item.nodeid}: @pytest.mark.claim needs exactly one claim id string, "
                f"got args={marker.args!r} kwargs={marker.kwargs!r}"
            )
        if cid not in claims:
            close = difflib.get_close_matches(cid, list(claims), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            return f"{item.nodeid}: unknown claim id {cid!r} (not in the claims registry){hint}"
    return None


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """Turn a claim marker with an unregistered id into a collection error of its module."""
    rep = yield
    if rep.passed and rep.result:
        items = [n for n in rep.result if isinstance(n, pytest.Item) and n.get_closest_marker("claim")]
        if items:
            try:
                claims = load_claims(collector.config)
            except pytest.UsageError as err:
                problems = [str(err)]
            else:
                problems = [p for p in (_marker_problem(i, claims) for i in items) if p]
            if problems:
                rep.outcome = "failed"
                rep.longrepr = "claim marker error:\n" + "\n".join(problems)
                rep.result = []
    return rep


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    scale = config.getoption("scale")
    skip_slow = pytest.mark.skip(reason="slow: runs with --scale=full")
    for item in items:
        if scale == "ci" and item.get_closest_marker("slow") is not None:
            item.add_marker(skip_slow)
        for mark in item.iter_markers("not_reproduced"):
            if (mark.args[0] if mark.args else "ci") == scale:
                item.add_marker(pytest.mark.xfail(strict=True, raises=AssertionError, reason=mark.kwargs["reason"]))
        marker = item.get_closest_marker("claim")
        if marker is not None:
            item.user_properties.append((_report.P_ID, _claim_id(marker)))
            item.user_properties.append((_report.P_SCALE, scale))


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def scale(pytestconfig: pytest.Config) -> str:
    """``"ci"`` (default) or ``"full"``, from ``--scale``."""
    return pytestconfig.getoption("scale")


@pytest.fixture
def claim(request: pytest.FixtureRequest) -> Any:
    """The registry entry of this test's ``@pytest.mark.claim(id)``."""
    marker = request.node.get_closest_marker("claim")
    if marker is None:
        pytest.fail("the claim / claim_record fixtures need @pytest.mark.claim('<id>') on the test", pytrace=False)
    return load_claims(request.config)[_claim_id(marker)]


@pytest.fixture
def claim_record(claim: Any, record_property) -> ClaimRecord:
    """Record measured values, seeds, curves and notes for the claim report."""
    return ClaimRecord(claim.id, record_property, claim)


@pytest.fixture
def report_figure(request: pytest.FixtureRequest):
    """``report_figure(title, stem, draw)``: draw a figure that is not a claim's curves into the
    report's figure folder and link it from the report (see the module doc)."""
    config = request.config

    def write(title: str, stem: str, draw) -> Path | None:
        if not isinstance(title, str) or not title.strip() or "\n" in title:
            raise ValueError(f"title must be a non-empty one-line string, got {title!r}")
        if not isinstance(stem, str) or not stem or "/" in stem or stem.startswith("."):
            raise ValueError(f"stem must be a plain file name without extension, got {stem!r}")
        if stem in load_claims(config):
            raise ValueError(f"stem {stem!r} is a claim id: that file holds the claim's own figure")
        if not callable(draw):
            raise TypeError(f"draw must be a callable that returns a matplotlib figure, got {type(draw).__name__}")
        if not _figures.matplotlib_available():
            return None
        figure = draw()
        import matplotlib.figure

        if not isinstance(figure, matplotlib.figure.Figure):
            raise TypeError(f"draw must return a matplotlib Figure, got {type(figure).__name__}")
        report_dir = Path(config.getoption("claims_report_dir"))
        report_dir = report_dir if report_dir.is_absolute() else config.rootpath / report_dir
        path = report_dir / _figures.FIGURE_DIR / f"{stem}.png"
        _figures.figure_to_png(figure, path)
        entries = config.stash.setdefault(_extra_figures_key, [])
        entries[:] = [e for e in entries if e[1] != f"{_figures.FIGURE_DIR}/{path.name}"]
        entries.append((str(title), f"{_figures.FIGURE_DIR}/{path.name}"))
        return path

    return write


# --------------------------------------------------------------------------------------------
# Exceptions: tell assertion failures (not reproduced) from crashes (error)
# --------------------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    rep = yield
    excinfo = call.excinfo
    if excinfo is not None and excinfo.errisinstance(SanityError) and hasattr(rep, "wasxfail"):
        # a broken harness is never an expected failure (a plain xfail without raises= caught it)
        del rep.wasxfail
        rep.outcome = "failed"
    if excinfo is not None and item.get_closest_marker("claim") is not None:
        if not excinfo.errisinstance(pytest.skip.Exception):
            # pytest.fail / pytest.xfail are deliberate verdicts, like a failed assert.
            deliberate = excinfo.errisinstance((AssertionError, pytest.fail.Exception))
            rep.user_properties.append(
                (
                    _report.P_EXCEPTION,
                    _report.encode(
                        {
                            "when": call.when,
                            "type": excinfo.type.__name__,
                            "assertion": bool(deliberate),
                            "message": _report.shorten(str(excinfo.value), 500),
                        }
                    ),
                )
            )
    return rep


# --------------------------------------------------------------------------------------------
# Machine info (pytest-benchmark) and the report header
# --------------------------------------------------------------------------------------------


def collect_machine_info() -> dict[str, Any]:
    """MLX version, BLAS, default device, CPU counts, Python and platform."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    if hasattr(os, "sched_getaffinity"):
        info["cpu_affinity"] = len(os.sched_getaffinity(0))
    try:
        from titans import blas_info
        from titans._cache import cache_limit

        blas = blas_info()
        info["blas"], info["blas_path"] = blas.get("blas"), blas.get("path")
        info["mlx_cache_limit"] = cache_limit()
    except Exception as err:  # noqa: BLE001 - informational only
        info["blas"] = f"unknown ({type(err).__name__})"
    try:
        import mlx.core as mx

        info["mlx"] = getattr(mx, "__version__", "unknown")
        info["mlx_default_device"] = str(mx.default_device())
    except Exception as err:  # noqa: BLE001
        info["mlx"] = f"unavailable ({type(err).__name__})"
    return info


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    mine = collect_machine_info()
    machine_info.update(
        {
            "mlx_version": mine.get("mlx"),
            "mlx_default_device": mine.get("mlx_default_device"),
            "blas": mine.get("blas"),
            "blas_path": mine.get("blas_path"),
            "cpu_count": mine.get("cpu_count"),
            "cpu_affinity": mine.get("cpu_affinity"),
        }
    )


def _git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


# --------------------------------------------------------------------------------------------
# Session: collect reports, write the report, print the summary
# --------------------------------------------------------------------------------------------


def _draw_figures(report_dir: Path, rows: list[dict[str, Any]]) -> str:
    """``figures/<claim-id>.png`` for the claims with curves in ``rows`` (when matplotlib is
    importable), each row's ``figure`` set to its figure drawn now; a figure failure never fails
    the session (the rows then link no figure)."""
    try:
        return _figures.draw_report_figures(report_dir, rows)
    except Exception as err:  # noqa: BLE001 - reported in the terminal summary
        for row in rows:
            row["figure"] = None
        return f"figures: not drawn ({type(err).__name__}: {_report.shorten(str(err), 200)})"


class ClaimsSession:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.collector = _report.ResultCollector()
        self.rows: list[dict[str, Any]] | None = None
        self.written: list[Path] = []
        self.exitstatus: Any = None
        self.figures_note: str | None = None

    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    @property
    def report_dir(self) -> Path:
        path = Path(self.config.getoption("claims_report_dir"))
        return path if path.is_absolute() else self.config.rootpath / path

    def seeds_meta(self) -> dict[str, Any]:
        """Which seeds ran: the registry's, or those of ``--seeds`` and the claims they replaced."""
        override = self.config.stash.get(_seeds_key, None)
        if override is None:
            return {"source": "registry"}
        seeds, replaced = override
        return {"source": "--seeds", "seeds": seeds, "claims": replaced}

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Collect claim reports; after the last phase, record the row's verdict (``claim_verdict``:
        supported, not reproduced, inconclusive, ...) as a property, before JUnit XML reads them."""
        result = self.collector.add(report)
        if result is not None and report.when == "teardown":
            report.user_properties.append((_report.P_VERDICT, result.verdict))

    def _finalize(self) -> list[dict[str, Any]]:
        if self.rows is None:
            claims = load_claims(self.config) if len(self.collector) else {}
            self.rows = _report.build_rows(
                self.collector.results.values(),
                claims,
                default_scale=self.config.getoption("scale"),
            )
        return self.rows

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: Any) -> None:
        if self.is_worker or not len(self.collector):
            return
        self.exitstatus = int(exitstatus)
        rows = self._finalize()
        claims = load_claims(self.config)
        meta = {
            "generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "scale": self.config.getoption("scale"),
            "exitstatus": self.exitstatus,
            "git_commit": _git_commit(self.config.rootpath),
            "command": " ".join(sys.argv),
            "seeds": self.seeds_meta(),
            "environment": collect_machine_info(),
            "extra_figures": list(self.config.stash.get(_extra_figures_key, [])),
        }
        out = self.report_dir
        out.mkdir(parents=True, exist_ok=True)
        self.figures_note = _draw_figures(out, rows)  # first: the report links this session's figures
        self.written = _report.write_report(out, rows, meta, claims)

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config) -> None:
        if self.is_worker:
            return
        if not len(self.collector):
            return
        terminalreporter.write_sep("=", "claims report")
        for line in _report.render_terminal(self._finalize()):
            terminalreporter.write_line(line)
        seeds = self.seeds_meta()
        if seeds["source"] == "--seeds":
            terminalreporter.write_line(f"seeds {','.join(map(str, seeds['seeds']))} (--seeds) in place of the "
                                        f"registry's, for {len(seeds['claims'])} claim(s)")
        for path in self.written:
            terminalreporter.write_line(f"written: {path}")
        if self.figures_note:
            terminalreporter.write_line(self.figures_note)
