"""Interference: contextual vs persistent memory, recall vs number of distractors, and
forgetting of earlier items as writes accumulate. Read-outs and decoding: ``titans/probes/mixers.py``.

* ``interference.persistent-untouched`` (structural) -- every Titans variant at size ``tiny``:
  prefill + token-by-token decode with a cache; every persistent parameter must be bit-identical
  afterwards, while the memory state in the cache must have changed (so the check is not vacuous).
* ``failure.interference`` (mixer level) -- ``N_p`` fixed random persistent pairs (input
  independent, one set per seed) are written to the memory before the context, as MAG/LMM feed
  ``[p ‖ x]`` to the memory, and stay visible to the attention (``n_prefix``). Context:
  ``kv_stream_far_pointer(haystack="needles")``, the needle at a random depth among
  ``n_distractors`` other pairs over the filler cycle; the needle is queried at the end. Mixers:
  memory L_M = 1 and 2 (recall defaults), SWA with the persistent prefix, MAC-style hybrid (memory
  L_M = 2) with the prefix. Headline: per seed, the min over mixers and ``N_p > 0`` of
  recall(N_p) − recall(0). Also recorded: what persistent memory buys (recall of the persistent
  pairs themselves at the end of the context, attention-visible prefix vs written once into the
  memory), recall vs number of distractors (all mixers) and recall vs age of ``2 d_k`` pairs
  written once (forgetting as writes accumulate).
"""

from __future__ import annotations

import numpy as np
import pytest
from mlx.utils import tree_flatten

import mlx.core as mx

from titans.probes import mixers as M
from titans.layers.neural_memory import NeuralMemoryCache
from titans.models import create_model
from titans.reporting import mean_ci
from titans.reporting.verdicts import sanity, settle
from titans.tasks import derived_seed, kv_stream_far_pointer, kv_stream_pairs

UNTOUCHED, INTERFERENCE = "interference.persistent-untouched", "failure.interference"
DISTRACTOR_GRID = (0, 8, 16, 32, 64, 128, 256)


# --------------------------------------------------------------------------------------------
# interference.persistent-untouched
# --------------------------------------------------------------------------------------------


def _memory_states(cache) -> list:
    """The ``MemoryState`` of every layer of a model cache (each Titans layer cache holds its
    memory layer's ``NeuralMemoryCache`` as ``.memory``)."""
    memories = [getattr(c, "memory", None) for c in cache]
    return [m.memory for m in memories if isinstance(m, NeuralMemoryCache) and m.memory is not None]


@pytest.mark.claim(UNTOUCHED)
def test_persistent_tokens_untouched(claim, claim_record, scale):
    cfg = claim.scales[scale]
    verdicts = {}
    for name in cfg["models"]:
        model = create_model(name, "tiny", seed=0)
        mx.eval(model.parameters())
        before = {k: np.array(v) for k, v in tree_flatten(model.parameters())}
        persistent = [k for k in before if "persistent" in k]
        initial_memory = [np.array(v) for k, v in tree_flatten(model.parameters()) if k.endswith("memory_weights.0")]
        sanity(persistent, f"{name}: no parameter named 'persistent' found (the check would be vacuous)")
        sanity(initial_memory, f"{name}: no parameter named '...memory_weights.0' found")
        rng = np.random.default_rng(0)
        tokens = mx.array(rng.integers(0, model.args.vocab_size, (2, cfg["tokens"])).astype(np.int32))
        cache = model.make_cache()
        logits = model(tokens, cache)
        for _ in range(cfg["decode"]):
            nxt = mx.argmax(logits[:, -1:], axis=-1).astype(mx.int32)
            logits = model(nxt, cache)
        mx.eval(logits)
        after = {k: np.array(v) for k, v in tree_flatten(model.parameters())}
        states = _memory_states(cache)
        sanity(states, f"{name}: no memory state found in the cache")
        wrote = any(not np.array_equal(np.array(s.weights[0])[0], initial_memory[0]) for s in states) if states and initial_memory else False
        same_persistent = bool(persistent) and all(np.array_equal(before[k], after[k]) for k in persistent)
        same_all = all(np.array_equal(before[k], after[k]) for k in before)
        verdicts[name] = dict(persistent=len(persistent), same_persistent=same_persistent, same_all=same_all,
                              memory_states=len(states), memory_wrote=wrote)
    ok = all(v["same_persistent"] and v["memory_wrote"] for v in verdicts.values())
    claim_record.value("persistent parameters bit-identical and memory updated (all variants)", ok)
    for name, v in verdicts.items():
        claim_record.value(f"{name}: persistent tensors unchanged", v["same_persistent"])
        claim_record.value(f"{name}: memory state changed by the writes", v["memory_wrote"])
    claim_record.note("; ".join(f"{n}: {v['persistent']} persistent tensors, all parameters unchanged={v['same_all']}, "
                                f"{v['memory_states']} memory states" for n, v in verdicts.items()))
    assert claim.holds(ok), claim.describe(ok) + f" {verdicts}"


