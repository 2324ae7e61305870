"""MLX's fp32 matmul keeps up with numpy's in the same run: the check that ``import titans`` loaded
an optimized BLAS for MLX (an implementation target, timed side by side, not a claim)."""

from __future__ import annotations

import time

import titans  # noqa: F401  (BLAS before mlx)
import mlx.core as mx

BLAS_TARGET = 0.8  # MLX GFLOP/s / numpy GFLOP/s; the stock Linux wheel's reference BLAS is far below it


def test_mlx_matmul_keeps_up_with_numpy(benchmark):
    import numpy as np

    from titans import blas_info

    n = 2048
    a = mx.random.normal((n, n), key=mx.random.key(0))
    mx.eval(a)
    a_np = np.array(a)

    def mlx_matmul():
        mx.eval(a @ a)

    def numpy_matmul():
        a_np @ a_np

    def timed(fn):
        time.sleep(0.2)  # let the other library's BLAS threads stop spinning first
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    benchmark.pedantic(mlx_matmul, rounds=5, iterations=1, warmup_rounds=1)  # the history record
    # The verdict compares the two in interleaved rounds, so that a burst of load on the shared
    # machine hits both (timed one after the other, a burst can fall on one library only).
    numpy_matmul()
    pairs = [(timed(mlx_matmul), timed(numpy_matmul)) for _ in range(7)]
    mlx_s, numpy_s = min(m for m, _ in pairs), min(n for _, n in pairs)
    flops = 2 * n**3
    ratio = (flops / mlx_s) / (flops / numpy_s)
    benchmark.extra_info.update(mlx_gflops=flops / mlx_s / 1e9, numpy_gflops=flops / numpy_s / 1e9,
                                ratio=ratio, **blas_info())
    assert ratio >= BLAS_TARGET, (f"MLX matmul {flops / mlx_s / 1e9:.1f} GFLOP/s vs numpy "
                                  f"{flops / numpy_s / 1e9:.1f} ({ratio:.2f}x < {BLAS_TARGET}x); BLAS: {blas_info()}")
