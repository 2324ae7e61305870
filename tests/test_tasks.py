"""Tests for the synthetic task generators (titans/tasks/): pure numpy, fast."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from titans.tasks import (
    BLANK,
    COPY,
    IGNORE,
    KEY,
    N_SPECIAL,
    QUERY,
    SEP,
    KVStream,
    TaskBatch,
    accuracy,
    accuracy_by,
    derived_seed,
    far_pointer,
    kv_stream_far_pointer,
    kv_stream_overwrites,
    kv_stream_pairs,
    kv_stream_rebinding,
    kv_stream_rewrites,
    kv_stream_switch,
    mqar,
    rebinding,
    selective_copy,
    staleness,
    vocab_layout,
)

FAST = settings(max_examples=25, deadline=None)

GENERATORS = {
    "far_pointer_filler": lambda seed: far_pointer(4, 40, 0.5, "filler", 64, seed),
    "far_pointer_random": lambda seed: far_pointer(4, 40, None, "random", 64, seed),
    "far_pointer_needles": lambda seed: far_pointer(4, 40, 0.3, "needles", 64, seed),
    "selective_copy": lambda seed: selective_copy(4, 40, 6, 64, seed),
    "rebinding": lambda seed: rebinding(4, 60, 6, 3, 64, seed),
    "mqar": lambda seed: mqar(4, 64, 8, 128, seed),
}

STREAMS = {
    "kv_far_filler": lambda seed: kv_stream_far_pointer(8, 4, 20, 0.5, "filler", seed),
    "kv_far_random": lambda seed: kv_stream_far_pointer(8, 4, 20, None, "random", seed),
    "kv_far_needles": lambda seed: kv_stream_far_pointer(8, 4, 20, 0.2, "needles", seed, n_needles_distractor=5),
    "kv_pairs": lambda seed: kv_stream_pairs(8, 4, 6, seed),
    "kv_rebinding": lambda seed: kv_stream_rebinding(8, 4, 6, 3, seed, gap=4, tail=2),
}


def _meta_equal(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    return all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) for k in a)


# ---------------------------------------------------------------------------------------------
# vocabulary


@FAST
@given(st.integers(N_SPECIAL + 3, 100_000))
def test_vocab_ranges_disjoint_and_cover(vocab_size):
    lay = vocab_layout(vocab_size)
    ranges = [range(0, N_SPECIAL), range(lay.key_lo, lay.key_hi), range(lay.value_lo, lay.value_hi),
              range(lay.filler_lo, lay.filler_hi)]
    assert all(len(r) > 0 for r in ranges)
    assert [r.start for r in ranges[1:]] == [r.stop for r in ranges[:-1]]  # contiguous, no overlap
    assert ranges[-1].stop == vocab_size
    assert max(KEY, QUERY, SEP, COPY, BLANK) < N_SPECIAL


def test_vocab_too_small():
    with pytest.raises(ValueError, match="vocab_size"):
        vocab_layout(N_SPECIAL + 2)


@pytest.mark.parametrize("name", GENERATORS)
def test_generated_tokens_respect_layout(name):
    b = GENERATORS[name](3)
    vocab = 128 if name == "mqar" else 64
    assert b.inputs.min() >= 0 and b.inputs.max() < vocab
    scored = b.targets[b.targets != IGNORE]
    assert scored.min() >= 0 and scored.max() < vocab
    if name != "mqar":
        lay = vocab_layout(64)
        assert not np.isin(b.inputs, [6, 7]).any()  # reserved specials never emitted
        if name != "selective_copy" and b.meta.get("score", "recall") == "recall":
            assert np.all((scored >= lay.value_lo) & (scored < lay.value_hi))  # answers are values


# ---------------------------------------------------------------------------------------------
# determinism, shapes, dtypes


@pytest.mark.parametrize("name", GENERATORS)
def test_token_determinism_and_shapes(name):
    make = GENERATORS[name]
    a, b, c = make(7), make(7), make(8)
    assert isinstance(a, TaskBatch)
    assert a.inputs.dtype == np.int32 and a.targets.dtype == np.int32
    assert a.inputs.shape == a.targets.shape and a.inputs.ndim == 2 and a.inputs.shape[0] == 4
    assert np.array_equal(a.inputs, b.inputs) and np.array_equal(a.targets, b.targets)
    assert _meta_equal(a.meta, b.meta)
    assert not (np.array_equal(a.inputs, c.inputs) and np.array_equal(a.targets, c.targets))
    pos = a.meta["scored_pos"]
    assert pos.ndim == 2 and pos.shape[0] == 4
    # scored_pos lists exactly the scored targets
    listed = np.zeros_like(a.scored_mask)
    for r in range(4):
        listed[r, pos[r][pos[r] >= 0]] = True
    if a.meta.get("score", "recall") == "recall":
        assert np.array_equal(listed, a.scored_mask)
    assert a.n_scored == int(a.scored_mask.sum())


@pytest.mark.parametrize("name", STREAMS)
def test_stream_determinism_and_shapes(name):
    make = STREAMS[name]
    a, b, c = make(3), make(3), make(4)
    assert isinstance(a, KVStream)
    for x in (a.keys, a.values, a.queries, a.targets):
        assert x.dtype == np.float32 and x.ndim == 2
    T = a.keys.shape[0]
    assert a.values.shape[0] == T and a.keys.shape[1] == 8 and a.values.shape[1] == 4
    assert a.queries.shape == (len(a.query_index), 8) and a.targets.shape == (len(a.query_index), 4)
    assert np.all(a.query_index == T - 1)
    np.testing.assert_allclose(np.linalg.norm(a.keys, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(a.queries, axis=1), 1.0, rtol=1e-5)
    for f in ("keys", "values", "queries", "targets"):
        assert np.array_equal(getattr(a, f), getattr(b, f))
    assert _meta_equal(a.meta, b.meta)
    assert not np.array_equal(a.keys, c.keys)


# ---------------------------------------------------------------------------------------------
# far pointer


def _strip_needle(row: np.ndarray, p: int) -> np.ndarray:
    """The haystack of a far-pointer row: drop the needle (3 tokens at p) and the query."""
    return np.concatenate([row[:p], row[p + 3 : -2]])


@FAST
@given(
    seq_len=st.integers(5, 120),
    depth=st.floats(0.0, 1.0),
    haystack=st.sampled_from(["filler", "random", "needles"]),
    seed=st.integers(0, 2**32),
)
def test_far_pointer_structure(seq_len, depth, haystack, seed):
    b = far_pointer(3, seq_len, depth, haystack, 64, seed)
    H = seq_len - 5
    lay = vocab_layout(64)
    m = b.meta
    assert np.all(m["needle_pos"] == round(depth * H))
    assert np.all(m["distance"] == seq_len - 1 - m["needle_pos"])
    for r in range(3):
        row, p, k, v = b.inputs[r], m["needle_pos"][r], m["key"][r], m["value"][r]
        assert list(row[p : p + 3]) == [KEY, k, v]
        assert list(row[-2:]) == [QUERY, k]
        assert lay.key_lo <= k < lay.key_hi and lay.value_lo <= v < lay.value_hi
        # the only scored target is the needle's value, after the query key
        assert b.targets[r, -1] == v and np.all(b.targets[r, :-1] == IGNORE)
        # the queried key occurs nowhere else
        assert np.count_nonzero(row == k) == 2
        hay = _strip_needle(row, p)
        assert len(hay) == H
        if haystack == "random":
            assert np.all((hay >= lay.filler_lo) & (hay < lay.filler_hi))
        if haystack == "needles":
            starts = np.nonzero(row == KEY)[0]
            assert len(starts) == m["n_distractors"][r] + 1
            dk, dv = row[starts + 1], row[starts + 2]
            assert len(set(dk.tolist())) == len(dk)  # distinct keys, incl. the needle's
            assert np.count_nonzero(dv == v) == 1  # distractor values differ from v


def test_far_pointer_depth_extremes():
    b0 = far_pointer(2, 50, 0.0, "filler", 64, 0)
    b1 = far_pointer(2, 50, 1.0, "filler", 64, 0)
    assert np.all(b0.meta["needle_pos"] == 0) and np.all(b0.inputs[:, 0] == KEY)
    assert np.all(b1.meta["needle_pos"] == 45) and np.all(b1.inputs[:, 45] == KEY)  # right before QUERY
    assert np.all(b1.inputs[:, 48] == QUERY)
    assert np.all(b0.meta["distance"] > b1.meta["distance"])


def test_far_pointer_depth_per_row_and_random():
    d = np.array([0.0, 0.25, 0.5, 1.0])
    b = far_pointer(4, 105, d, "random", 64, 0)
    assert list(b.meta["needle_pos"]) == [0, 25, 50, 100]
    r = far_pointer(64, 105, None, "filler", 64, 0)
    assert len(set(r.meta["needle_pos"].tolist())) > 10  # spread over depths
    np.testing.assert_allclose(r.meta["depth"], r.meta["needle_pos"] / 100)


@pytest.mark.parametrize("period", [1, 3, 8])
def test_filler_haystack_really_repeats(period):
    lay = vocab_layout(64)
    pattern = lay.filler_pattern(period)
    a = far_pointer(3, 80, 0.4, "filler", 64, 1, filler_period=period)
    b = far_pointer(3, 80, 0.4, "filler", 64, 99, filler_period=period)
    for batch in (a, b):
        for r in range(3):
            hay = _strip_needle(batch.inputs[r], batch.meta["needle_pos"][r])
            assert np.array_equal(hay, np.resize(pattern, len(hay)))
            assert np.array_equal(hay[period:], hay[:-period])
    # the same fixed motif for every seed and row: only the needle differs
    assert np.array_equal(
        _strip_needle(a.inputs[0], a.meta["needle_pos"][0]), _strip_needle(b.inputs[2], b.meta["needle_pos"][2])
    )


def test_far_pointer_needle_count():
    b = far_pointer(3, 65, 0.5, "needles", 512, 0, n_needles_distractor=4)
    assert np.all(b.meta["n_distractors"] == 4)
    assert np.all((b.inputs == KEY).sum(axis=1) == 5)
    full = far_pointer(2, 65, 0.5, "needles", 512, 0)
    assert np.all(full.meta["n_distractors"] == 20)  # (65 - 5) / 3 slots, all filled


# ---------------------------------------------------------------------------------------------
# selective copy


@FAST
@given(n_copy=st.integers(1, 10), extra=st.integers(0, 30), tf=st.booleans(), seed=st.integers(0, 2**32))
def test_selective_copy_targets(n_copy, extra, tf, seed):
    T = 2 * n_copy + 1 + extra
    b = selective_copy(3, T, n_copy, 64, seed, teacher_forcing=tf)
    C = T - n_copy - 1
    lay = vocab_layout(64)
    assert np.all(b.inputs[:, C] == COPY)
    for r in range(3):
        ctx = b.inputs[r, :C]
        toks = ctx[ctx != BLANK]
        assert len(toks) == n_copy and np.all((toks >= lay.key_lo) & (toks < lay.value_hi))
        assert np.array_equal(b.targets[r, b.meta["scored_pos"][r]], toks)  # emitted in order
        assert np.array_equal(ctx[b.meta["src_pos"][r]], toks)
        after = b.inputs[r, C + 1 :]
        assert np.array_equal(after, toks) if tf else np.all(after == BLANK)
    assert np.all(b.meta["distance"] == b.meta["scored_pos"] - b.meta["src_pos"])


# ---------------------------------------------------------------------------------------------
# rebinding


@FAST
@given(
    n_pairs=st.integers(1, 8),
    frac_rebind=st.floats(0.0, 1.0),
    extra=st.integers(0, 20),
    gap_frac=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32),
)
def test_rebinding_latest_value(n_pairs, frac_rebind, extra, gap_frac, seed):
    R = int(round(frac_rebind * n_pairs))
    T = 4 * n_pairs + 2 * R + extra
    b = rebinding(3, T, n_pairs, R, 64, seed, gap=int(gap_frac * extra))
    lay = vocab_layout(64)
    m = b.meta
    assert m["rebound"].sum(axis=1).tolist() == [R] * 3
    for r in range(3):
        row = b.inputs[r]
        sep = int(np.nonzero(row == SEP)[0][0])
        latest, first = {}, {}
        for t in range(sep):  # independent scan of the context: key token followed by its value
            if lay.key_lo <= row[t] < lay.key_hi:
                first.setdefault(int(row[t]), int(row[t + 1]))
                latest[int(row[t])] = int(row[t + 1])
        assert len(first) == n_pairs
        for q in range(n_pairs):
            t, k = m["scored_pos"][r, q], m["query_key"][r, q]
            assert row[t] == k
            assert b.targets[r, t] == latest[k] == m["target"][r, q]
            assert m["old_value"][r, q] == first[k]
            assert m["rebound"][r, q] == (first[k] != latest[k])
            if m["rebound"][r, q]:
                assert row[m["rebind_pos"][r, q]] == k and row[m["rebind_pos"][r, q] + 1] == latest[k]
                assert m["rebind_distance"][r, q] == t - m["rebind_pos"][r, q] == m["distance"][r, q]
            else:
                assert m["rebind_pos"][r, q] == -1 and m["distance"][r, q] == t - m["bind_pos"][r, q]
            assert row[m["bind_pos"][r, q]] == k
        assert b.targets[r][b.targets[r] != IGNORE].size == n_pairs


def test_rebinding_staleness_metric():
    b = rebinding(8, 80, 6, 3, 128, 0)
    right = np.where(b.scored_mask, b.targets, 0)
    stale = right.copy()
    np.put_along_axis(stale, b.meta["scored_pos"], b.meta["old_value"], axis=1)
    assert accuracy(right, b.targets) == 1.0 and staleness(right, b) == 0.0
    assert staleness(stale, b) == 1.0
    by = accuracy_by("rebound", stale, b)
    assert by[True] == (0.0, 24) and by[False] == (1.0, 24)


def test_rebinding_gap_moves_rebind_block():
    near = rebinding(2, 100, 5, 2, 128, 0, gap=0)
    far = rebinding(2, 100, 5, 2, 128, 0, gap=60)
    rb = lambda b: b.meta["rebind_pos"][b.meta["rebound"]]  # noqa: E731
    assert rb(near).min() == 10 and rb(far).min() == 70
    assert far.meta["rebind_distance"][far.meta["rebound"]].max() < near.meta["rebind_distance"][near.meta["rebound"]].min()


# ---------------------------------------------------------------------------------------------
# MQAR


@FAST
@given(n_pairs=st.integers(1, 8), extra=st.integers(0, 20), rnq=st.booleans(), seed=st.integers(0, 2**32))
def test_mqar_faithful(n_pairs, extra, rnq, seed):
    V = 64
    T = 4 * n_pairs + extra
    b = mqar(3, T, n_pairs, V, seed, random_non_queries=rnq)
    m = b.meta
    for r in range(3):
        ctx = b.inputs[r, : 2 * n_pairs]
        keys, vals = ctx[0::2], ctx[1::2]
        assert np.all((keys >= 1) & (keys < V // 2)) and len(set(keys.tolist())) == n_pairs
        assert np.all((vals >= V // 2) & (vals < V)) and len(set(vals.tolist())) == n_pairs
        bound = dict(zip(keys.tolist(), vals.tolist()))
        pos = m["scored_pos"][r]
        assert len(set(pos.tolist())) == n_pairs
        assert np.all(pos >= 2 * n_pairs) and np.all((pos - 2 * n_pairs) % 2 == 0)
        for t in pos:
            assert b.targets[r, t] == bound[int(b.inputs[r, t])]  # value of the queried key
        assert sorted(b.inputs[r, pos].tolist()) == sorted(keys.tolist())  # each key queried once
        rest = np.ones(T, bool)
        rest[: 2 * n_pairs] = False
        rest[pos] = False
        if not rnq:
            assert np.all(b.inputs[r, rest] == 0)
    assert np.all(m["distance"] == m["scored_pos"] - m["key_pos"])
    assert b.n_scored == 3 * n_pairs


def test_mqar_power_law_vs_uniform_gaps():
    pl = mqar(256, 256, 16, 8192, 0)  # a = 0.01: short gaps dominate
    un = mqar(256, 256, 16, 8192, 0, uniform_gaps=True)
    a1 = mqar(256, 256, 16, 8192, 0, power_a=1.0)
    space = (256 - 32) // 2
    assert pl.meta["gap"].mean() < 0.35 * space
    assert abs(un.meta["gap"].mean() - (space - 1) / 2) < 0.05 * space
    assert np.array_equal(un.inputs, a1.inputs)
    # zoology assigns draws in order: earlier context keys tend to get shorter gaps under a=0.01
    assert pl.meta["gap"][:, 0].mean() < pl.meta["gap"][:, -1].mean()


# ---------------------------------------------------------------------------------------------
# metrics


def test_accuracy_logits_and_predictions():
    b = mqar(4, 64, 8, 128, 0)
    V = 128
    logits = np.zeros(b.targets.shape + (V,), np.float32)
    safe = np.where(b.scored_mask, b.targets, 0)
    np.put_along_axis(logits, safe[..., None], 1.0, axis=-1)
    assert accuracy(logits, b.targets) == 1.0
    assert accuracy(safe, b.targets) == 1.0
    wrong = safe.copy()
    wrong[:, :] = 0
    assert accuracy(wrong, b.targets) == 0.0
    half = safe.copy()
    half[:2] = 0
    assert accuracy(half, b.targets) == 0.5
    assert np.isnan(accuracy(np.zeros((2, 3), np.int32), np.full((2, 3), IGNORE)))
    with pytest.raises(ValueError, match="logits_or_predictions"):
        accuracy(np.zeros((4, 5)), b.targets)


def test_accuracy_by_distance_bins():
    b = far_pointer(40, 105, None, "random", 64, 0)
    preds = np.where(b.scored_mask, b.targets, 0)
    near = b.meta["distance"] < 50
    preds[~near, -1] = 0  # wrong on far needles
    by = accuracy_by("distance", preds, b, bins=[0, 50, 105])
    assert by[(0, 50)] == (1.0, int(near.sum()))
    assert by[(50, 105)] == (0.0, int((~near).sum()))
    per_value = accuracy_by("distance", preds, b)
    assert sum(n for _, n in per_value.values()) == 40
    mq = mqar(8, 64, 8, 128, 0)
    grouped = accuracy_by("gap", np.where(mq.scored_mask, mq.targets, 0), mq)
    assert all(acc == 1.0 for acc, _ in grouped.values()) and sum(n for _, n in grouped.values()) == 64
    with pytest.raises(ValueError, match="meta_key"):
        accuracy_by("nope", preds, b)


# ---------------------------------------------------------------------------------------------
# continuous streams


@FAST
@given(
    T=st.integers(1, 60),
    depth=st.floats(0.0, 1.0),
    haystack=st.sampled_from(["filler", "random", "needles"]),
    seed=st.integers(0, 2**32),
)
def test_kv_far_pointer(T, depth, haystack, seed):
    s = kv_stream_far_pointer(6, 3, T, depth, haystack, seed)
    p = s.meta["needle_index"]
    assert p == round(depth * (T - 1)) and s.meta["distance"] == T - 1 - p
    np.testing.assert_array_equal(s.queries[0], s.keys[p])
    np.testing.assert_array_equal(s.targets[0], s.values[p])
    others = np.delete(s.keys, p, axis=0)
    assert not np.any(np.all(others == s.keys[p], axis=1))  # the needle key is unique


def test_kv_filler_really_repeats():
    s = kv_stream_far_pointer(8, 4, 41, 0.5, "filler", 0, n_filler=4)
    p = s.meta["needle_index"]
    hk, hv = np.delete(s.keys, p, axis=0), np.delete(s.values, p, axis=0)
    assert np.array_equal(hk[4:], hk[:-4]) and np.array_equal(hv[4:], hv[:-4])
    assert len(np.unique(hk, axis=0)) == 4
    r = kv_stream_far_pointer(8, 4, 41, 0.5, "random", 0)
    assert len(np.unique(r.keys, axis=0)) == 41
    n = kv_stream_far_pointer(8, 4, 41, 0.5, "needles", 0, n_needles_distractor=7)
    assert len(n.meta["distractor_index"]) == 7 and p not in n.meta["distractor_index"]
    assert len(np.unique(n.keys, axis=0)) == 4 + 7 + 1


def test_kv_pairs():
    s = kv_stream_pairs(16, 5, 10, 0, orthogonal_keys=True)
    np.testing.assert_allclose(s.keys @ s.keys.T, np.eye(10), atol=1e-5)
    np.testing.assert_array_equal(s.queries, s.keys[s.meta["pair_index"]])
    np.testing.assert_array_equal(s.targets, s.values[s.meta["pair_index"]])
    assert sorted(s.meta["pair_index"].tolist()) == list(range(10))
    # a linear memory M = sum v k^T recalls orthogonal associations exactly
    M = s.values.T @ s.keys
    np.testing.assert_allclose(s.queries @ M.T, s.targets, atol=1e-5)
    few = kv_stream_pairs(16, 5, 10, 0, n_queries=3, query_noise=0.1)
    assert few.queries.shape == (3, 16) and not np.array_equal(few.queries, few.keys[few.meta["pair_index"]])


def test_kv_rebinding_latest():
    s = kv_stream_rebinding(8, 4, 6, 3, 0, gap=5, tail=2, haystack="filler")
    m = s.meta
    assert s.keys.shape[0] == 6 + 5 + 3 + 2
    assert m["rebound"].sum() == 3
    for q in range(6):
        writes = np.nonzero(np.all(s.keys == s.queries[q], axis=1))[0]
        np.testing.assert_array_equal(s.targets[q], s.values[writes[-1]])  # latest write
        np.testing.assert_array_equal(m["old_targets"][q], s.values[writes[0]])
        assert len(writes) == (2 if m["rebound"][q] else 1)
        assert m["distance"][q] == s.keys.shape[0] - 1 - writes[-1]


# ---------------------------------------------------------------------------------------------
# bad knobs


BAD = [
    (far_pointer, dict(batch=0, seq_len=20, depth=0.5), "batch"),
    (far_pointer, dict(batch=2, seq_len=4, depth=0.5), "seq_len"),
    (far_pointer, dict(batch=2, seq_len=20, depth=1.5), "depth"),
    (far_pointer, dict(batch=2, seq_len=20, depth=-0.1), "depth"),
    (far_pointer, dict(batch=2, seq_len=20, depth=[0.1, 0.2, 0.3]), "depth"),
    (far_pointer, dict(batch=2, seq_len=20, depth=0.5, haystack="essay"), "haystack"),
    (far_pointer, dict(batch=2, seq_len=20, depth=0.5, vocab_size=5), "vocab_size"),
    (far_pointer, dict(batch=2, seq_len=20, depth=0.5, vocab_size=-3), "vocab_size"),
    (far_pointer, dict(batch=2, seq_len=20, depth=0.5, haystack="needles", n_needles_distractor=50), "n_needles_distractor"),
    (far_pointer, dict(batch=2, seq_len=20, depth=0.5, haystack="filler", n_needles_distractor=2), "n_needles_distractor"),
    (far_pointer, dict(batch=2, seq_len=20, depth=0.5, filler_period=0), "filler_period"),
    (far_pointer, dict(batch=2, seq_len=20, depth=0.5, seed=-1), "seed"),
    (selective_copy, dict(batch=2, seq_len=10, n_copy=5), "seq_len"),
    (selective_copy, dict(batch=2, seq_len=10, n_copy=0), "n_copy"),
    (rebinding, dict(batch=2, seq_len=20, n_pairs=4, n_rebinds=3), "seq_len"),
    (rebinding, dict(batch=2, seq_len=80, n_pairs=4, n_rebinds=5), "n_rebinds"),
    (rebinding, dict(batch=2, seq_len=80, n_pairs=4, n_rebinds=2, gap=100), "gap"),
    (rebinding, dict(batch=2, seq_len=80, n_pairs=4, n_rebinds=2, gap=-1), "gap"),
    (rebinding, dict(batch=2, seq_len=400, n_pairs=30, n_rebinds=0, vocab_size=32), "n_pairs"),
    (rebinding, dict(batch=2, seq_len=400, n_pairs=8, n_rebinds=8, vocab_size=40), "vocab_size"),
    (mqar, dict(batch=2, seq_len=30, n_pairs=8), "seq_len"),
    (mqar, dict(batch=2, seq_len=64, n_pairs=8, vocab_size=16), "vocab_size"),
    (mqar, dict(batch=2, seq_len=64, n_pairs=8, power_a=0.0), "power_a"),
    (mqar, dict(batch=2, seq_len=64, n_pairs=0), "n_pairs"),
    (kv_stream_far_pointer, dict(d_k=0, d_v=4, seq_len=10, depth=0.5), "d_k"),
    (kv_stream_far_pointer, dict(d_k=4, d_v=4, seq_len=10, depth=2.0), "depth"),
    (kv_stream_far_pointer, dict(d_k=4, d_v=4, seq_len=0, depth=0.5), "seq_len"),
    (kv_stream_far_pointer, dict(d_k=4, d_v=4, seq_len=10, depth=0.5, haystack="needles", n_needles_distractor=10), "n_needles_distractor"),
    (kv_stream_far_pointer, dict(d_k=4, d_v=4, seq_len=10, depth=0.5, query_noise=-1.0), "query_noise"),
    (kv_stream_pairs, dict(d_k=4, d_v=4, n_pairs=5, orthogonal_keys=True), "n_pairs"),
    (kv_stream_pairs, dict(d_k=4, d_v=4, n_pairs=5, n_queries=6), "n_queries"),
    (kv_stream_rebinding, dict(d_k=4, d_v=4, n_pairs=3, n_rebinds=4), "n_rebinds"),
    (kv_stream_rebinding, dict(d_k=4, d_v=4, n_pairs=3, n_rebinds=1, haystack="needles"), "haystack"),
]


@pytest.mark.parametrize("fn,kwargs,arg", BAD, ids=[f"{f.__name__}-{a}-{i}" for i, (f, _, a) in enumerate(BAD)])
def test_bad_knobs_raise_naming_argument(fn, kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        fn(**kwargs)


def test_wrong_types_raise_type_error():
    with pytest.raises(TypeError, match="batch"):
        far_pointer(2.0, 20, 0.5)
    with pytest.raises(TypeError, match="seed"):
        mqar(2, 64, 8, seed=None)
    with pytest.raises(TypeError, match="depth"):
        far_pointer(2, 20, "deep")


# ---------------------------------------------------------------------------------------------
# streams of the drift and gating claims, and seed derivation


def test_rewrite_stream_targets_latest_value():
    s = kv_stream_rewrites(8, 5, (1, 3), 2, 4, seed=3)
    assert np.array_equal(s.keys, kv_stream_rewrites(8, 5, (1, 3), 2, 4, seed=3).keys)  # pure
    assert not np.array_equal(s.keys, kv_stream_rewrites(8, 5, (1, 3), 2, 4, seed=4).keys)
    for i, key in enumerate(s.queries):
        written = np.flatnonzero(np.all(s.keys == key, axis=1))
        assert np.array_equal(s.values[written[-1]], s.targets[i])  # the latest binding
        assert len(s.meta["older"][i]) == len(written) - 1 >= 1
    assert np.all(s.query_index == len(s.keys) - 1)


def test_switch_stream_rebinds_once():
    s = kv_stream_switch(8, period=4, before=3, after=2, seed=0)
    at_key = np.flatnonzero(np.all(s.keys == s.queries[0], axis=1))
    assert at_key.tolist() == [0, 4, 8, 12, 16] and s.meta["switch"] == 12
    assert np.array_equal(s.values[16], s.targets[0]) and not np.array_equal(s.values[0], s.targets[0])
    assert s.meta["candidates"].shape[0] == 2 + 4


def test_overwrite_stream_ages():
    s = kv_stream_overwrites(8, 200, 6, 0.2, seed=1)
    for i, key in enumerate(s.queries):
        last = np.flatnonzero(np.all(s.keys == key, axis=1))[-1]
        assert np.array_equal(s.values[last], s.targets[i]) and s.meta["age"][i] == 199 - last


@pytest.mark.parametrize("call, arg", [
    (lambda: kv_stream_rewrites(8, 5, (3, 1), 2, 4, 0), "rewrites"),
    (lambda: kv_stream_rewrites(8, 0, (1, 2), 2, 4, 0), "n_keys"),
    (lambda: kv_stream_switch(8, 0, 3, 2, 0), "period"),
    (lambda: kv_stream_overwrites(8, 10, 20, 0.1, 0), "pool"),
    (lambda: kv_stream_overwrites(8, 100, 4, 1.5, 0), "p_overwrite"),
    (lambda: derived_seed(), "parts"),
    (lambda: derived_seed(1, -2), "parts"),
])
def test_stream_knobs_name_the_argument(call, arg):
    with pytest.raises((ValueError, TypeError), match=arg):
        call()


def test_derived_seed_is_stable_and_distinct():
    assert derived_seed(0, 64, 1) == derived_seed(0, 64, 1)
    assert len({derived_seed(s, 64, t) for s in range(5) for t in range(5)}) == 25
