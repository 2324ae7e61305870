"""Throughput and memory claims, measured with pytest-benchmark in one run.

Benchmarks (each also checks that its outputs are finite):

* ``memory_scan`` and the ``NeuralMemory`` layer, batch 1, d = 256 as 4 heads x 64, depth-2 memory
  (hidden 256), chunk 64, at ``MEMORY_SWEEP[scale]``.
* The forward pass ``model(tokens)`` of every model of ``titans.models`` at size ``small``, batch 1,
  at ``FORWARD_SWEEP[scale]`` plus the lengths the registered throughput claims compare (``L`` and
  ``factor * L`` of ``throughput.linear-titans`` / ``linear-retnet`` / ``attention-superlinear``).

Every benchmark stores ``tokens_per_s`` (minimum round), ``peak_memory_bytes``, ``seq_len``,
``model``, ``parameters``, ``blas``, ``device`` and ``mlx_version`` in ``extra_info``; the claim tests
compute their ratios from the rows measured earlier in the same session (``throughput_table``),
so ``-k`` selections that drop the benchmarks skip the claims.

Claims (thresholds in ``claims/registry.py``):

* ``throughput.linear-titans`` / ``linear-retnet``: time(4L)/time(L) of the forward over ``ROUNDS``
  paired rounds: the benchmark at 4L times a call at L right before each of its rounds, so each
  pair samples the same load of the shared CPU (ratios of L and 4L taken minutes apart vary with
  whatever else the machine runs in between). The verdict comes from the 95% CI of the paired
  ratios (``titans.reporting.verdicts.settle``): inconclusive (skipped, with the numbers) when the
  interval straddles the bar. The min-over-rounds, median pairwise and unpaired ratios are recorded
  beside the headline.
* ``throughput.attention-superlinear``: the same ratio for full attention; this test also records
  the tokens/s and peak-memory curves of every model and reports (not asserts) the length from
  which each recurrent model beats full attention in tokens/s.
* ``decode.state-flat-titans`` / ``decode.kv-cache-grows``: cache bytes while decoding at context
  4L versus L.
* ``abstract.fast-inference``: per-token decode time of the memory at context 4L versus L, over
  alternating rounds; the verdict comes from the 95% CI of the per-round ratios (the ratio of the
  minima is recorded beside).
* ``streaming.constant-memory``: ``memory_scan`` streamed in pieces with its state over 256k (CI)
  or 2M (full) tokens; MLX peak memory in the last quarter versus the first.
* ``abstract.fast-parallel-training``: one training step (forward + the gradients w.r.t. every
  input) of the chunked ``memory_scan`` against ``token_recurrence``, the same function token by
  token (compiled per chunk, hand-written per-token gradients), after checking that their outputs
  and gradients agree; verdict from the 95% CI of the paired per-round speed-ups.

Peer: titans-pytorch is timed side by side with this repository in one run by ``./run bench
--peer`` (``bench/``), never from numbers of another run.
"""

from __future__ import annotations

import math
import statistics
import time

import mlx.core as mx
import pytest

from claims.registry import CLAIMS
from titans.ops.memory import _forward_backward, memory_read, memory_scan
from titans.layers.neural_memory import MemoryConfig, NeuralMemory
from titans.reporting import mean_ci
from titans.reporting.verdicts import sanity, settle
from titans.models import BASELINES, TITANS, cache_arrays, cache_nbytes, create_model, model_args
from titans.models.base import make_memory
from titans.ops.attention import KVCache

SIZE = "small"
MODELS = TITANS + BASELINES  # lmm, mac, mag, mal, transformer, transformer_swa, retnet
FULL_ATTENTION = "transformer"

# Lengths every model is benchmarked at; the claims' own lengths are added per model.
FORWARD_SWEEP = {"ci": [1024, 4096], "full": [1024, 4096, 16384, 65536]}
MEMORY_SWEEP = {"ci": [1024, 4096], "full": [1024, 4096, 16384, 65536]}

HEADS, HEAD_DIM, HIDDEN, CHUNK = 4, 64, 256, 64

MiB = 2**20
LENGTH_LABEL = "sequence length (tokens)"


# ---------------------------------------------------------------------------------------------
# Parametrization from the registry and --scale
# ---------------------------------------------------------------------------------------------


def _lengths(claim_id: str, scale: str) -> tuple[int, int]:
    s = CLAIMS[claim_id].scales[scale]
    return s["L"], s["factor"] * s["L"]


