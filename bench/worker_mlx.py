"""One measurement of this repository's MLX implementation, in its own process.

Run by ``bench/peer.py`` with this repository's venv: ``python bench/worker_mlx.py SPEC OUT``, where
``SPEC`` is a JSON object (``kind``, ``seq_len``, ``repeats``, ``warmup_len``, ``seed``, ``config``)
and ``OUT`` the path of the JSON result it writes. ``kind`` is ``memory`` (the ``NeuralMemory``
layer; then also ``memory_scan`` alone and an fp32 matmul, for the achieved fraction of the matmul
peak) or ``mac`` (the MAC model's forward to logits).

Timing: a warm-up call on ``warmup_len`` tokens (tracing of the compiled chunk step, first
allocations), then ``repeats`` timed calls on ``seq_len`` tokens, each evaluated
(``mx.eval``); the peak resident memory of those calls (``_proc.PeakRSS``) and MLX's allocator peak
(``mx.get_peak_memory``) over them.
"""

import titans  # noqa: I001  first: gives MLX a fast BLAS on Linux (titans._blas)

import math
import platform
import sys
import time
from dataclasses import asdict

import mlx.core as mx
from mlx.utils import tree_flatten

try:
    from _proc import PeakRSS, run_worker  # run as a script: bench/ is its directory, hence on sys.path
except ImportError:  # imported as bench.worker_mlx (tests)
    from bench._proc import PeakRSS, run_worker

from titans.layers.neural_memory import MemoryConfig, NeuralMemory
from titans.models import create_model
from titans.ops.memory import memory_scan


def _finite(*arrays) -> bool:
    return all(bool(mx.all(mx.isfinite(a)).item()) for a in arrays)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _build(kind: str, config: dict, seq_len: int, seed: int):
    """The module, its input of ``seq_len`` tokens, its parameter count and its configuration."""
    if kind == "memory":
        mx.random.seed(seed)
        memory = MemoryConfig(depth=config["depth"], expansion=config["expansion"], chunk_size=config["chunk"])
        module = NeuralMemory(config["dim"], n_heads=config["heads"], config=memory)
        x = mx.random.normal((config["batch"], seq_len, config["dim"]), key=mx.random.key(seed + 1))
        params = sum(p.size for _, p in tree_flatten(module.parameters()))
        described = dict(dims=module.dims, n_heads=module.n_heads, head_dim=module.head_dim, **asdict(module.config))
    elif kind == "mac":
        module = create_model("mac", config["size"], seed=seed)
        x = mx.random.randint(0, module.args.vocab_size, (config["batch"], seq_len), key=mx.random.key(seed + 1))
        params = module.num_parameters()
        described = asdict(module.args)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    mx.eval(module.parameters(), x)
    return module, x, params, described


def scan_inputs(T: int, heads: int, head_dim: int, hidden: int, depth: int, seed: int):
    """Random ``memory_scan`` inputs with gates in the layer's range (as the claims' benchmark,
    ``claims/test_throughput.py``): unit q/k, normal v, θ ≤ 0.02, η in 0.8-0.95, α ≤ 0.05."""
    ks = mx.random.split(mx.random.key(seed), 6)
    unit = lambda x: x / mx.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    dims = (head_dim, *([hidden] * (depth - 1)), head_dim)
    wkeys = mx.random.split(ks[0], depth)
    weights = tuple(mx.random.normal((heads, d_out, d_in), key=wkeys[i]) / math.sqrt(d_in)
                    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])))
    q = unit(mx.random.normal((1, heads, T, head_dim), key=ks[2]))
    k = unit(mx.random.normal((1, heads, T, head_dim), key=ks[3]))
    v = mx.random.normal((1, heads, T, head_dim), key=ks[4])
    gates = mx.random.uniform(shape=(3, 1, heads, T), key=ks[5])
    args = (weights, q, k, v, 0.02 * gates[0], 0.8 + 0.15 * gates[1], 0.05 * gates[2])
    mx.eval(args)
    return args, dims


def _scan_and_matmul(spec: dict) -> dict:
    """``memory_scan`` alone at the layer's sizes, timed in rounds alternating with an fp32
    ``n x n`` matmul (the same process, the same BLAS, the same moment's load)."""
    c, L, n = spec["config"], spec["seq_len"], spec["matmul_n"]
    hidden = c["expansion"] * (c["dim"] // c["heads"])
    args, dims = scan_inputs(L, c["heads"], c["dim"] // c["heads"], hidden, c["depth"], spec["seed"])
    a = mx.random.normal((n, n), key=mx.random.key(spec["seed"] + 7))
    mx.eval(a)
    out = []

    def scan():
        y, state = memory_scan(*args, c["chunk"])
        out[:] = [y, *state.arrays]
        mx.eval(out)

    def matmul():
        mx.eval(a @ a)

    warm = scan_inputs(spec["warmup_len"], c["heads"], c["dim"] // c["heads"], hidden, c["depth"], spec["seed"])[0]
    mx.eval(memory_scan(*warm, c["chunk"])[0])
    matmul()
    scan_s, matmul_s = [], []
    for _ in range(spec["repeats"]):
        matmul_s.append(min(_timed(matmul) for _ in range(3)))
        scan_s.append(_timed(scan))
    return dict(scan_seconds=scan_s, matmul_seconds=matmul_s, matmul_n=n, scan_dims=list(dims),
                scan_heads=c["heads"], scan_chunk=c["chunk"], scan_finite=_finite(*out))


def measure(spec: dict) -> dict:
    titans.configure_allocator()  # the entry points' allocator policy (README: "Linux, BLAS and MLX")
    kind, L = spec["kind"], spec["seq_len"]
    module, x, params, described = _build(kind, spec["config"], L, spec["seed"])
    out = []

    def forward(inp):
        out[:] = [module(inp)]
        mx.eval(out)

    forward(x[:, : spec["warmup_len"]])
    seconds = []
    mx.reset_peak_memory()
    active_before = mx.get_active_memory()
    with PeakRSS() as rss:
        for _ in range(spec["repeats"]):
            seconds.append(_timed(lambda: forward(x)))
    result = dict(
        seconds=seconds,
        tokens_per_s=L * spec["config"]["batch"] / min(seconds),
        finite=_finite(*out),
        parameters=params,
        implementation_config=described,
        mlx_peak_bytes=mx.get_peak_memory(),
        mlx_active_before_bytes=active_before,
        mlx_working_bytes=mx.get_peak_memory() - active_before,
        **rss.record(),
    )
    if kind == "memory" and spec.get("matmul_n"):
        del out[:]
        result["scan"] = _scan_and_matmul(spec)
    result["versions"] = dict(mlx=mx.__version__, python=platform.python_version(), **titans.blas_info())
    result["device"] = str(mx.default_device())
    return result


if __name__ == "__main__":
    run_worker(measure, sys.argv)