# --------------------------------------------------------------------------------------------
# failure.interference
# --------------------------------------------------------------------------------------------


def _specs(d):
    return {"memory L_M=1": M.calibrated(M.TITANS_DEFAULT, d),
            "memory L_M=2": M.calibrated(M.TITANS_DEFAULT.but(depth=2, hidden=2 * d), d)}


def _hits(y, cands, targets):
    """y (B, Q, d) or (B, Q, H, d) with retnet; cands list of (C, d); targets (B, Q, d) -> (B, Q)."""
    return np.stack([M.is_target(y[b], cands[b][None], targets[b]) for b in range(len(cands))])


@pytest.mark.claim(INTERFERENCE)
def test_interference_persistent_vs_contextual(claim, claim_record, scale):
    """Persistent pairs written to the memory before the context take capacity from it: the deep
    memory (and the MAC-style hybrid that reads it) can lose needle recall, while SWA sees the pairs
    only as an attention prefix. Every mixer's difference is recorded; the verdict comes from the
    95% interval over seeds of the per-seed minimum."""
    cfg = claim.scales[scale]
    d, T, seeds, trials, window = cfg["d_k"], cfg["seq_len"], list(cfg["seeds"]), cfg["trials"], cfg["window"]
    n_max = max(cfg["n_persistent"])
    row_seeds = [derived_seed(s, t, 10) for s in seeds for t in range(trials)]
    streams = [kv_stream_far_pointer(d, d, T, None, "needles", seed=r, n_needles_distractor=cfg["n_distractors"])
               for r in row_seeds]
    seed_of_row = np.repeat(np.arange(len(seeds)), trials)
    pk, pv = {}, {}
    for i, s in enumerate(seeds):  # persistent pairs: fixed per seed, independent of the input
        rng = np.random.default_rng(derived_seed(s, 11))
        pk[i] = M.unit(rng.standard_normal((n_max, d))).astype(np.float32)
        pv[i] = (rng.standard_normal((n_max, d)) / np.sqrt(d)).astype(np.float32)
    specs = _specs(d)
    K0 = np.stack([s.keys for s in streams])
    V0 = np.stack([s.values for s in streams])
    checks = {n: M.check_online_against_memory_scan(sp, K0, V0) for n, sp in specs.items()}
    for n, err in checks.items():
        sanity(err < 1e-4, f"{n}: online_scan disagrees with memory_scan(chunk_size=1): max rel diff {err:.2e}")
    tau = M.qknorm_scale(T + n_max)
    recall, persistent_recall = {}, {}
    for n_p in cfg["n_persistent"]:
        K = np.stack([np.concatenate([pk[seed_of_row[b]][:n_p], s.keys]) for b, s in enumerate(streams)])
        V = np.stack([np.concatenate([pv[seed_of_row[b]][:n_p], s.values]) for b, s in enumerate(streams)])
        Qn = np.stack([s.queries for s in streams])  # the needle
        Qp = np.stack([pk[seed_of_row[b]][:n_p] for b in range(len(streams))]) if n_p else None
        targets_n = np.stack([s.targets for s in streams])
        cands = [np.concatenate([M.candidate_first_index(V[b])[0], M.foils(b, M.N_FOILS, d)]) for b in range(len(streams))]
        t_end = [K.shape[1] - 1]
        mem = {}
        for name, spec in specs.items():
            Q = Qn if not n_p else np.concatenate([Qn, Qp], axis=1)
            with np.errstate(all="ignore"):
                mem[name] = M.memory_reads(spec, K, V, t_end, Q, seed=0).reads[:, 0]  # (B, 1 + n_p, d)
            recall[(name, n_p)] = _hits(mem[name][:, :1], cands, targets_n)[:, 0]
            if n_p:
                targets_p = np.stack([pv[seed_of_row[b]][:n_p] for b in range(len(streams))])
                persistent_recall[(name, n_p)] = _hits(mem[name][:, 1:], cands, targets_p).mean(axis=1)
        # attention: context keys only, persistent pairs as an always-visible prefix (per seed)
        for i in range(len(seeds)):
            rows = np.flatnonzero(seed_of_row == i)
            Kc = np.stack([streams[b].keys for b in rows])
            Vc = np.stack([streams[b].values for b in rows])
            prefix = (pk[i][:n_p], pv[i][:n_p]) if n_p else None
            swa = M.attention_reads(Kc, Vc, [T - 1], Qn[rows], scale=tau, window=window, prefix=prefix)[:, 0]
            hyb = M.hybrid_reads(mem["memory L_M=2"][rows][:, None, :1], Kc, Vc, [T - 1], Qn[rows], scale=tau,
                                 window=window, prefix=prefix)[:, 0]
            for name, y in (("SWA + prefix", swa), ("hybrid (L_M=2) + prefix", hyb)):
                recall.setdefault((name, n_p), np.zeros(len(streams)))[rows] = _hits(
                    y, [cands[b] for b in rows], targets_n[rows])[:, 0]
            if n_p:
                yp = M.attention_reads(Kc, Vc, [T - 1], np.broadcast_to(pk[i][:n_p], (len(rows), n_p, d)),
                                       scale=tau, window=window, prefix=prefix)[:, 0]
                persistent_recall.setdefault(("SWA + prefix", n_p), np.zeros(len(streams)))[rows] = _hits(
                    yp, [cands[b] for b in rows], np.broadcast_to(pv[i][:n_p], (len(rows), n_p, d))).mean(axis=1)
    mixers = sorted({m for m, _ in recall})
    per_seed = lambda x: np.asarray(x, float).reshape(len(seeds), trials).mean(axis=1)
    diffs = {(m, n): per_seed(recall[(m, n)]) - per_seed(recall[(m, 0)]) for m in mixers for n in cfg["n_persistent"] if n}
    worst = np.min(np.stack(list(diffs.values())), axis=0)
    headline = mean_ci(worst)
    claim_record.value("min over mixers, N_p > 0 of recall(N_p) - recall(0)", headline)
    claim_record.seeds(seeds)
    for (m, n), v in diffs.items():
        claim_record.value(f"{m}, N_p={n}: recall difference", mean_ci(v))
    for m in mixers:
        claim_record.curve(f"{m}: needle recall vs N_p", list(cfg["n_persistent"]),
                           [float(np.mean(recall[(m, n)])) for n in cfg["n_persistent"]],
                           panel="needle recall vs persistent pairs (SWA, hybrid: as a prefix)",
                           series=m.removesuffix(" + prefix"), xlabel="persistent pairs N_p",
                           ylabel="needle recall", xscale="symlog", ylim=[0, 1])
    for (m, n), v in persistent_recall.items():
        claim_record.value(f"what persistent memory holds: recall of the N_p={n} persistent pairs at the end, {m}",
                           mean_ci(per_seed(v)))
    _distractor_and_age_curves(claim_record, cfg, seeds)
    claim_record.note(f"d_k={d}, L={T}, window {window}, {cfg['n_distractors']} distractor pairs; "
                      + "; ".join(f"{k}: {v.label()}" for k, v in specs.items())
                      + "; online vs memory_scan " + ", ".join(f"{k} {v:.1e}" for k, v in checks.items()))
    settle(claim, headline, what="min over mixers and N_p")


