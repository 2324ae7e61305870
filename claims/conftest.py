"""Shared benchmark helper: tokens/s and peak memory per call, recorded in pytest-benchmark's
``extra_info`` and in a session table so that ratios between lengths are computed in one run.

Timings are wall clock (``time.perf_counter``) per call, taken by the helper itself as well as by
pytest-benchmark, so that a run with ``--benchmark-disable`` (one call, no statistics) still
yields a number. Throughput uses the **minimum** over rounds: on a shared CPU, noise only adds
time. Peak memory is MLX's allocator peak (``mx.get_peak_memory``) over the measured rounds; it
counts what is resident when the measurement starts (parameters, inputs), which is recorded
separately as ``resident_bytes``.
"""

from __future__ import annotations

import gc
import platform
import statistics
import time

import mlx.core as mx
import pytest

from titans import blas_info, configure_allocator
from titans._cache import cache_limit


def pytest_addoption(parser):
    parser.getgroup("titans-claims").addoption(
        "--smoke-grid", action="store_true", default=False,
        help="run the trained tier's protocols of the active --scale on a smoke grid (2 steps per run, "
        "batch 4, 2 evaluation examples, 2 seeds; claims.training.smoke_grid): checks that they run end "
        "to end; every trained claim is then skipped with a 'smoke grid' reason instead of a verdict.",
    )


def pytest_configure(config):
    """The claims session is an entry point: it sets MLX's allocator policy (``titans._cache``)."""
    configure_allocator()


class ThroughputTable:
    """``(group, name, seq_len) -> row`` (tokens/s, seconds, peak memory, ...) measured in this
    session; claim tests compute their ratios from it."""

    def __init__(self):
        self.rows: dict[tuple[str, str, int], dict] = {}

    def get(self, group: str, name: str, seq_len: int) -> dict:
        key = (group, name, seq_len)
        if key not in self.rows:
            pytest.skip(f"{group}/{name} at {seq_len} was not measured in this session "
                        "(run the benchmarks of claims/test_throughput.py in the same session)")
        return self.rows[key]

    def lengths(self, group: str, name: str) -> list[int]:
        return sorted(L for g, n, L in self.rows if g == group and n == name)


@pytest.fixture(scope="session")
def throughput_table():
    return ThroughputTable()


@pytest.fixture
def measure(benchmark, throughput_table):
    """``measure(fn, tokens, group=, name=, seq_len=, rounds=3, warmup=True, setup=None, **info)``:
    benchmark ``fn`` (which must evaluate its outputs) and record tokens/s (from the minimum round)
    and peak memory. ``warmup`` runs ``fn`` once untimed first (compilation, allocation); for calls
    that take seconds pass ``warmup=False`` and ``rounds >= 2`` instead (the minimum discards the
    first). ``setup`` runs before every round, outside the timing (pytest-benchmark's ``setup``):
    used to time a paired reference call right before each round."""

    def run(fn, tokens: int, *, group: str, name: str, seq_len: int, rounds: int = 3,
            warmup: bool = True, setup=None, **info):
        times: list[float] = []

        def timed():
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)

        gc.collect()
        mx.clear_cache()
        if warmup:
            fn()
        resident = mx.get_active_memory()
        mx.reset_peak_memory()
        benchmark.group = f"{group} L={seq_len}"
        benchmark.pedantic(timed, setup=setup, rounds=rounds, iterations=1, warmup_rounds=0)
        peak = mx.get_peak_memory()
        seconds = min(times)
        row = dict(
            tokens_per_s=tokens / seconds,
            seconds=seconds,
            seconds_median=statistics.median(times),
            round_seconds=[round(t, 6) for t in times],
            peak_memory_bytes=peak,
            resident_bytes=resident,
            working_memory_bytes=peak - resident,
            seq_len=seq_len,
            model=name,
            blas=blas_info()["blas"],
            mlx_cache_limit=cache_limit(),
            device=str(mx.default_device()),
            mlx_version=mx.__version__,
            machine=platform.machine(),
            **info,
        )
        benchmark.extra_info.update(row)
        throughput_table.rows[(group, name, seq_len)] = row
        return row

    return run
