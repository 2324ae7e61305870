"""Every model: cached decoding equals the parallel forward, causality, cache growth, dtypes,
matched parameter counts, both attention paths, bad input."""

import mlx.core as mx
import numpy as np
import pytest

import titans.models.base as base
from titans.models import BASELINES, MODELS, SIZES, TITANS, cache_nbytes, create_model, model_args

ALL = sorted(MODELS)
# Short windows/segments/chunks so that a 40-token test crosses every boundary.
SMALL_OPTIONS = dict(window=8, segment_size=16, chunk_size=4, memory={"chunk_size": 4})


def build(name, **kw):
    args = model_args(name, "tiny", **{k: v for k, v in {**SMALL_OPTIONS, **kw}.items()
                                       if k in MODELS[name][1].__dataclass_fields__ and (k != "window" or name != "transformer")})
    mx.random.seed(0)
    return MODELS[name][0](args)


def tokens(T, B=2, seed=0, vocab=512):
    return mx.array(np.random.default_rng(seed).integers(0, vocab, size=(B, T)), dtype=mx.int32)


@pytest.mark.parametrize("name", ALL)
def test_prefill_and_decode_equal_parallel_forward(name):
    model, x = build(name), tokens(40)
    full = model(x)
    cache = model.make_cache()
    pieces = [model(x[:, :13], cache)] + [model(x[:, t : t + 1], cache) for t in range(13, 40)]
    assert mx.abs(mx.concatenate(pieces, axis=1) - full).max().item() <= 1e-4


@pytest.mark.parametrize("name", ALL)
def test_causality(name):
    model, x = build(name), tokens(40)
    y = model(x)
    for t in (0, 17, 38):
        x2 = mx.concatenate([x[:, : t + 1], (x[:, t + 1 :] + 7) % 512], axis=1)
        y2 = model(x2)
        assert mx.array_equal(y[:, : t + 1], y2[:, : t + 1]), t
        assert not mx.array_equal(y[:, t + 1 :], y2[:, t + 1 :])


@pytest.mark.parametrize("name", ALL)
def test_cache_growth(name):
    """Recurrent caches (Titans, RetNet) and window caches stay bounded; the full KV cache grows."""
    model = build(name)
    sizes = []
    for T in (48, 304):  # both on the MAC segment grid (16)
        cache = model.make_cache()
        model(tokens(T, B=1), cache)
        sizes.append(cache_nbytes(cache))
    if name == "transformer":
        assert sizes[1] > sizes[0]
    else:
        assert sizes[1] == sizes[0], sizes


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [mx.float32, mx.float16])
def test_forward_shapes_and_dtypes(name, dtype):
    model = build(name)
    model.set_dtype(dtype)
    y = model(tokens(21, B=2))
    assert y.shape == (2, 21, 512) and y.dtype == dtype
    assert mx.all(mx.isfinite(y)).item()


# 16k tokens streamed through the cache in pieces, so that memory stays bounded at every size.
STREAM_TOKENS, STREAM_PIECE = 16384, 4096
# The medium models run with --scale=full (minutes on 2 cores).
STREAM_CASES = [
    pytest.param(name, size, marks=pytest.mark.slow) if size == "medium" else (name, size)
    for name in ALL for size in sorted(SIZES)
]


@pytest.mark.parametrize("name, size", STREAM_CASES)
def test_untrained_models_stay_finite_over_a_16k_token_stream(name, size):
    """Every untrained model at every named size gives finite logits over a 16k-token stream: no
    overflow in the attention paths (blockwise beyond ``BLOCKWISE_FROM``), the memory or retention."""
    model = create_model(name, size, seed=0)
    x = tokens(STREAM_TOKENS, B=1, vocab=model.args.vocab_size)
    cache = model.make_cache()
    for start in range(0, STREAM_TOKENS, STREAM_PIECE):
        logits = model(x[:, start : start + STREAM_PIECE], cache)
        finite = mx.all(mx.isfinite(logits), axis=-1)[0]
        if not finite.all().item():
            first = start + mx.argmin(finite).item()
            pytest.fail(f"{name} at size {size!r}: non-finite logits from token {first}")


@pytest.mark.parametrize("size", sorted(SIZES))
def test_named_sizes_match_parameters_within_5_percent(size):
    counts = {name: create_model(name, size).num_parameters(embeddings=False) for name in MODELS}
    lo, hi = min(counts.values()), max(counts.values())
    assert hi / lo <= 1.05, counts


def test_ablations_stay_on_budget():
    reference = create_model("lmm").num_parameters()
    for overrides in (dict(n_persistent=0), dict(memory={"depth": 1}), dict(memory={"conv_kernel": 0})):
        assert abs(create_model("lmm", **overrides).num_parameters() / reference - 1) <= 0.05, overrides


@pytest.mark.parametrize("name", ["transformer", "transformer_swa", "mag", "mal"])
def test_blockwise_and_plain_attention_paths_agree(name, monkeypatch):
    model, x = build(name), tokens(40)
    plain = model(x)
    monkeypatch.setattr(base, "BLOCKWISE_FROM", 1)
    assert mx.abs(model(x) - plain).max().item() <= 1e-4


def test_registry_groups_cover_every_model():
    assert set(TITANS) | set(BASELINES) == set(MODELS)


def test_mac_layer_input_option_changes_what_the_memory_stores():
    x = tokens(40)
    a = build("mac")(x)
    b = build("mac", memory_input="layer_input")(x)
    assert not mx.allclose(a, b)


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (mx.array([1, 2, 3]), ValueError, "shape \\(batch, time\\)"),
        (mx.array([[1.0, 2.0]]), TypeError, "integer dtype"),
        (mx.zeros((1, 0), dtype=mx.int32), ValueError, "empty"),
    ],
)
def test_bad_tokens(bad, error, match):
    with pytest.raises(error, match=match):
        build("lmm")(bad)


@pytest.mark.parametrize("bad", [[[1, 2, 512]], [[-1, 2]]])
@pytest.mark.parametrize("kind", [mx.array, np.array])
def test_token_ids_out_of_range_are_rejected_where_data_enters(bad, kind):
    """The forward does no host sync; id ranges are checked by ``_checks.token_ids`` (training,
    evaluation, CLI), for NumPy and MLX arrays."""
    from titans import _checks

    with pytest.raises(ValueError, match=r"tokens must lie in \[0, 512\)"):
        _checks.token_ids("tokens", kind(bad), 512)


def test_bad_names_and_sizes():
    with pytest.raises(ValueError, match="unknown model 'titan'"):
        create_model("titan")
    with pytest.raises(ValueError, match="unknown size"):
        create_model("mac", "huge")
    with pytest.raises(ValueError, match="no option"):
        create_model("retnet", segment_size=4)


@pytest.mark.parametrize(
    "name, overrides, match",
    [
        ("transformer", dict(dims=30, n_heads=4), "divisible"),
        ("lmm", dict(memory={"depth": 0}), "memory.depth"),
        ("mac", dict(segment_size=0), "segment_size"),
        ("mac", dict(memory_input="inputs"), "memory_input"),
        ("mag", dict(window=-1), "window"),
        ("retnet", dict(value_factor=0), "value_factor"),
        ("lmm", dict(n_persistent=-2), "n_persistent"),
    ],
)
def test_inconsistent_model_args(name, overrides, match):
    with pytest.raises(ValueError, match=match):
        MODELS[name][1](**overrides)


def test_bad_cache():
    model = build("retnet")
    with pytest.raises(ValueError, match="cache must be a list"):
        model(tokens(4), cache=[])