def linear_models(scale: str) -> dict[str, list[str]]:
    """Claim id -> the models whose forward-time ratio it checks."""
    return {
        "throughput.linear-titans": list(CLAIMS["throughput.linear-titans"].scales[scale]["models"]),
        "throughput.linear-retnet": ["retnet"],
        "throughput.attention-superlinear": [FULL_ATTENTION],
    }


def forward_cases(scale: str) -> list[tuple[str, int]]:
    lengths = {m: set(FORWARD_SWEEP[scale]) for m in MODELS}
    for claim_id, models in linear_models(scale).items():
        for m in models:
            lengths[m].update(_lengths(claim_id, scale))
    return [(m, L) for m in MODELS for L in sorted(lengths[m])]


def pytest_generate_tests(metafunc):
    scale = metafunc.config.getoption("scale")
    if "forward_case" in metafunc.fixturenames:
        cases = [
            pytest.param((m, L), id=f"{m}-{L}") for m, L in forward_cases(scale)
        ]
        metafunc.parametrize("forward_case", cases)
    if "memory_len" in metafunc.fixturenames:
        metafunc.parametrize("memory_len", MEMORY_SWEEP[scale], ids=str)
    if "linear_model" in metafunc.fixturenames:
        claim_id = metafunc.definition.get_closest_marker("claim").args[0]
        models = linear_models(scale)[claim_id]
        metafunc.parametrize("linear_model", models, ids=models)
    if "decode_model" in metafunc.fixturenames:
        claim_id = metafunc.definition.get_closest_marker("claim").args[0]
        models = CLAIMS[claim_id].scales[scale].get("models", [FULL_ATTENTION])
        metafunc.parametrize("decode_model", models, ids=models)


ROUNDS = 6  # paired rounds behind each time(4L)/time(L) verdict (its 95% CI narrows as 1/sqrt(n))


def _rounds(name: str, seq_len: int) -> dict:
    """The same timed rounds at every length, so that time(4L)/time(L) compares equally many
    samples (unequal counts bias the ratio upward on a shared CPU). An untimed warm-up (tracing of
    compiled steps) only at <= 1024 tokens, the first length each model runs; above it the first
    round pays only for allocation. Beyond 8k (no CI ratio uses it) two rounds: a full-attention
    call there takes minutes on a CPU."""
    if seq_len > 8192:
        return dict(rounds=2, warmup=False)
    return dict(rounds=ROUNDS, warmup=seq_len <= 1024)


def _finite(*arrays) -> bool:
    return all(mx.all(mx.isfinite(a)).item() for a in arrays)


def _stored_kv_bytes(cache) -> int:
    """Bytes of the keys/values the growing KV caches store (their state, not the preallocated room)."""
    attention = [getattr(c, "attention", c) for c in cache]  # a block's attention cache, or the layer's own
    return sum(a.nbytes for c in attention if isinstance(c, KVCache) for a in c.arrays)


# ---------------------------------------------------------------------------------------------
# Benchmarks: the neural memory
# ---------------------------------------------------------------------------------------------


def scan_inputs(T, heads=HEADS, head_dim=HEAD_DIM, hidden=HIDDEN, key=0):
    """Random memory inputs with gates in the layer's range (θ ≤ 0.02, η ~ 0.8-0.95, α ≤ 0.05):
    unit q/k, normal v. (Larger θ with η near 1 can diverge.)"""
    ks = mx.random.split(mx.random.key(key), 6)
    unit = lambda x: x / mx.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    weights = (
        mx.random.normal((heads, hidden, head_dim), key=ks[0]) / math.sqrt(head_dim),
        mx.random.normal((heads, head_dim, hidden), key=ks[1]) / math.sqrt(hidden),
    )
    q = unit(mx.random.normal((1, heads, T, head_dim), key=ks[2]))
    k = unit(mx.random.normal((1, heads, T, head_dim), key=ks[3]))
    v = mx.random.normal((1, heads, T, head_dim), key=ks[4])
    gates = mx.random.uniform(shape=(3, 1, heads, T), key=ks[5])
    args = (weights, q, k, v, 0.02 * gates[0], 0.8 + 0.15 * gates[1], 0.05 * gates[2])
    mx.eval(args)
    return args


def test_memory_scan_throughput(measure, memory_len):
    args = scan_inputs(memory_len)
    outputs = []

    def forward():
        y, state = memory_scan(*args, CHUNK)
        outputs[:] = [y, *state.arrays]
        mx.eval(outputs)

    measure(forward, memory_len, group="memory", name="memory_scan", seq_len=memory_len,
            **_rounds("memory", memory_len))
    assert outputs[0].shape == (1, HEADS, memory_len, HEAD_DIM)
    assert _finite(*outputs)


