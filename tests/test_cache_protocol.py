"""The cache protocol (titans.cache): every model's decoding state round-trips through
``state``/``meta_state``/``from_state`` and through a file, and decoding then continues exactly."""

from __future__ import annotations

import json

import mlx.core as mx
import numpy as np
import pytest

from titans.cache import Cache, describe, load_cache, restore, save_cache
from titans.models import MODELS, cache_nbytes, create_model

PREFIX, DECODE = 45, 6  # the prefix ends inside a memory chunk, a MAC segment and past the SWA window


def _model(name: str):
    return create_model(name, "tiny", seed=1, **({"window": 16} if name in ("transformer_swa", "mag", "mal") else {}))


def _prefill(model, tokens):
    cache = model.make_cache()
    mx.eval(model(tokens[:, :PREFIX], cache), [c.arrays for c in cache])
    return cache


def _decode(model, cache, tokens) -> np.ndarray:
    out = [model(tokens[:, t : t + 1], cache)[:, -1] for t in range(PREFIX, PREFIX + DECODE)]
    return np.array(mx.stack(out, axis=1))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_saved_cache_continues_exactly(name, tmp_path):
    model = _model(name)
    tokens = mx.array(np.random.default_rng(0).integers(0, 512, (2, PREFIX + DECODE)), dtype=mx.int32)
    cache = _prefill(model, tokens)
    assert all(isinstance(c, Cache) for c in cache)
    for c in cache:
        json.dumps(c.meta_state)  # JSON-able
    copied = [type(c).from_state(c.state, c.meta_state) for c in cache]
    stored = lambda caches: sum(a.nbytes for c in caches for a in c.arrays)  # noqa: E731
    assert stored(copied) == stored(cache) > 0
    assert cache_nbytes(copied) <= cache_nbytes(cache)  # a KV cache's spare room is not state
    save_cache(tmp_path / "cache.safetensors", cache, {"model": name, "position": PREFIX})
    loaded, metadata = load_cache(tmp_path / "cache.safetensors")
    assert metadata == {"model": name, "position": PREFIX}
    assert [type(c) for c in loaded] == [type(c) for c in cache]
    expected = _decode(model, cache, tokens)
    np.testing.assert_array_equal(_decode(model, copied, tokens), expected)
    np.testing.assert_array_equal(_decode(model, loaded, tokens), expected)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fresh_cache_round_trips(name, tmp_path):
    cache = _model(name).make_cache()
    save_cache(tmp_path / "empty.safetensors", cache)
    loaded, metadata = load_cache(tmp_path / "empty.safetensors")
    assert metadata == {} and cache_nbytes(loaded) == 0
    assert [c.meta_state for c in loaded] == [c.meta_state for c in cache]


def test_bad_input_names_the_argument(tmp_path):
    with pytest.raises(TypeError, match="caches"):
        save_cache(tmp_path / "x.safetensors", "not a list")
    with pytest.raises(TypeError, match="metadata"):
        save_cache(tmp_path / "x.safetensors", [], metadata=[1])
    with pytest.raises(FileNotFoundError, match="path"):
        load_cache(tmp_path / "missing.safetensors")
    mx.save_safetensors(str(tmp_path / "plain.safetensors"), {"a": mx.zeros(2)})
    with pytest.raises(ValueError, match="path"):
        load_cache(tmp_path / "plain.safetensors")
    with pytest.raises(TypeError, match="cache"):
        describe(object())
    with pytest.raises(ValueError, match="unknown cache class"):
        restore({"class": "NoSuchCache", "meta": {}}, {})