def _distractor_and_age_curves(claim_record, cfg, seeds):
    """Recall vs number of distractor pairs (all mixers) and recall vs age (memory)."""
    d, T, window, trials = cfg["d_k"], cfg["seq_len"], cfg["window"], 8
    specs = _specs(d)
    tau = M.qknorm_scale(T)
    curves = {}
    for n_dis in DISTRACTOR_GRID:
        rs = [derived_seed(s, t, n_dis, 12) for s in seeds for t in range(trials)]
        streams = [kv_stream_far_pointer(d, d, T, None, "needles", seed=r, n_needles_distractor=n_dis) for r in rs]
        K, V, Q = (np.stack([getattr(s, a) for s in streams]) for a in ("keys", "values", "queries"))
        tg = np.stack([s.targets for s in streams])
        cands = [np.concatenate([M.candidate_first_index(s.values)[0], M.foils(b, M.N_FOILS, d)]) for b, s in enumerate(streams)]
        ys = {}
        for name, spec in specs.items():
            with np.errstate(all="ignore"):
                ys[name] = M.memory_reads(spec, K, V, [T - 1], Q, seed=0).reads[:, 0]
        ys["attention"] = M.attention_reads(K, V, [T - 1], Q, scale=tau)[:, 0]
        ys["SWA"] = M.attention_reads(K, V, [T - 1], Q, scale=tau, window=window)[:, 0]
        for name, y in ys.items():
            curves.setdefault(name, []).append(float(_hits(y, cands, tg).mean()))
        ret = M.retention_reads(K, V, [T - 1], Q)[:, 0]
        curves.setdefault("RetNet", []).append(float(np.mean([M.is_target(ret[b], cands[b][None], tg[b], retnet=True)
                                                             for b in range(len(streams))])))
    for name, ys in curves.items():
        claim_record.curve(f"{name}: recall vs distractor pairs", list(DISTRACTOR_GRID), ys,
                           panel=f"needle recall vs distractors (L={T})", series=name,
                           xlabel="distractor pairs in the stream (needle at a random depth)", ylabel="needle recall",
                           xscale="symlog", ylim=[0, 1], length=T)
    n_pairs = 2 * d
    streams = [kv_stream_pairs(d, d, n_pairs, seed=derived_seed(s, t, 13), shuffle_queries=False)
               for s in seeds for t in range(trials)]
    K, V, Q = (np.stack([getattr(s, a) for s in streams]) for a in ("keys", "values", "queries"))
    tg = np.stack([s.targets for s in streams])
    cands = [np.concatenate([s.values, M.foils(b, M.N_FOILS, d)]) for b, s in enumerate(streams)]
    ages = (n_pairs - 1 - np.arange(n_pairs)).tolist()
    for name, spec in specs.items():
        with np.errstate(all="ignore"):
            y = M.memory_reads(spec, K, V, [n_pairs - 1], Q, seed=0).reads[:, 0]
        hits = _hits(y, cands, tg).mean(axis=0)  # per pair, write order
        claim_record.curve(f"{name}: recall vs age ({n_pairs} pairs written once)", ages[::-1], hits[::-1].tolist(),
                           panel=f"recall vs age ({n_pairs} pairs written once)", series=name,
                           xlabel="writes since the pair was written", ylabel="recall accuracy", ylim=[0, 1])