def test_neural_memory_layer_throughput(measure, memory_len):
    mx.random.seed(0)
    layer = NeuralMemory(HEADS * HEAD_DIM, n_heads=HEADS, config=MemoryConfig(depth=2, expansion=HIDDEN // HEAD_DIM, chunk_size=CHUNK))
    x = mx.random.normal((1, memory_len, HEADS * HEAD_DIM))
    mx.eval(layer.parameters(), x)
    outputs = []

    def forward():
        outputs[:] = [layer(x)]
        mx.eval(outputs)

    measure(forward, memory_len, group="memory", name="NeuralMemory", seq_len=memory_len,
            **_rounds("memory", memory_len))
    assert outputs[0].shape == x.shape
    assert _finite(outputs[0])


# ---------------------------------------------------------------------------------------------
# Benchmarks: model forward, every model at size small, batch 1
# ---------------------------------------------------------------------------------------------


def _paired_length(name: str, seq_len: int, scale: str) -> int | None:
    """``L`` when ``(name, seq_len)`` is the ``factor * L`` side of a forward-time claim."""
    for claim_id, models in linear_models(scale).items():
        L, L4 = _lengths(claim_id, scale)
        if name in models and seq_len == L4:
            return L
    return None


def test_model_forward_throughput(measure, benchmark, forward_case, scale):
    """Forward tokens/s and peak memory. At the long side ``4L`` of a claim's ratio, a call at
    ``L`` is timed right before every round (outside the benchmark's timing): the ratio then
    compares minima over interleaved rounds, which share the machine's load at the time."""
    name, seq_len = forward_case
    model = create_model(name, SIZE, seed=0)
    tokens = mx.random.randint(0, model.args.vocab_size, (1, seq_len), key=mx.random.key(seq_len))
    mx.eval(model.parameters(), tokens)
    outputs = []

    def forward():
        outputs[:] = [model(tokens)]
        mx.eval(outputs)

    paired = _paired_length(name, seq_len, scale)
    paired_seconds: list[float] = []
    setup = None
    if paired is not None:
        short = mx.random.randint(0, model.args.vocab_size, (1, paired), key=mx.random.key(paired))
        mx.eval(short)

        def setup():
            start = time.perf_counter()
            mx.eval(model(short))
            paired_seconds.append(time.perf_counter() - start)

    row = measure(forward, seq_len, group="model", name=name, seq_len=seq_len, **_rounds(name, seq_len),
                  setup=setup, size=SIZE, batch=1, parameters=model.num_parameters(),
                  non_embedding_parameters=model.num_parameters(embeddings=False))
    if paired is not None:
        paired_info = dict(paired_seq_len=paired, paired_seconds=min(paired_seconds),
                           paired_round_seconds=[round(t, 6) for t in paired_seconds])
        row.update(paired_info)
        benchmark.extra_info.update(paired_info)
    assert outputs[0].shape == (1, seq_len, model.args.vocab_size)
    assert _finite(outputs[0]), f"{name} produced non-finite logits at {seq_len} tokens"


# ---------------------------------------------------------------------------------------------
# Claims: forward time vs length
# ---------------------------------------------------------------------------------------------


def _judge_ratio(claim, pairwise: list, name: str) -> None:
    """Verdict for a noisy timing ratio: the interval rule (``settle``) on the paired-round ratios.
    On a shared machine the noise can exceed the margin; then the verdict is inconclusive."""
    settle(claim, mean_ci(pairwise), what=f"{name}, paired rounds")


def _time_ratio(claim, scale, table, name, claim_record, curve=True):
    """min time at 4L / min time at L, the L calls interleaved with the 4L rounds (see
    ``test_model_forward_throughput``); the unpaired ratio (L from its own benchmark, minutes
    earlier) is recorded beside it."""
    L, L4 = _lengths(claim.id, scale)
    short, long_ = table.get("model", name, L), table.get("model", name, L4)
    sanity(long_.get("paired_seq_len") == L, f"{name} at {L4} was measured without its paired {L} calls")
    pairs = [b / a for a, b in zip(long_["paired_round_seconds"], long_["round_seconds"])]
    claim_record.value(f"paired_time_ratio[{name}] {L4}/{L}", mean_ci(pairs), unit="x")
    claim_record.value(f"min_time_ratio[{name}]", long_["seconds"] / long_["paired_seconds"], unit="x")
    claim_record.value(f"median_pairwise_ratio[{name}]", statistics.median(pairs), unit="x")
    claim_record.value(f"unpaired_time_ratio[{name}]", long_["seconds"] / short["seconds"], unit="x")
    claim_record.value(f"seconds[{name}, L={L}] paired", long_["paired_seconds"], unit="s")
    claim_record.value(f"seconds[{name}, L={L4}]", long_["seconds"], unit="s")
    claim_record.value(f"seconds[{name}, L={L}] own benchmark", short["seconds"], unit="s")
    claim_record.note(f"{name}: rounds at {L4}: {long_['round_seconds']} s; paired {L}: "
                      f"{long_['paired_round_seconds']} s")
    lengths = table.lengths("model", name)
    if curve:
        claim_record.curve(f"forward tokens/s: {name}", lengths,
                           [table.get("model", name, x)["tokens_per_s"] for x in lengths],
                           xlabel=LENGTH_LABEL, ylabel="forward tokens/s (batch 1, size small)", xscale="log2",
                           series=name, ylim=[0, None])
    return pairs


@pytest.mark.claim("throughput.linear-titans")
def test_titans_forward_linear(linear_model, claim, claim_record, scale, throughput_table):
    _judge_ratio(claim, _time_ratio(claim, scale, throughput_table, linear_model, claim_record), linear_model)


@pytest.mark.claim("throughput.linear-retnet")
def test_retnet_forward_linear(linear_model, claim, claim_record, scale, throughput_table):
    _judge_ratio(claim, _time_ratio(claim, scale, throughput_table, linear_model, claim_record), linear_model)


def _crossover(table, name: str) -> tuple[int | None, float | None, list[int]]:
    """Smallest measured length from which ``name`` has more tokens/s than full attention at every
    longer measured length, and a log-log interpolated estimate between the bracketing lengths."""
    attention_lengths = set(table.lengths("model", FULL_ATTENTION))
    common = [L for L in table.lengths("model", name) if L in attention_lengths]
    ratio = {L: table.get("model", name, L)["tokens_per_s"] / table.get("model", FULL_ATTENTION, L)["tokens_per_s"]
             for L in common}
    first = None
    for L in reversed(common):
        if ratio[L] > 1:
            first = L
        else:
            break
    estimate = None
    if first is not None:
        i = common.index(first)
        if i == 0:
            estimate = None  # already faster at the shortest length measured
        else:
            a, b = common[i - 1], first
            ra, rb = math.log(ratio[a]), math.log(ratio[b])
            estimate = math.exp(math.log(a) + (math.log(b) - math.log(a)) * (0 - ra) / (rb - ra))
    return first, estimate, common


@pytest.mark.claim("throughput.attention-superlinear")
def test_attention_forward_superlinear(linear_model, claim, claim_record, scale, throughput_table):
    table = throughput_table
    # Figure data for every model measured: tokens/s and peak memory vs length.
    for name in MODELS:
        lengths = table.lengths("model", name)
        if not lengths:
            continue
        rows = [table.get("model", name, L) for L in lengths]
        claim_record.curve(f"forward tokens/s: {name}", lengths, [r["tokens_per_s"] for r in rows],
                           xlabel=LENGTH_LABEL, ylabel="forward tokens/s (batch 1, size small)",
                           xscale="log", yscale="log", panel="forward tokens/s", series=name)
        claim_record.curve(f"forward peak memory: {name}", lengths, [r["peak_memory_bytes"] for r in rows],
                           xlabel=LENGTH_LABEL, ylabel="peak MLX memory during forward", yunit="bytes",
                           xscale="log", yscale="log", panel="forward peak memory", series=name)
    pairs = _time_ratio(claim, scale, table, linear_model, claim_record, curve=False)
    # Report (not asserted): where the recurrent models overtake full attention in tokens/s.
    notes = []
    for name in MODELS:
        if name == FULL_ATTENTION or not table.lengths("model", name):
            continue
        first, estimate, common = _crossover(table, name)
        if first is None:
            notes.append(f"{name}: slower than full attention at every measured length {common}")
            continue
        claim_record.value(f"crossover_measured[{name}]", first, unit="tokens")
        if estimate is not None:
            claim_record.value(f"crossover_interpolated[{name}]", estimate, unit="tokens")
            notes.append(f"{name} beats full attention from {first} tokens on (interpolated {estimate:.0f})")
        else:
            notes.append(f"{name} beats full attention at every measured length from {first}")
    claim_record.note("Crossover (tokens/s, size small, batch 1, this run): " + "; ".join(notes))
    _judge_ratio(claim, pairs, linear_model)


# ---------------------------------------------------------------------------------------------
# Claims: decode state and per-token decode time
# ---------------------------------------------------------------------------------------------


def _memory_bytes(cache) -> int:
    """Bytes of the Titans memory state alone (no attention window/segment caches)."""
    return sum(c.memory.nbytes for c in cache if getattr(c, "memory", None) is not None)


def _decode_profile(name: str, L: int, L4: int, steps: int = 4) -> dict:
    """Prefill to L, decode ``steps`` tokens, prefill on to 4L, decode ``steps`` tokens; cache bytes
    (all, and memory only) and per-token decode seconds at both contexts."""
    model = create_model(name, SIZE, seed=0)
    tokens = mx.random.randint(0, model.args.vocab_size, (1, L4 + steps), key=mx.random.key(1))
    cache = model.make_cache()
    out = {}

    def evaluate(logits):
        mx.eval(logits, cache_arrays(cache))
        return logits

    def decode(context):
        nbytes, memory, stored, seconds, finite = [], [], [], [], True
        for i in range(steps):
            start = time.perf_counter()
            logits = evaluate(model(tokens[:, context + i : context + i + 1], cache))
            seconds.append(time.perf_counter() - start)
            finite = finite and _finite(logits)
            nbytes.append(cache_nbytes(cache))
            memory.append(_memory_bytes(cache))
            stored.append(_stored_kv_bytes(cache))
        return dict(bytes=max(nbytes), memory_bytes=max(memory), stored_kv_bytes=max(stored),
                    step_seconds=min(seconds), finite=finite)

    evaluate(model(tokens[:, :L], cache))
    out["prefill_bytes_L"] = cache_nbytes(cache)
    out["L"] = decode(L)
    evaluate(model(tokens[:, L + steps : L4], cache))
    out["prefill_bytes_4L"] = cache_nbytes(cache)
    out["4L"] = decode(L4)
    return out


def _record_decode(claim_record, name, L, L4, prof, headline):
    a, b = prof["L"], prof["4L"]
    ratio = b["bytes"] / a["bytes"]
    claim_record.value(f"{headline}[{name}] {L4}/{L}", ratio, unit="x")
    if a["memory_bytes"]:
        claim_record.value(f"memory_state_ratio[{name}]", b["memory_bytes"] / a["memory_bytes"], unit="x")
    if a["stored_kv_bytes"]:
        claim_record.value(f"stored_kv_ratio[{name}]", b["stored_kv_bytes"] / a["stored_kv_bytes"], unit="x")
    claim_record.value(f"cache_bytes[{name}, ctx={L}]", a["bytes"], unit="bytes")
    claim_record.value(f"cache_bytes[{name}, ctx={L4}]", b["bytes"], unit="bytes")
    claim_record.value(f"decode_s_per_token[{name}, ctx={L}]", a["step_seconds"], unit="s")
    claim_record.value(f"decode_s_per_token[{name}, ctx={L4}]", b["step_seconds"], unit="s")
    claim_record.curve(f"decode cache: {name}", [L, L4], [a["bytes"], b["bytes"]], series=name,
                       xlabel="context length (tokens)", ylabel="decode cache", yunit="bytes", xscale="log2",
                       ylim=[0, None])
    if not (a["finite"] and b["finite"]):
        # Bytes do not depend on values; non-finite outputs would be a model bug (the models' tests
        # stream 16k tokens through every untrained model and require finite logits).
        claim_record.note(f"{name}: decode logits were NOT finite (context {L}: {a['finite']}, "
                          f"{L4}: {b['finite']}); the byte counts are unaffected")
    return ratio


@pytest.mark.claim("decode.state-flat-titans")
def test_titans_decode_state_flat(decode_model, claim, claim_record, scale):
    L, L4 = _lengths(claim.id, scale)
    prof = _decode_profile(decode_model, L, L4)
    ratio = _record_decode(claim_record, decode_model, L, L4, prof, "cache_bytes_ratio")
    sanity(prof["L"]["memory_bytes"] > 0, f"{decode_model}: no memory state in the cache")
    assert claim.holds(ratio), claim.describe(ratio) + f" [{decode_model}]"


@pytest.mark.claim("decode.kv-cache-grows")
def test_attention_kv_cache_grows(decode_model, claim, claim_record, scale):
    """Headline: bytes of the keys/values the cache holds. The allocation (which grows in steps of
    256 positions, so its ratio depends on where L and 4L fall on that grid) is recorded beside."""
    L, L4 = _lengths(claim.id, scale)
    prof = _decode_profile(decode_model, L, L4)
    ratio = prof["4L"]["stored_kv_bytes"] / prof["L"]["stored_kv_bytes"]
    claim_record.value(f"stored_kv_bytes_ratio[{decode_model}] {L4}/{L}", ratio, unit="x")
    _record_decode(claim_record, decode_model, L, L4, prof, "allocated_kv_cache_bytes_ratio")
    assert claim.holds(ratio), claim.describe(ratio) + f" [{decode_model}]"


@pytest.mark.claim("abstract.fast-inference")
def test_memory_decode_time_flat(claim, claim_record, scale):
    """Per-token decode time of the size-small ``NeuralMemory`` at context 4L vs L. The two
    contexts are timed in alternating rounds (same noise), after one untimed step each; each round
    decodes ``steps`` tokens. Verdict: the interval rule on the per-round ratios."""
    s = claim.scales[scale]
    L, L4, steps, rounds = s["L"], s["factor"] * s["L"], s["steps"], s["rounds"]
    mx.random.seed(0)
    layer = make_memory(model_args("lmm", SIZE))
    dims = layer.dims
    x = mx.random.normal((1, L4 + 2 * steps * rounds, dims), key=mx.random.key(2))
    mx.eval(layer.parameters(), x)
    caches = {}
    for context in (L, L4):
        cache = layer.make_cache()
        mx.eval(layer(x[:, :context], cache), cache_arrays(cache))
        caches[context] = cache
    per_token = {L: [], L4: []}
    position = {L: L, L4: L4}
    for context in (L, L4):  # warm-up, untimed
        mx.eval(layer.step(x[:, position[context]], caches[context]), cache_arrays(caches[context]))
        position[context] += 1
    for _ in range(rounds):
        for context in (L, L4):
            cache = caches[context]
            start = time.perf_counter()
            for _ in range(steps):
                p = position[context]
                y = layer.step(x[:, p], cache)
                mx.eval(y, cache_arrays(cache))
                position[context] = p + 1
            per_token[context].append((time.perf_counter() - start) / steps)
            sanity(_finite(y), f"non-finite decode output at context {context}")
    a, b = min(per_token[L]), min(per_token[L4])
    pairs = [t4 / t1 for t1, t4 in zip(per_token[L], per_token[L4])]
    headline = mean_ci(pairs)
    claim_record.value(f"decode_time_ratio ctx {L4}/{L} (paired rounds)", headline, unit="x")
    claim_record.value(f"min_decode_time_ratio ctx {L4}/{L}", b / a, unit="x")
    claim_record.value(f"decode_s_per_token[ctx={L}]", a, unit="s")
    claim_record.value(f"decode_s_per_token[ctx={L4}]", b, unit="s")
    claim_record.value("decode_state_bytes", caches[L4].nbytes, unit="bytes")
    claim_record.curve("memory decode time per token", [L, L4], [a * 1e3, b * 1e3],
                       xlabel="context length (tokens)", ylabel="decode time per token (ms)", xscale="log2",
                       ylim=[0, None])
    claim_record.note(f"NeuralMemory of size {SIZE} ({layer.n_heads} heads x {layer.head_dim}, depth "
                      f"{layer.config.depth}); {rounds} alternating rounds of {steps} steps; per-round "
                      f"ratios {[round(r, 3) for r in pairs]}")
    sanity(caches[L].nbytes == caches[L4].nbytes,
           f"the memory's decode state differs in size: {caches[L].nbytes} B at {L}, {caches[L4].nbytes} B at {L4}")
    settle(claim, headline, what="paired rounds")


# ---------------------------------------------------------------------------------------------
# Claim: streaming at constant memory
# ---------------------------------------------------------------------------------------------


@pytest.mark.claim("streaming.constant-memory")
def test_memory_streams_at_constant_memory(claim, claim_record, scale):
    """``memory_scan`` with the size-small memory (4 heads x 64, depth 2), fed ``piece`` tokens at a
    time with its state; inputs are generated per piece so nothing grows with the stream."""
    s = claim.scales[scale]
    total, piece = s["tokens"], s["piece"]
    sanity(total % (4 * piece) == 0, "the stream must split into four equal quarters of pieces")
    args = model_args("lmm", SIZE)
    heads, head_dim = args.n_heads, args.dims // args.n_heads
    hidden, chunk = args.memory.expansion * head_dim, args.memory.chunk_size
    weights = scan_inputs(8, heads, head_dim, hidden, key=0)[0]
    n_pieces = total // piece
    state = None
    peaks, active = [], []
    t0 = time.perf_counter()
    mx.clear_cache()
    for p in range(n_pieces):
        mx.reset_peak_memory()
        _, q, k, v, lr, momentum, decay = scan_inputs(piece, heads, head_dim, hidden, key=p + 1)
        y, state = memory_scan(weights, q, k, v, lr, momentum, decay, chunk, state=state)
        mx.eval(y, state.arrays)
        sanity(_finite(y), f"non-finite memory output in piece {p} ({p * piece} tokens streamed)")
        del q, k, v, lr, momentum, decay, y
        peaks.append(mx.get_peak_memory())
        active.append(mx.get_active_memory())
    seconds = time.perf_counter() - t0
    sanity(state.position == total, f"the state's position {state.position} is not the {total} tokens streamed")
    sanity(_finite(*state.arrays), "non-finite memory state at the end of the stream")
    quarter = n_pieces // 4
    first, last = max(peaks[:quarter]), max(peaks[-quarter:])
    ratio = last / first
    streamed = [(p + 1) * piece for p in range(n_pieces)]
    claim_record.value("peak_memory_ratio last/first quarter", ratio, unit="x")
    claim_record.value("peak_memory_first_quarter", first, unit="bytes")
    claim_record.value("peak_memory_last_quarter", last, unit="bytes")
    claim_record.value("active_memory_end", active[-1], unit="bytes")
    claim_record.value("state_bytes", state.nbytes, unit="bytes")
    claim_record.value("tokens_streamed", total, unit="tokens")
    claim_record.value("stream_tokens_per_s", total / seconds, unit="tokens/s")
    claim_record.curve("peak memory per piece", streamed, list(peaks), series="peak within the piece",
                       xlabel="tokens streamed", ylabel="MLX memory", yunit="bytes", ylim=[0, None])
    claim_record.curve("active memory after piece", streamed, list(active), series="active after the piece",
                       xlabel="tokens streamed", ylabel="MLX memory", yunit="bytes", ylim=[0, None])
    claim_record.note(f"{n_pieces} pieces of {piece} tokens; memory {heads} heads x {head_dim}, hidden "
                      f"{hidden}, chunk {chunk}; {total / seconds:.0f} tokens/s")
    assert claim.holds(ratio), claim.describe(ratio)


# ---------------------------------------------------------------------------------------------
# abstract.fast-parallel-training: the chunked form vs the token recurrence, forward + backward
# ---------------------------------------------------------------------------------------------


SPEED_ROUNDS = 3  # paired rounds of the training-step comparison (an interval needs >= 2; 3 for a usable one)
GRAD_RTOL = 1e-4  # float32 agreement of the two forms: max |difference| / max |chunked value|, per array
SCAN_INPUTS = ("weights", "q", "k", "v", "lr", "momentum", "decay")


def _token_chunk(w, s, q, k, v, lr, momentum, decay):
    """One chunk of the token-by-token recurrence, the same function as ``memory_scan``: every
    gradient at the chunk-start weights (eq. 16), by the hand-written rank-one backprop of the
    memory (``_forward_backward``: the gradient of token i is ``g_i a_iᵀ`` per layer), then for each
    token ``S_t = η_t S_{t-1} − θ_t g_t a_tᵀ``, ``W_t = (1 − α_t) W_{t-1} + S_t``, ``y_t = M_t(q_t)``:
    ``W_t`` is materialized at every token, which the chunked dual form avoids."""
    inputs, grads = _forward_backward(w, k, v)  # the per-token gradients at the anchor, (..., b, d)
    ys = []
    for t in range(q.shape[-2]):
        eta, theta, keep = (x[..., t, None, None] for x in (momentum, lr, 1 - decay))
        s = tuple(eta * s_l - theta * (mx.swapaxes(g[..., t : t + 1, :], -1, -2) @ a[..., t : t + 1, :])
                  for s_l, g, a in zip(s, grads, inputs))
        w = tuple(keep * w_l + s_l for w_l, s_l in zip(w, s))
        ys.append(memory_read(w, q[..., t : t + 1, :]))
    return mx.concatenate(ys, axis=-2), w, s


_token_chunk_compiled = mx.compile(_token_chunk)


def token_recurrence(weights, q, k, v, lr, momentum, decay, chunk_size):
    """``memory_scan``'s outputs computed token by token (see ``_token_chunk``), one compiled call
    (``mx.compile``) per chunk of ``chunk_size`` tokens; ``T`` a multiple of ``chunk_size``."""
    T = q.shape[-2]
    w = tuple(mx.broadcast_to(x, (*q.shape[:-2], *x.shape[-2:])) for x in weights)
    s = tuple(mx.zeros_like(x) for x in w)
    ys = []
    for c in range(0, T, chunk_size):
        cut = slice(c, c + chunk_size)
        y, w, s = _token_chunk_compiled(w, s, q[..., cut, :], k[..., cut, :], v[..., cut, :], lr[..., cut],
                                        momentum[..., cut], decay[..., cut])
        ys.append(y)
    return mx.concatenate(ys, axis=-2)


def _max_rel(a, b) -> float:
    """max |a - b| / max |b| (inf if not finite)."""
    scale = mx.max(mx.abs(b)).item()
    diff = mx.max(mx.abs(a - b)).item()
    return diff / scale if scale > 0 else (0.0 if diff == 0 else math.inf)


@pytest.mark.claim("abstract.fast-parallel-training")
def test_chunked_training_step_beats_the_token_recurrence(claim, claim_record, scale):
    """Forward + backward (the outer gradients w.r.t. every input: initial weights, q, k, v, θ, η, α)
    of the chunked-parallel ``memory_scan`` vs the fastest token-by-token recurrence of the same
    function we have (``token_recurrence``: compiled per chunk, hand-written per-token gradients;
    the outer gradient by MLX autodiff, as for the chunked form), same inputs. The first call of
    each (untimed: it also traces the compiled functions) is checked first: outputs, loss and every
    gradient must agree (``sanity``); then ``SPEED_ROUNDS`` paired rounds (token, then chunked);
    verdict: the interval rule on the per-round speed-ups."""
    p = claim.scales[scale]
    T, chunk, d = p["length"], p["chunk"], p["d"]
    sanity(p["token_form"] == "compiled-chunk-loop", f"unknown token form {p['token_form']!r}")
    sanity(T % chunk == 0, f"length {T} is not a multiple of the chunk {chunk}")
    args = scan_inputs(T, heads=1, head_dim=d, hidden=2 * d)
    probe = mx.random.normal(args[1].shape, key=mx.random.key(6))
    mx.eval(probe)
    forms = {"token": token_recurrence,
             "chunked": lambda *a: memory_scan(*a, validate=False)[0]}  # validation is no part of the step

    def loss(scan):
        def f(*inputs):
            y = scan(*inputs, chunk)
            return mx.sum(y * probe), y
        return f

    steps = {name: mx.value_and_grad(loss(scan), argnums=tuple(range(len(SCAN_INPUTS)))) for name, scan in forms.items()}
    seconds, results = {name: [] for name in steps}, {}

    def timed(name):
        start = time.perf_counter()
        (value, y), grads = steps[name](*args)
        mx.eval(value, y, grads)
        results[name] = (value, y, grads)
        return time.perf_counter() - start

    first = {name: timed(name) for name in steps}  # untimed for the verdict; checked below
    (v_tok, y_tok, g_tok), (v_chk, y_chk, g_chk) = results["token"], results["chunked"]
    flat = lambda g: [("weights[%d]" % i, w) for i, w in enumerate(g[0])] + list(zip(SCAN_INPUTS[1:], g[1:]))  # noqa: E731
    diffs = {"outputs y": _max_rel(y_tok, y_chk), "loss": _max_rel(v_tok, v_chk)}
    diffs.update({f"d/d {n}": _max_rel(a, b) for (n, a), (_, b) in zip(flat(g_tok), flat(g_chk))})
    claim_record.note("token vs chunked, max |difference| / max |chunked|: "
                      + ", ".join(f"{n} {x:.1e}" for n, x in diffs.items()))
    bad = {n: x for n, x in diffs.items() if not x <= GRAD_RTOL}
    sanity(not bad, f"the token and chunked forms disagree (tolerance {GRAD_RTOL:g}): {bad}")
    for _ in range(SPEED_ROUNDS):
        for name in steps:
            seconds[name].append(timed(name))
    speedups = [t / c for t, c in zip(seconds["token"], seconds["chunked"])]
    headline = mean_ci(speedups)
    claim_record.value("speed-up, chunked vs token recurrence (forward + backward, paired rounds)", headline, unit="x")
    claim_record.value("speed-up from the minima", min(seconds["token"]) / min(seconds["chunked"]), unit="x")
    claim_record.value("seconds, chunked (min)", min(seconds["chunked"]), unit="s")
    claim_record.value("seconds, token recurrence (min)", min(seconds["token"]), unit="s")
    claim_record.value("largest relative difference, token vs chunked (outputs, loss, gradients)", max(diffs.values()))
    claim_record.note(f"{SPEED_ROUNDS} paired rounds after one checked, untimed call each (token {first['token']:.2f} s, "
                      f"chunked {first['chunked']:.2f} s, tracing included); seconds token "
                      f"{[round(t, 4) for t in seconds['token']]}, chunked {[round(t, 4) for t in seconds['chunked']]}")
    settle(claim, headline, what="paired rounds")
