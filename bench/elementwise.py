"""``python -m bench.elementwise``: nanoseconds per float32 element of MLX's elementwise kernels on
this machine, the cost model behind ``titans/ops/activations.py`` and the memory step's profile.

Each op runs on ``--size`` floats (default 4M), evaluated alone; the minimum of ``--rounds`` calls
is reported, beside numpy's time for the same op where it has one.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

import titans  # BLAS before mlx
import mlx.core as mx

from titans.ops import activations


def _ops():
    e = math.e
    return {
        "multiply": (lambda x: x * 1.0001, lambda x: x * 1.0001),
        "mx.exp": (mx.exp, np.exp),
        "mx.power(e, x)": (lambda x: mx.power(e, x), None),
        "mx.sigmoid": (mx.sigmoid, None),
        "titans sigmoid": (activations.sigmoid, None),
        "nn.silu (x * sigmoid)": (lambda x: x * mx.sigmoid(x), None),
        "titans silu": (activations.silu, None),
        "mx.tanh": (mx.tanh, np.tanh),
    }


def _time(fn, x, rounds: int) -> float:
    best = math.inf
    for _ in range(rounds):
        start = time.perf_counter()
        out = fn(x)
        if isinstance(out, mx.array):
            mx.eval(out)
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.elementwise", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=4 * 2**20, help="floats per op (default 4M)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if args.size <= 0:
        parser.error(f"--size must be positive, got {args.size}")
    if args.rounds <= 0:
        parser.error(f"--rounds must be positive, got {args.rounds}")
    x = mx.random.uniform(-4, 4, (args.size,))
    mx.eval(x)
    x_np = np.array(x)
    print(f"{'op':<24} {'MLX ns/el':>10} {'numpy ns/el':>12}   ({args.size:,} float32, min of {args.rounds})")
    for name, (fn, ref) in _ops().items():
        ours = _time(fn, x, args.rounds) / args.size * 1e9
        theirs = f"{_time(ref, x_np, args.rounds) / args.size * 1e9:12.2f}" if ref else f"{'-':>12}"
        print(f"{name:<24} {ours:10.2f} {theirs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
