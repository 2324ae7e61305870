"""Shared benchmark helper: tokens/s and peak memory per call, recorded in pytest-benchmark's
``extra_info`` and in a session table so that ratios between lengths are computed in one run."""

from __future__ import annotations

import platform

import mlx.core as mx
import pytest

from titans import blas_info


class ThroughputTable:
    """``(group, name, seq_len) -> tokens/s`` measured in this session."""

    def __init__(self):
        self.rows: dict[tuple[str, str, int], dict] = {}

    def get(self, group: str, name: str, seq_len: int) -> dict:
        key = (group, name, seq_len)
        if key not in self.rows:
            pytest.skip(f"{group}/{name} at {seq_len} was not measured in this session")
        return self.rows[key]


@pytest.fixture(scope="session")
def throughput_table():
    return ThroughputTable()


@pytest.fixture
def measure(benchmark, throughput_table):
    """``measure(fn, tokens, group=, name=, seq_len=, rounds=)``: benchmark ``fn`` (which must
    evaluate its outputs) and record tokens/s (from the minimum round) and peak memory."""

    def run(fn, tokens: int, *, group: str, name: str, seq_len: int, rounds: int = 3, **info):
        fn()  # warm-up: compiles, allocates
        mx.reset_peak_memory()
        benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=0)
        peak = mx.get_peak_memory()
        stats = benchmark.stats.stats if benchmark.stats is not None else None
        seconds = stats.min if stats is not None else float("nan")
        row = dict(
            tokens_per_s=tokens / seconds,
            seconds=seconds,
            peak_memory_bytes=peak,
            seq_len=seq_len,
            model=name,
            blas=blas_info()["blas"],
            device=str(mx.default_device()),
            mlx_version=mx.__version__,
            machine=platform.machine(),
            **info,
        )
        benchmark.extra_info.update(row)
        throughput_table.rows[(group, name, seq_len)] = row
        return row

    return run
