"""Training throughput of every model at size tiny (the trained tier's size), with pytest-benchmark.

One optimization step (forward, backward, gradient clipping, AdamW) on the learning-control batch
(far pointer, batch 32 x 64 tokens), compiled as ``titans.train`` runs it and uncompiled, in the
same session: ``extra_info`` records tokens/s, the compiled/uncompiled ratio and the ratio to
Transformer++'s compiled step measured in this run. Benchmarks, not claims: nothing is asserted
but that the step's loss is finite.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.optimizers as optim
import pytest

from titans.models import MODELS, create_model
from titans.train import make_step, task_batch

BATCH, LENGTH = 32, 64
ROUNDS = 5


def _step(name: str, compiled: bool):
    model = create_model(name, "tiny", seed=0, **({"window": 64} if name in ("transformer_swa", "mag", "mal") else {}))
    optimizer = optim.AdamW(learning_rate=1e-3)
    optimizer.init(model.trainable_parameters())
    step = make_step(model, optimizer, 1.0, compiled=compiled)
    state = [model.state, optimizer.state]
    batch = task_batch("far_pointer", BATCH, LENGTH, 0, depth=None, vocab_size=64)
    inputs, targets = mx.array(batch.inputs), mx.array(batch.targets)
    losses = []

    def run():
        loss, _ = step(inputs, targets)
        mx.eval(state, loss)
        losses.append(loss.item())

    return run, losses


# Transformer++ first: the other models' rows record their ratio to it.
ORDER = ["transformer", "transformer_swa", "retnet", "lmm", "mac", "mag", "mal"]
assert sorted(ORDER) == sorted(MODELS)
CASES = [pytest.param(name, compiled, id=f"{name}-{'compiled' if compiled else 'eager'}")
         for name in ORDER for compiled in (False, True)]


@pytest.mark.parametrize("name, compiled", CASES)
def test_training_step_throughput(measure, benchmark, throughput_table, name, compiled):
    run, losses = _step(name, compiled)
    for _ in range(2):  # compile and allocate before timing
        run()
    row = measure(run, BATCH * LENGTH, group="training step", name=f"{name}/{'compiled' if compiled else 'eager'}",
                  seq_len=LENGTH, rounds=ROUNDS, warmup=False, batch=BATCH, compiled=compiled)
    other = throughput_table.rows.get(("training step", f"{name}/{'eager' if compiled else 'compiled'}", LENGTH))
    if other is not None:
        compiled_row, eager_row = (row, other) if compiled else (other, row)
        benchmark.extra_info["compiled_over_eager"] = compiled_row["tokens_per_s"] / eager_row["tokens_per_s"]
    reference = throughput_table.rows.get(("training step", "transformer/compiled", LENGTH))
    if reference is not None and compiled:
        benchmark.extra_info["over_transformer_compiled"] = row["tokens_per_s"] / reference["tokens_per_s"]
    assert all(map(lambda x: x == x and abs(x) != float("inf"), losses)), f"non-finite training loss: {losses}"
