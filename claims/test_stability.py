"""Numerical stability of the Titans memory over long streams and the divergence boundary (the
library's property-based edge cases are in ``tests/test_memory_properties.py``).

* ``stability.streaming-bounded`` -- ≥ 256k tokens (CI; 2M full) of random unit keys and values
  ``N(0, 1/d)``, generated and scanned piece by piece (8k tokens, state carried, ``mx.eval``
  between pieces: constant memory). The weight norm is recorded after every piece; the test asserts
  every state finite and reports ``max ‖M‖_F`` over the second half / over the first half. Two
  configurations, one row each: the gates a fresh ``NeuralMemory`` starts with (L_M = 2, hidden
  ``2 d_k``, chunk 64, ``θ = lr_scale σ(b_θ)``, ``η = σ(b_η)``, ``α = σ(b_α)`` of
  ``MemoryConfig.paper()``, the initialization registered with the claim) and
  the recall default of ``titans/probes/mixers.py`` (matrix memory, token recurrence, α = 0). The first
  half includes the initial weights (t = 0), so a memory that collapses to 0 within the first
  piece reads as a ratio of 0 rather than 0/0; such a collapse is recorded as its own value and
  note.
* ``stability.divergence-detected`` -- unnormalized Gaussian keys (``‖k‖² ≈ d_k``) over a θ grid,
  scanned with ``titans.diagnostics.guarded_memory_scan``: every run must end finite and bounded
  or raise ``MemoryDivergedError`` naming the first failing chunk; at least one must diverge. The
  ℓ2-normalized control runs the same θ grid.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import mlx.core as mx

from titans.probes import mixers as M
from titans.diagnostics import MemoryDivergedError, guarded_memory_scan, state_norms
from titans.ops.memory import memory_scan
from titans.layers.neural_memory import MemoryConfig
from titans.reporting import mean_ci
from titans.reporting.verdicts import sanity, settle

BOUNDED, DIVERGE = "stability.streaming-bounded", "stability.divergence-detected"


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def neural_memory_initial_gates() -> dict:
    """θ, η, α of the registered protocol: the gates a ``NeuralMemory`` started with when the claim
    was registered, i.e. ``MemoryConfig.paper()`` (θ = 0.02 σ(−2), η = σ(2.2), α = σ(−4))."""
    config = MemoryConfig.paper()
    b_theta, b_eta, b_alpha = config.gate_bias
    return dict(theta=config.lr_scale * _sigmoid(b_theta), eta=config.momentum_max * _sigmoid(b_eta),
                alpha=_sigmoid(b_alpha), chunk=config.chunk_size)


def _piece(seed: int, index: int, rows: int, n: int, d: int, normalize: bool = True):
    rng = np.random.default_rng([seed, index, 17])
    k = rng.standard_normal((rows, n, d)).astype(np.float32)
    if normalize:
        k /= np.linalg.norm(k, axis=-1, keepdims=True)
    v = (rng.standard_normal((rows, n, d)) / math.sqrt(d)).astype(np.float32)
    return k, v


def _stream_norms(config: str, seeds, tokens: int, piece: int, d_k: int):
    """Weight norm (rows = seeds) after every piece, and the spec used."""
    n_pieces = tokens // piece
    norms = np.zeros((len(seeds), n_pieces + 1))  # column 0: the initial weights (t = 0)
    if config == "NeuralMemory initial gates":
        g = neural_memory_initial_gates()
        spec = M.MemorySpec(depth=2, hidden=2 * d_k, theta=g["theta"], eta=g["eta"], alpha=g["alpha"],
                            chunk=g["chunk"])
        ws = tuple(mx.array(w) for w in M.init_weights(spec, d_k, d_k, 0))
        norms[:, 0] = math.sqrt(sum(n ** 2 for n in state_norms(ws)))
        state = None
        ones = mx.ones((len(seeds), piece))
        for i in range(n_pieces):
            k, v = (np.concatenate([_piece(s, i, 1, piece, d_k)[j] for s in seeds]) for j in (0, 1))
            km = mx.array(k)
            _, state = memory_scan(ws, km, km, mx.array(v), spec.theta * ones, spec.eta * ones,
                                   spec.alpha * ones, spec.chunk, state, validate=False)
            mx.eval(*state.arrays)
            for r in range(len(seeds)):
                norms[r, i + 1] = math.sqrt(sum(n ** 2 for n in state_norms([w[r] for w in state.weights])))
    else:
        spec = M.calibrated(M.TITANS_DEFAULT, d_k)
        k0, v0 = (np.concatenate([_piece(s, 0, 1, piece, d_k)[j] for s in seeds]) for j in (0, 1))
        err = M.check_online_against_memory_scan(spec, k0, v0)
        sanity(err < 1e-4, f"online_scan disagrees with memory_scan(chunk_size=1): max rel diff {err:.2e}")
        ws, moms = M.init_weights(spec, d_k, d_k, 0), None
        norms[:, 0] = math.sqrt(sum(float(np.sum(np.square(w, dtype=np.float64))) for w in ws))
        for i in range(n_pieces):
            k, v = (np.concatenate([_piece(s, i, 1, piece, d_k)[j] for s in seeds]) for j in (0, 1))
            with np.errstate(all="ignore"):
                res = M.online_scan(ws, k, v, spec.theta, spec.eta, spec.alpha, [piece - 1], k[:, :1], momenta=moms)
            ws, moms = res.weights, res.extra["momenta"]
            norms[:, i + 1] = res.weight_norms[:, 0]
    return norms, spec


@pytest.mark.claim(BOUNDED)
@pytest.mark.parametrize("config", ["NeuralMemory initial gates", "recall default"])
def test_streaming_bounded(config, claim, claim_record, scale):
    cfg = claim.scales[scale]
    seeds, tokens, piece, d_k = list(cfg["seeds"]), cfg["tokens"], cfg["piece"], cfg["d_k"]
    norms, spec = _stream_norms(config, seeds, tokens, piece, d_k)
    half = (norms.shape[1] - 1) // 2 + 1  # first half: t = 0 .. tokens/2
    finite = bool(np.all(np.isfinite(norms)))
    ratios = norms[:, half:].max(axis=1) / norms[:, :half].max(axis=1)
    headline = mean_ci(ratios)
    claim_record.value("max ||M||_F second half / first half", headline)
    claim_record.seeds(seeds)
    claim_record.value("every state finite", float(finite))
    claim_record.value("max ||M||_F over the stream", float(np.max(norms)))
    claim_record.value("final ||M||_F (mean over seeds)", float(np.mean(norms[:, -1])))
    if np.all(norms[:, -1] == 0):
        claim_record.note("the memory collapsed to M = 0: every weight underflowed. For a bias-free "
                          "MLP (L_M >= 2) M = 0 is a fixed point (each layer's gradient is "
                          "proportional to the other layers' weights), and the forgetting gate α "
                          "pulls the weights into it faster than the small θ writes: bounded, but "
                          "the memory can no longer store anything.")
    for r, s in enumerate(seeds):
        claim_record.curve(f"||M||_F, seed {s}", [i * piece for i in range(norms.shape[1])],
                           norms[r].tolist(), xlabel="tokens streamed", ylabel="weight norm ||M||_F",
                           config=config)
    claim_record.note(f"{config}: {spec.label()}; {tokens:,} tokens in pieces of {piece}; d_k={d_k}")
    assert finite, f"non-finite memory state: {norms}"
    settle(claim, headline, what=config)


# --------------------------------------------------------------------------------------------
# divergence boundary, detected
# --------------------------------------------------------------------------------------------


def _guarded_run(seed: int, theta: float, normalize: bool, tokens: int, chunk: int, d_k: int, max_norm: float):
    """('ok' | 'detected' | 'silent' | 'crash', detail)."""
    k, v = _piece(seed, 0, 1, tokens, d_k, normalize)
    km, vm = mx.array(k), mx.array(v)
    g = mx.ones((1, tokens))
    try:
        y, state = guarded_memory_scan((mx.zeros((d_k, d_k)),), km, km, vm, theta * g, 0.9 * g, 0 * g, chunk,
                                       max_norm=max_norm)
    except MemoryDivergedError as err:
        ok = isinstance(err.start, int) and err.stop > err.start and str(err.start) in str(err)
        return ("detected" if ok else "crash"), f"tokens [{err.start}, {err.stop}), {err.reason}"
    except Exception as err:  # noqa: BLE001 - any other exception is a crash
        return "crash", f"{type(err).__name__}: {err}"
    finite = bool(mx.all(mx.isfinite(y)).item()) and all(math.isfinite(n) for n in state_norms(state))
    return ("ok" if finite else "silent"), f"final norm {state_norms(state)[0]:.3g}"


@pytest.mark.claim(DIVERGE)
def test_divergence_detected(claim, claim_record, scale):
    cfg = claim.scales[scale]
    thetas, seeds = list(cfg["thetas"]), list(cfg["seeds"])
    args = dict(tokens=cfg["tokens"], chunk=cfg["chunk"], d_k=cfg["d_k"], max_norm=cfg["max_norm"])
    outcomes = {(s, th, norm): _guarded_run(s, th, norm, **args) for s in seeds for th in thetas for norm in (False, True)}
    raw = [outcomes[(s, th, False)][0] for s in seeds for th in thetas]
    per_seed = [np.mean([outcomes[(s, th, False)][0] in ("ok", "detected") for th in thetas]) for s in seeds]
    headline = mean_ci(per_seed)
    claim_record.value("fraction of runs finite or reported as MemoryDivergedError", headline)
    claim_record.seeds(seeds)
    n_div = sum(o == "detected" for o in raw)
    claim_record.value("divergent runs detected (unnormalized keys)", n_div)
    boundary = [min([th for th in thetas if outcomes[(s, th, False)][0] == "detected"], default=math.inf) for s in seeds]
    claim_record.value("smallest divergent θ (unnormalized keys)", mean_ci(boundary) if all(map(math.isfinite, boundary)) else float(min(boundary)))
    claim_record.value("online delta-rule bound (1+η)/E||k||² for reference", (1 + 0.9) / cfg["d_k"])
    normalized_div = sum(outcomes[(s, th, True)][0] == "detected" for s in seeds for th in thetas)
    claim_record.value("divergent runs with l2-normalized keys (same θ grid)", normalized_div)
    for norm in (False, True):
        claim_record.curve(f"diverged (1) vs θ, {'l2-normalized' if norm else 'unnormalized'} keys", thetas,
                           [float(np.mean([outcomes[(s, th, norm)][0] == "detected" for s in seeds])) for th in thetas],
                           xlabel="θ", ylabel="fraction of seeds diverged")
    claim_record.note("; ".join(f"seed {s} θ={th:g} {'l2' if n else 'raw'}: {o} ({d})"
                                for (s, th, n), (o, d) in outcomes.items() if o != "ok"))
    bad = [(k, o) for k, o in outcomes.items() if o[0] in ("silent", "crash")]
    assert not bad, f"silent NaN or crash: {bad}"
    assert n_div >= 1, "no θ of the grid diverged: the detection was not exercised"
    settle(claim, headline, what="unnormalized keys")
