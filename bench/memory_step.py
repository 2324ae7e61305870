"""``python -m bench.memory_step``: where a Titans training step spends its time on this machine.

Times, at size tiny on the learning-control batch (32 sequences of 64 tokens, vocabulary 64), the
compiled training step of LMM and of Transformer++, and the memory scan alone (forward, and
forward plus backward) at one LMM layer's shapes, for several chunk sizes and compiled or not.
Minimum over ``--rounds`` calls after warm-up.
"""

from __future__ import annotations

import argparse
import time

import titans  # BLAS before mlx
import mlx.core as mx
import mlx.optimizers as optim

from titans.layers.neural_memory import MemoryConfig
from titans.models import create_model, model_args
from titans.ops.memory import l2_normalize, memory_scan
from titans.train import make_step, task_batch

BATCH, LENGTH, VOCAB = 32, 64, 64


def _best(fn, rounds: int) -> float:
    for _ in range(2):
        fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def step_seconds(name: str, rounds: int) -> float:
    model = create_model(name, "tiny", seed=0, vocab_size=VOCAB)
    optimizer = optim.AdamW(learning_rate=1e-3)
    optimizer.init(model.trainable_parameters())
    step = make_step(model, optimizer, 1.0, compiled=True)
    batch = task_batch("far_pointer", BATCH, LENGTH, 0, depth=None, vocab_size=VOCAB)
    inputs, targets = mx.array(batch.inputs), mx.array(batch.targets)

    def run():
        loss, _ = step(inputs, targets)
        mx.eval(model.state, optimizer.state, loss)

    return _best(run, rounds)


def scan_seconds(chunk: int, backward: bool, compiled: bool, rounds: int) -> float:
    args = model_args("lmm", "tiny")
    heads, head_dim = args.n_heads, args.head_dim
    config = MemoryConfig.from_dict(args.memory)
    hidden = config.expansion * head_dim
    shape = (BATCH, heads, LENGTH, head_dim)
    q, k, v = (l2_normalize(mx.random.normal(shape, key=mx.random.key(i))) for i in range(3))
    gates = [mx.full(shape[:-1], g) for g in (0.05, 0.8, 1e-3)]
    weights = (mx.random.normal((heads, hidden, head_dim)) * 0.1, mx.random.normal((heads, head_dim, hidden)) * 0.1)

    def loss(*xs):
        y, _ = memory_scan(weights, *xs, chunk, normalize_output=config.normalize_output, validate=False)
        return (y * y).sum()

    fn = mx.grad(loss, argnums=tuple(range(6))) if backward else loss
    fn = mx.compile(fn) if compiled else fn
    return _best(lambda: mx.eval(fn(q, k, v, *gates)), rounds)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory_step", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    if args.rounds <= 0:
        parser.error(f"--rounds must be positive, got {args.rounds}")
    tokens = BATCH * LENGTH
    for name in ("transformer", "lmm"):
        s = step_seconds(name, args.rounds)
        print(f"training step {name:<12} {s * 1e3:7.1f} ms  {tokens / s:8.0f} tok/s")
    for chunk in (16, 32, 64):
        for backward in (False, True):
            for compiled in (False, True):
                s = scan_seconds(chunk, backward, compiled, args.rounds)
                what = "fwd+bwd" if backward else "fwd"
                print(f"memory_scan chunk {chunk:<3} {what:<8} {'compiled' if compiled else 'eager':<9} {s * 1e3:7.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
