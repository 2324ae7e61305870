"""The memorization probe: a ``NeuralMemory`` at its default initialization stores what it is
shown, and stores more with more passes; the probe itself rejects bad input."""

import mlx.core as mx
import pytest

from titans.layers.neural_memory import MemoryConfig, NeuralMemory
from titans.probes import MemorizationResult, memorization_probe

# One pass over the pairs must lower their loss by at least a tenth of the loss on pairs never
# shown (relative gap >= 0.1): twice the bound that a memory storing nothing stays within
# (test_probe_tells_a_memory_that_stores_nothing).
ONE_PASS_MARGIN = 0.1


def layer(seed=0, **config):
    mx.random.seed(seed)
    return NeuralMemory(64, n_heads=2, config=MemoryConfig(chunk_size=16, **config))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_default_memory_stores_after_one_pass_and_more_with_more_passes(seed):
    result = memorization_probe(layer(seed), n_pairs=64, passes=(1, 2, 4, 8), seed=seed + 100)
    assert result.gap[0] >= ONE_PASS_MARGIN, result.as_dict()
    assert all(b > a for a, b in zip(result.gap, result.gap[1:])), result.as_dict()
    assert all(s < c for s, c in zip(result.stored_loss, result.control_loss))


def test_probe_tells_a_memory_that_stores_nothing():
    """θ → 0 and the memory is untouched: stored and control pairs look alike (gap ≈ 0)."""
    result = memorization_probe(layer(lr_scale=1e-9), n_pairs=32, passes=(1, 4))
    assert all(abs(g) < 0.05 for g in result.gap), result.as_dict()


def test_probe_result_fields():
    result = memorization_probe(layer(), n_pairs=16, passes=(1, 3), batch=2)
    assert isinstance(result, MemorizationResult)
    assert result.passes == (1, 3) and len(result.stored_loss) == len(result.control_loss) == 2
    assert set(result.as_dict()) == {"passes", "stored_loss", "control_loss", "gap"}


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(n_pairs=0), ValueError, "n_pairs"),
        (dict(batch=1.5), TypeError, "batch"),
        (dict(passes=(2, 1)), ValueError, "passes"),
        (dict(passes=(0,)), ValueError, "passes"),
        (dict(passes=()), ValueError, "passes"),
        (dict(seed=-1), ValueError, "seed"),
    ],
)
def test_bad_input_names_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        memorization_probe(layer(), **kwargs)


def test_rejects_a_non_memory_layer():
    with pytest.raises(TypeError, match="layer must be a NeuralMemory"):
        memorization_probe(object())
