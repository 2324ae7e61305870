"""The NumPy twin of the memory recurrence in ``titans/probes/mixers.py`` (used by the token-mixer claims)
agrees with ``memory_scan(chunk_size=1)``, also when a stream is fed in pieces."""

import numpy as np
import pytest

from titans.probes import mixers as M


def stream(seed, rows=3, T=40, d=8):
    rng = np.random.default_rng(seed)
    keys = rng.standard_normal((rows, T, d)).astype(np.float32)
    keys /= np.linalg.norm(keys, axis=-1, keepdims=True)
    values = (rng.standard_normal((rows, T, d)) / np.sqrt(d)).astype(np.float32)
    return keys, values


@pytest.mark.parametrize("spec", [
    M.MemorySpec(depth=1, theta=0.3, eta=0.0, alpha=0.0),
    M.MemorySpec(depth=1, theta=0.05, eta=0.9, alpha=0.01),
    M.MemorySpec(depth=2, theta=0.1, eta=0.5, alpha=0.02, hidden=12),
    M.MemorySpec(depth=3, theta=0.02, eta=0.8, alpha=0.0, hidden=6),
])
def test_online_scan_matches_memory_scan(spec):
    keys, values = stream(1)
    assert M.check_online_against_memory_scan(spec, keys, values, steps=40, rows=3) <= 1e-5


def test_online_scan_with_per_token_gates_matches_memory_scan():
    keys, values = stream(2)
    rng = np.random.default_rng(3)
    lr, eta, alpha = (rng.uniform(0, hi, (3, 40)).astype(np.float32) for hi in (0.3, 0.95, 0.05))
    spec = M.MemorySpec(depth=2, hidden=10)
    assert M.check_online_against_memory_scan(spec, keys, values, steps=40, rows=3, lr=lr, momentum=eta,
                                              decay=alpha) <= 1e-5


def test_online_scan_in_pieces_equals_one_call():
    keys, values = stream(4)
    spec = M.MemorySpec(depth=2, theta=0.1, eta=0.9, alpha=0.01, hidden=8)
    w0 = M.init_weights(spec, 8, 8, 0)
    whole = M.online_scan(w0, keys, values, spec.theta, spec.eta, spec.alpha, [39], keys[:, :2])
    first = M.online_scan(w0, keys[:, :17], values[:, :17], spec.theta, spec.eta, spec.alpha, [16], keys[:, :2])
    second = M.online_scan(first.weights, keys[:, 17:], values[:, 17:], spec.theta, spec.eta, spec.alpha, [22],
                           keys[:, :2], momenta=first.extra["momenta"])
    np.testing.assert_allclose(second.reads, whole.reads, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# recall_vs_distance: the experiment shared by the recall claims and the notebook
# --------------------------------------------------------------------------------------------


def test_recall_vs_distance_mixers_behave():
    specs = M.recall_specs(16, depths=(1,))
    res = M.recall_vs_distance(256, [1, 16, 200], d_k=16, seeds=(0, 1), specs=specs,
                               mixers=("attention", "SWA", "hybrid (L_M=1)"), windows={"SWA": 64, "hybrid": 64})
    assert res["distances"] == [1, 16, 200]
    recall = {name: r.mean(axis=0).tolist() for name, r in res["recall"].items()}
    assert recall["attention"] == [1.0, 1.0, 1.0]  # the QKNorm temperature retrieves any needle in context
    assert recall["SWA"][:2] == [1.0, 1.0] and recall["SWA"][2] < 0.2  # ... unless it slid out of the window
    assert res["recall"]["memory L_M=1"].shape == (2, 3)
    assert all(0 < c < 0.1 for c in res["chance"]["attention"].ravel())  # foils keep chance low
    assert res["checks"]["memory L_M=1"] < 1e-4  # the NumPy recurrence agrees with memory_scan
    with pytest.raises(ValueError, match="mixers"):
        M.recall_vs_distance(256, [1], d_k=16, seeds=(0,), specs={}, mixers=("lstm",))
    with pytest.raises(ValueError, match="distances"):
        M.recall_vs_distance(256, [300], d_k=16, seeds=(0,), specs=specs)
    with pytest.raises(ValueError, match="specs"):
        M.recall_vs_distance(256, [1], d_k=16, seeds=(0,), specs={}, mixers=("hybrid (L_M=2)",),
                             windows={"hybrid": 64})


def test_notebook_and_recall_claims_call_the_same_experiment():
    """The notebook's live experiment reruns what the recall claims measure: both call
    ``recall_vs_distance`` with the recall default memories."""
    import inspect
    from pathlib import Path

    import claims.test_recall as recall_claims

    source = inspect.getsource(recall_claims.haystack_run)
    assert "M.recall_vs_distance(" in source and "M.recall_specs(" in source
    notebook = (Path(__file__).resolve().parent.parent / "notebooks" / "titans_claims.py").read_text(encoding="utf-8")
    assert "mixers.recall_vs_distance(" in notebook and "mixers.recall_specs(" in notebook
    assert "analysis.kv_recall" not in notebook


def test_recall_vs_distance_chunked_memories_hybrids_and_stream_options():
    specs = M.recall_specs(16, depths=(1,), chunks=(1, 16))
    assert list(specs) == ["memory L_M=1", "memory L_M=1, chunk 16"] == [M.memory_name(1), M.memory_name(1, 16)]
    assert specs["memory L_M=1, chunk 16"].chunk == 16
    assert M.hybrid_name(M.memory_name(1, 16)) == "hybrid (L_M=1, chunk 16)"
    with pytest.raises(ValueError, match="memory"):
        M.hybrid_name("L_M=1")
    kw = dict(d_k=16, seeds=(0,), trials=2, specs=specs, mixers=("hybrid (L_M=1, chunk 16)",), windows={"hybrid": 64})
    res = M.recall_vs_distance(256, [1, 16, 200], haystack="needles", stream_options={"n_needles_distractor": 4}, **kw)
    assert set(res["checks"]) == {"memory L_M=1"}  # a chunked memory is read from memory_scan itself
    assert res["recall"]["hybrid (L_M=1, chunk 16)"].shape == (1, 3)
    assert set(res["nonfinite"]) == set(specs) and all(x.shape == (1, 3) for x in res["nonfinite"].values())
    # the options reach the stream generator: no distractor pairs leaves the filler haystack
    none = M.recall_vs_distance(256, [1, 16, 200], haystack="needles", stream_options={"n_needles_distractor": 0}, **kw)
    filler = M.recall_vs_distance(256, [1, 16, 200], haystack="filler", **kw)
    for name in filler["recall"]:
        np.testing.assert_array_equal(none["recall"][name], filler["recall"][name])
    with pytest.raises(TypeError):
        M.recall_vs_distance(256, [1], haystack="filler", stream_options={"no_such_option": 1}, **kw)
    with pytest.raises(ValueError, match="needs 'memory L_M=2'"):
        M.recall_vs_distance(256, [1], d_k=16, seeds=(0,), specs=specs, mixers=("hybrid (L_M=2)",),
                             windows={"hybrid": 64})
