"""``./run bench --peer``: this repository against titans-pytorch, side by side in one run.

What it does (bench/README.md has the how-to):

1. Creates ``.venv-peer/`` on first use (git-ignored) and installs CPU torch (``PEER_TORCH``) and
   titans-pytorch with every dependency pinned (``bench/peer-requirements.txt``). Without access to
   the package index the install fails and the command stops with a message that says so.
2. Times both implementations on this machine in one run, in rounds: in each round every length of
   every kind is measured once by each implementation, the two back to back in an order that
   alternates, so that a burst of load on a shared machine hits both. Every measurement is its own
   process (this repository's in ``.venv`` with ``import titans`` first, the peer's in
   ``.venv-peer``), which reports JSON: forward tokens/s (minimum time over ``--repeats`` calls)
   and peak resident memory of the timed calls (``bench/_proc.py``: ``VmHWM`` after a reset,
   minus the RSS before; for MLX also its allocator peak).
3. Prints the ratios (this repository / peer) per kind and length, and writes the record (raw
   numbers, ratios, configurations, machine, versions) to ``.benchmarks/peer/<time>-<commit>.json``.
4. Records the achieved GFLOP/s of ``memory_scan`` (the memory step alone) as a fraction of the
   fp32 matmul peak measured in the same process (``memory_scan_flops`` gives the FLOP count).

Kinds and configurations (``PEER_CONFIGS``; ``check_match`` compares them with what this
repository's worker reports it built, and the run stops on a difference):

* ``memory``: the ``NeuralMemory`` layer, d = 256 as 4 heads x 64, memory MLP depth 2 with
  hidden 256, chunk 64, batch 1; titans-pytorch ``NeuralMemory(dim=256, heads=4, dim_head=64,
  chunk_size=64, batch_size=64)`` with the same MLP (``batch_size=64``: its gradients are taken at
  the weights of each chunk start, as the paper's and this repository's chunking).
* ``mac``: this repository's MAC at size ``small`` (dim 256, 2 layers, 4 heads x 64, segment 128,
  4 persistent tokens, memory 4 heads x 64, depth 2, hidden 128, chunk 64, SwiGLU width 416, vocab
  4096) to logits; titans-pytorch ``MemoryAsContextTransformer`` with the same dims, depth, heads,
  segment, persistent tokens, vocabulary, memory heads/MLP/chunk (``neural_memory_segment_len=64``,
  ``neural_memory_batch_size=64``), feed-forward width (``ff_mult`` so that its GEGLU is 416 wide),
  one residual stream (its default is 4 hyper-connection streams) and its 4 long-term memory tokens
  per segment (its form of the paper's N_l; this repository retrieves one memory token per segment
  token instead).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
REQUIREMENTS = BENCH / "peer-requirements.txt"
PEER_TORCH = "torch==2.13.0"  # resolves to the CPU build where the index offers one (2.13.0+cpu)
TORCH_INDEX_ENV = "TITANS_PEER_TORCH_INDEX"  # e.g. the PyTorch CPU wheel index, where reachable
DEFAULT_VENV = ".venv-peer"
DEFAULT_OUT = ".benchmarks/peer"
SCHEMA = 1

KINDS = ("memory", "mac")
DEFAULT_LENGTHS = {"memory": (1024, 4096, 8192, 16384), "mac": (1024, 4096, 8192)}
# Lengths must be whole chunks (memory) or whole segments (MAC): titans-pytorch's batch_size
# requires sequences aligned to its chunks, and whole units keep both sides' work comparable.
GRANULE = {"memory": 64, "mac": 128}
LENGTH_OPTION = {"memory": "--memory-lengths", "mac": "--mac-lengths"}

# This repository's side (bench/worker_mlx.py builds it from these).
OURS_CONFIGS = {
    "memory": dict(dim=256, heads=4, depth=2, expansion=4, chunk=64, batch=1),  # hidden 4 x 64 = 256
    "mac": dict(size="small", batch=1),
}
MAC_MLP_HIDDEN = 416  # SwiGLU width of MAC at size small (parameter-matched; check_match verifies)
# titans-pytorch's side: keyword arguments of its classes (bench/worker_torch.py).
PEER_CONFIGS = {
    "memory": dict(dim=256, heads=4, dim_head=64, chunk_size=64, batch_size=64,
                   default_model_kwargs=dict(depth=2, expansion_factor=4.0)),
    "mac": dict(num_tokens=4096, dim=256, depth=2, segment_len=128, heads=4, dim_head=64,
                num_persist_mem_tokens=4, num_longterm_mem_tokens=4, neural_memory_segment_len=64,
                neural_memory_batch_size=64, num_residual_streams=1,
                ff_mult=MAC_MLP_HIDDEN * 3 / (2 * 256),  # its FeedForward width is int(dim * mult * 2 / 3)
                neural_memory_model=dict(dim=64, depth=2, expansion_factor=2.0),
                neural_memory_kwargs=dict(heads=4, dim_head=64)),
}
PEER_BATCH = 1


class PeerSetupError(RuntimeError):
    """The peer environment could not be created or installed."""


class ConfigMismatch(RuntimeError):
    """The two sides would not run the same configuration."""


# ---------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------


def parse_lengths(text: str, option: str, granule: int) -> tuple[int, ...]:
    """``"1k,4096"`` -> ``(1024, 4096)``: positive multiples of ``granule``, no repeats; errors name
    ``option``."""
    values = []
    for part in str(text).split(","):
        part = part.strip().lower()
        if not part:
            raise ValueError(f"{option}: empty entry in {text!r} (give comma-separated lengths, e.g. 1k,4k)")
        scale = 1024 if part.endswith("k") else 1
        digits = part[:-1] if part.endswith("k") else part
        if not digits.isdigit():
            raise ValueError(f"{option}: {part!r} is not a length (an integer, or an integer with k = 1024)")
        value = int(digits) * scale
        if value <= 0 or value % granule:
            raise ValueError(f"{option}: {value} must be a positive multiple of {granule}")
        if value in values:
            raise ValueError(f"{option}: {value} is given twice")
        values.append(value)
    return tuple(values)


def parse_kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in str(text).split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if not kinds or unknown:
        raise ValueError(f"--kinds: {', '.join(unknown) or 'nothing'} is not a kind; choose from {', '.join(KINDS)}")
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"--kinds: a kind is given twice in {text!r}")
    return kinds


def _positive(option: str, minimum: int = 1):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = option
    return parse


def _wrap(fn, *args):
    def parse(text: str):
        try:
            return fn(text, *args)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e).split(": ", 1)[-1]) from None

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="./run bench",
        description="Same-run speed and memory against titans-pytorch (see bench/README.md).",
    )
    p.add_argument("--peer", action="store_true", required=True,
                   help="compare with titans-pytorch in the same run (the only benchmark of this command; "
                        "the throughput benchmarks of the claims run in ./run claims)")
    p.add_argument("--kinds", type=_wrap(parse_kinds), default=KINDS, help="memory,mac (default: both)")
    for kind in KINDS:
        p.add_argument(LENGTH_OPTION[kind], dest=f"{kind}_lengths", type=_wrap(parse_lengths, LENGTH_OPTION[kind], GRANULE[kind]),
                       default=DEFAULT_LENGTHS[kind],
                       help=f"tokens, multiples of {GRANULE[kind]} (default: {','.join(map(str, DEFAULT_LENGTHS[kind]))})")
    p.add_argument("--rounds", type=_positive("--rounds"), default=3,
                   help="interleaved rounds; each measures every (kind, length) once per implementation (default 3)")
    p.add_argument("--repeats", type=_positive("--repeats"), default=2,
                   help="timed calls per measurement process; its tokens/s is from the fastest (default 2)")
    p.add_argument("--warmup-len", type=_positive("--warmup-len"), default=256,
                   help="tokens of the untimed warm-up call, a multiple of 128 (default 256)")
    p.add_argument("--peer-threads", type=_positive("--peer-threads"), default=os.cpu_count() or 1,
                   help="torch.set_num_threads for the peer (default: the machine's cores)")
    p.add_argument("--matmul-n", type=_positive("--matmul-n", 0), default=2048,
                   help="size of the fp32 matmul that gives the peak for the FLOP fraction; 0 skips it (default 2048)")
    p.add_argument("--timeout", type=_positive("--timeout"), default=900,
                   help="seconds one measurement process may take (default 900)")
    p.add_argument("--seed", type=_positive("--seed", 0), default=0)
    p.add_argument("--out", default=DEFAULT_OUT, help=f"folder of the JSON records (default {DEFAULT_OUT})")
    p.add_argument("--peer-venv", default=DEFAULT_VENV, help=f"the peer's virtual environment (default {DEFAULT_VENV})")
    p.add_argument("--setup-only", action="store_true", help="only create/install the peer environment")
    return p


def validate_args(args: argparse.Namespace) -> None:
    """Checks across arguments; each error names its argument."""
    if args.warmup_len % 128:
        raise ValueError(f"--warmup-len: {args.warmup_len} must be a multiple of 128 (whole MAC segments)")
    for kind in args.kinds:
        lengths = getattr(args, f"{kind}_lengths")
        if min(lengths) < args.warmup_len:
            raise ValueError(f"{LENGTH_OPTION[kind]}: {min(lengths)} is shorter than --warmup-len {args.warmup_len}")


def parse_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        validate_args(args)
    except ValueError as e:
        parser.error(str(e))
    return args


# ---------------------------------------------------------------------------------------------
# FLOPs of memory_scan (titans/ops/memory.py, the chunked dual form)
# ---------------------------------------------------------------------------------------------


def memory_scan_flops(seq_len: int, chunk_size: int, dims, heads: int = 1, batch: int = 1) -> int:
    """Matmul FLOPs (2 per multiply-add) of ``memory_scan`` over ``seq_len`` tokens.

    ``dims = (d_0, d_1, ..., d_L)``: the memory MLP maps ``d_0 = d_k`` through ``L`` layers to
    ``d_L = d_v`` (layer ``l`` is ``d_l x d_{l-1}``). Per chunk of ``b`` tokens and per head, with
    ``d_in = d_{l-1}``, ``d_out = d_l``:

    * gate coefficients (``chunk_coefficients``): ``f = R_α m`` (b x b times b) ``2 b²``;
      ``G = R_α R_η`` (b x b times b x b) ``2 b³``;
    * forward and backward at the chunk-start weights (``_forward_backward``): ``k`` through every
      layer ``2 b d_in d_out``, and the error back through every layer but the first
      ``2 b d_in d_out``;
    * retrieval in the dual form (``_scan_chunk``): per layer ``h W_sᵀ`` and ``h S_sᵀ``
      ``2 x 2 b d_in d_out``, ``h aᵀ`` ``2 b² d_in`` and ``(· ∘ G) g`` ``2 b² d_out``;
    * chunk-end weights and momentum: per layer two ``gᵀ a`` products ``2 x 2 b d_in d_out``.

    In all, per chunk and head: ``2b³ + 2b² + Σ_l [(10 + 2·[l > 1]) b d_in d_out + 2 b² (d_in + d_out)]``
    (for 4 heads x 64, hidden 256, b = 64: 1.80 MFLOP per token).
    Elementwise work (gates' cumulative products, SiLU, the output normalization) is not counted,
    so the achieved GFLOP/s is a lower bound on the work done. A last partial chunk counts with its
    own ``b``.
    """
    if seq_len <= 0 or chunk_size <= 0 or heads <= 0 or batch <= 0:
        raise ValueError("seq_len, chunk_size, heads and batch must be positive")
    dims = tuple(int(d) for d in dims)
    if len(dims) < 2 or min(dims) <= 0:
        raise ValueError(f"dims must list at least an input and an output width, all positive, got {dims}")

    def per_chunk(b: int) -> int:
        total = 2 * b**3 + 2 * b**2
        for layer, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:]), start=1):
            total += (10 + 2 * (layer > 1)) * b * d_in * d_out + 2 * b * b * (d_in + d_out)
        return total

    full, rest = divmod(seq_len, chunk_size)
    return batch * heads * (full * per_chunk(chunk_size) + (per_chunk(rest) if rest else 0))


# ---------------------------------------------------------------------------------------------
# Configuration match
# ---------------------------------------------------------------------------------------------


def check_match(kind: str, ours: dict, peer: dict) -> None:
    """Raise ``ConfigMismatch`` listing every setting where this repository's built module
    (``ours``: what the MLX worker reports) differs from the peer's keyword arguments."""
    if kind == "memory":
        pairs = {
            "dim": (ours["dims"], peer["dim"]),
            "heads": (ours["n_heads"], peer["heads"]),
            "head dim": (ours["head_dim"], peer["dim_head"]),
            "chunk": (ours["chunk_size"], peer["chunk_size"]),
            "gradient batch (chunk)": (ours["chunk_size"], peer["batch_size"]),
            "memory depth": (ours["depth"], peer["default_model_kwargs"]["depth"]),
            "memory expansion": (ours["expansion"], peer["default_model_kwargs"]["expansion_factor"]),
        }
    elif kind == "mac":
        memory, mem_model = ours["memory"], peer["neural_memory_model"]
        pairs = {
            "vocab": (ours["vocab_size"], peer["num_tokens"]),
            "dim": (ours["dims"], peer["dim"]),
            "layers": (ours["n_layers"], peer["depth"]),
            "heads": (ours["n_heads"], peer["heads"]),
            "head dim": (ours["dims"] // ours["n_heads"], peer["dim_head"]),
            "segment": (ours["segment_size"], peer["segment_len"]),
            "persistent tokens": (ours["n_persistent"], peer["num_persist_mem_tokens"]),
            "feed-forward width": (ours["mlp_hidden"], int(peer["dim"] * peer["ff_mult"] * 2 / 3)),
            "memory chunk": (memory["chunk_size"], peer["neural_memory_segment_len"]),
            "memory gradient batch": (memory["chunk_size"], peer["neural_memory_batch_size"]),
            "memory heads": (ours["n_heads"], peer["neural_memory_kwargs"]["heads"]),
            "memory head dim": (ours["dims"] // ours["n_heads"], peer["neural_memory_kwargs"]["dim_head"]),
            "memory MLP input": (ours["dims"] // ours["n_heads"], mem_model["dim"]),
            "memory depth": (memory["depth"], mem_model["depth"]),
            "memory expansion": (memory["expansion"], mem_model["expansion_factor"]),
        }
    else:
        raise ValueError(f"unknown kind {kind!r}")
    wrong = {name: pair for name, pair in pairs.items() if pair[0] != pair[1]}
    if wrong:
        listed = "; ".join(f"{name}: ours {a}, peer {b}" for name, (a, b) in wrong.items())
        raise ConfigMismatch(f"{kind}: the peer's configuration (bench/peer.py PEER_CONFIGS) does not match "
                             f"this repository's: {listed}")


# ---------------------------------------------------------------------------------------------
# Ratios and the table
# ---------------------------------------------------------------------------------------------


def _ok(measurements, impl, kind, seq_len):
    return {m["round"]: m["result"] for m in measurements
            if m["impl"] == impl and m["kind"] == kind and m["seq_len"] == seq_len and m.get("result")}


def summarize(measurements: list[dict], kinds, lengths: dict) -> list[dict]:
    """One row per (kind, length): both sides' tokens/s per round, the ratio of the bests (this
    repository / peer; on a shared machine noise only adds time, so each side's fastest round is
    its least disturbed), the per-round paired ratios (median, min, max), and peak working
    memory (RSS; the largest over rounds) with its ratio."""
    rows = []
    for kind in kinds:
        for L in lengths[kind]:
            ours, peer = _ok(measurements, "ours", kind, L), _ok(measurements, "peer", kind, L)
            row = dict(kind=kind, seq_len=L, rounds_ours=len(ours), rounds_peer=len(peer))
            for side, got in (("ours", ours), ("peer", peer)):
                if got:
                    row[f"{side}_finite"] = all(r.get("finite", True) for r in got.values())
            if ours:
                row["ours_tokens_per_s"] = [ours[r]["tokens_per_s"] for r in sorted(ours)]
                row["ours_best"] = max(row["ours_tokens_per_s"])
                row["ours_rss_working_bytes"] = _max_or_none(r.get("rss_working_bytes") for r in ours.values())
                row["ours_mlx_working_bytes"] = _max_or_none(r.get("mlx_working_bytes") for r in ours.values())
            if peer:
                row["peer_tokens_per_s"] = [peer[r]["tokens_per_s"] for r in sorted(peer)]
                row["peer_best"] = max(row["peer_tokens_per_s"])
                row["peer_rss_working_bytes"] = _max_or_none(r.get("rss_working_bytes") for r in peer.values())
            if ours and peer:
                row["ratio_best"] = row["ours_best"] / row["peer_best"]
                paired = [ours[r]["tokens_per_s"] / peer[r]["tokens_per_s"] for r in sorted(set(ours) & set(peer))]
                if paired:
                    row["ratio_paired"] = paired
                    row["ratio_paired_median"] = statistics.median(paired)
                    row["ratio_paired_min"], row["ratio_paired_max"] = min(paired), max(paired)
                a, b = row.get("ours_rss_working_bytes"), row.get("peer_rss_working_bytes")
                if a is not None and b:
                    row["memory_ratio"] = a / b
            rows.append(row)
    return rows


def _max_or_none(values):
    values = [v for v in values if v is not None]
    return max(values) if values else None


def summarize_flops(measurements: list[dict], lengths) -> list[dict]:
    """Per memory length: ``memory_scan``'s GFLOP/s (``memory_scan_flops`` over its fastest call)
    against the fp32 matmul's (``2 n³`` over its fastest call), both from the same process; the
    fraction of the best scan over the best matmul of the run, and the median of the per-process
    fractions."""
    rows = []
    for L in lengths:
        scans = [m["result"]["scan"] for m in measurements if m["impl"] == "ours" and m["kind"] == "memory"
                 and m["seq_len"] == L and m.get("result") and m["result"].get("scan")]
        if not scans:
            continue
        s0 = scans[0]
        flops = memory_scan_flops(L, s0["scan_chunk"], s0["scan_dims"], heads=s0["scan_heads"])
        scan_gf = [flops / min(s["scan_seconds"]) / 1e9 for s in scans]
        mm_gf = [2 * s["matmul_n"] ** 3 / min(s["matmul_seconds"]) / 1e9 for s in scans]
        rows.append(dict(seq_len=L, flops=flops, flops_per_token=flops / L,
                         scan_tokens_per_s=max(L / min(s["scan_seconds"]) for s in scans),
                         scan_gflops=max(scan_gf), matmul_gflops=max(mm_gf), matmul_n=s0["matmul_n"],
                         fraction_best=max(scan_gf) / max(mm_gf),
                         fraction_median=statistics.median(a / b for a, b in zip(scan_gf, mm_gf)),
                         scan_finite=all(s["scan_finite"] for s in scans)))
    return rows


def _si(x) -> str:
    if x is None:
        return "—"
    return f"{x / 1e3:.1f}k" if x >= 1e3 else f"{x:.0f}"


def _mib(x) -> str:
    return "—" if x is None else f"{x / 2**20:.0f} MiB"


def _x(x) -> str:
    return "—" if x is None else f"{x:.2f}×"


def format_table(rows: list[dict]) -> str:
    """Plain-text table of ``summarize`` rows (markdown-compatible)."""
    head = ("| kind | tokens | ours tok/s (best) | peer tok/s (best) | ratio of bests | paired ratio median [min–max] "
            "| ours peak RSS + | peer peak RSS + | memory ratio |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        paired = (f"{_x(r['ratio_paired_median'])} [{r['ratio_paired_min']:.2f}–{r['ratio_paired_max']:.2f}]"
                  if "ratio_paired_median" in r else "—")
        lines.append(f"| {r['kind']} | {r['seq_len']} | {_si(r.get('ours_best'))} | {_si(r.get('peer_best'))} "
                     f"| {_x(r.get('ratio_best'))} | {paired} | {_mib(r.get('ours_rss_working_bytes'))} "
                     f"| {_mib(r.get('peer_rss_working_bytes'))} | {_x(r.get('memory_ratio'))} |")
    return "\n".join(lines)


def format_flops_table(rows: list[dict]) -> str:
    lines = ["| memory_scan tokens | MFLOP/token | scan tok/s | scan GFLOP/s | fp32 matmul GFLOP/s (n) | fraction (best / median) |",
             "|" + "---|" * 6]
    for r in rows:
        lines.append(f"| {r['seq_len']} | {r['flops_per_token'] / 1e6:.2f} | {_si(r['scan_tokens_per_s'])} "
                     f"| {r['scan_gflops']:.1f} | {r['matmul_gflops']:.1f} ({r['matmul_n']}) "
                     f"| {r['fraction_best']:.1%} / {r['fraction_median']:.1%} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The peer environment
# ---------------------------------------------------------------------------------------------

_NETWORK_SIGNS = ("No matching distribution", "Could not find a version", "ResolutionImpossible",
                  "NewConnectionError", "Max retries",
                  "Temporary failure in name resolution", "Network is unreachable", "ConnectionError",
                  "Read timed out", "ProxyError", "SSLError")


def _requirements_stamp() -> str:
    h = hashlib.sha256(REQUIREMENTS.read_bytes())
    h.update(PEER_TORCH.encode())
    h.update(os.environ.get(TORCH_INDEX_ENV, "").encode())
    return h.hexdigest()[:16]


def _peer_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run_pip(python: Path, args: list[str], what: str) -> None:
    cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check", *args]
    print(f"[bench] {what}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        out = (proc.stdout + proc.stderr).strip().splitlines()
        tail = "\n    ".join(line for line in out if "is ignored: it is neither" not in line)[-2500:]
        network = any(sign in proc.stdout + proc.stderr for sign in _NETWORK_SIGNS)
        reason = ("pip could not get the pinned packages: no network access to the package index, or the "
                  "versions are not served there" if network else "pip failed")
        raise PeerSetupError(
            f"could not install the peer environment: {what} failed ({reason}; exit {proc.returncode}).\n"
            f"  command: {' '.join(cmd)}\n    {tail}\n"
            f"The same-run comparison needs {PEER_TORCH} and titans-pytorch with the pins of "
            f"{REQUIREMENTS.relative_to(REPO)} from PyPI (for a CPU torch from another index, set "
            f"{TORCH_INDEX_ENV}). Nothing was measured.")


def ensure_peer_env(venv: Path) -> Path:
    """Create ``venv`` and install the pinned peer packages unless its stamp says they are there;
    return its python. Raises ``PeerSetupError`` with the reason when that cannot be done."""
    python = _peer_python(venv)
    stamp_file = venv / ".peer-installed"
    stamp = _requirements_stamp()
    if python.exists() and stamp_file.exists() and stamp_file.read_text().strip() == stamp:
        return python
    if not python.exists():
        print(f"[bench] creating {venv}", file=sys.stderr, flush=True)
        base = getattr(sys, "_base_executable", None) or sys.executable
        proc = subprocess.run([base, "-m", "venv", str(venv)], capture_output=True, text=True)
        if proc.returncode:
            raise PeerSetupError(f"could not create the peer environment {venv}: {proc.stderr.strip()[-1500:]} "
                                 "(on Debian/Ubuntu: apt-get install python3-venv). Nothing was measured.")
    torch_args = ["-c", str(REQUIREMENTS), PEER_TORCH]
    if os.environ.get(TORCH_INDEX_ENV):
        torch_args = ["--extra-index-url", os.environ[TORCH_INDEX_ENV], *torch_args]
    _run_pip(python, torch_args, f"installing {PEER_TORCH}")
    _run_pip(python, ["--no-deps", "-r", str(REQUIREMENTS)], "installing titans-pytorch and its pinned dependencies")
    check = subprocess.run([str(python), "-c", "import torch, titans_pytorch; print(torch.__version__, torch.version.cuda)"],
                           capture_output=True, text=True)
    if check.returncode:
        raise PeerSetupError(f"the peer environment {venv} was installed but does not import: "
                             f"{check.stderr.strip()[-1500:]}. Nothing was measured.")
    torch_version, cuda = check.stdout.split()
    if cuda != "None":
        print(f"[bench] note: torch {torch_version} is a CUDA build (CUDA {cuda}); it runs on the CPU here. "
              f"Set {TORCH_INDEX_ENV} to a CPU wheel index for the smaller CPU build.", file=sys.stderr)
    stamp_file.write_text(stamp + "\n")
    return python


def peer_freeze(python: Path) -> list[str]:
    proc = subprocess.run([str(python), "-m", "pip", "freeze", "--disable-pip-version-check"],
                          capture_output=True, text=True)
    return proc.stdout.split() if proc.returncode == 0 else []


# ---------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------


def measurement_spec(impl: str, kind: str, seq_len: int, args) -> dict:
    spec = dict(kind=kind, seq_len=seq_len, repeats=args.repeats, warmup_len=args.warmup_len, seed=args.seed)
    if impl == "ours":
        spec.update(config=OURS_CONFIGS[kind], matmul_n=args.matmul_n if kind == "memory" else 0)
    else:
        spec.update(config=PEER_CONFIGS[kind], threads=args.peer_threads, batch=PEER_BATCH)
    return spec


def run_worker(python: Path, script: Path, spec: dict, timeout: float) -> dict:
    """Run one measurement process; its JSON result, or ``{"error": ...}``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        try:
            proc = subprocess.run([str(python), str(script), json.dumps(spec), str(out)], cwd=REPO,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return dict(error=f"timed out after {timeout} s")
        if proc.returncode or not out.exists():
            return dict(error=f"exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-2000:]}")
        return json.loads(out.read_text())


def round_order(round_index: int, position: int) -> tuple[str, str]:
    """Which implementation goes first: alternates with the round and the position in it."""
    return ("ours", "peer") if (round_index + position) % 2 == 0 else ("peer", "ours")


def _git(*args) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
    except OSError:
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def machine_info() -> dict:
    info = dict(platform=platform.platform(), machine=platform.machine(), cpus=os.cpu_count())
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_bytes"] = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    if hasattr(os, "getloadavg"):
        info["loadavg_start"] = list(os.getloadavg())
    info["env"] = {k: os.environ[k] for k in _RECORDED_ENV if k in os.environ}
    return info


# Settings that change either side's speed, recorded when set.
_RECORDED_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                 "MKL_NUM_THREADS", "TITANS_MLX_CACHE_LIMIT", TORCH_INDEX_ENV)


def run(args) -> int:
    venv = (REPO / args.peer_venv).resolve()
    try:
        peer_python = ensure_peer_env(venv)
    except PeerSetupError as e:
        print(f"[bench] ERROR: {e}", file=sys.stderr)
        return 3
    if args.setup_only:
        print(f"[bench] peer environment ready: {peer_python}", file=sys.stderr)
        return 0
    workers = {"ours": (Path(sys.executable), BENCH / "worker_mlx.py"),
               "peer": (peer_python, BENCH / "worker_torch.py")}
    lengths = {k: getattr(args, f"{k}_lengths") for k in KINDS}
    machine = machine_info()
    started = _dt.datetime.now(_dt.timezone.utc)
    measurements: list[dict] = []
    checked: set[str] = set()
    t0 = time.perf_counter()
    for r in range(args.rounds):
        position = 0
        for kind in args.kinds:
            for L in lengths[kind]:
                for order, impl in enumerate(round_order(r, position)):
                    python, script = workers[impl]
                    result = run_worker(python, script, measurement_spec(impl, kind, L, args), args.timeout)
                    entry = dict(impl=impl, kind=kind, seq_len=L, round=r, order=order)
                    if "error" in result:
                        entry["error"] = result["error"]
                        print(f"[bench] round {r + 1}/{args.rounds} {kind:6s} L={L:<6d} {impl}: FAILED "
                              f"{result['error'][-300:]}", file=sys.stderr, flush=True)
                    else:
                        entry["result"] = result
                        rss = result.get("rss_working_bytes")
                        print(f"[bench] round {r + 1}/{args.rounds} {kind:6s} L={L:<6d} {impl}: "
                              f"{_si(result['tokens_per_s'])} tok/s, peak RSS +{_mib(rss)}"
                              f"{'' if result['finite'] else ' (NON-FINITE output)'}  [{time.perf_counter() - t0:.0f} s]",
                              file=sys.stderr, flush=True)
                        if impl == "ours" and kind not in checked:
                            check_match(kind, result["implementation_config"], PEER_CONFIGS[kind])
                            checked.add(kind)
                    measurements.append(entry)
                position += 1
    rows = summarize(measurements, args.kinds, lengths)
    flops = summarize_flops(measurements, lengths["memory"]) if "memory" in args.kinds else []
    if hasattr(os, "getloadavg"):
        machine["loadavg_end"] = list(os.getloadavg())

    def first(impl, key):
        return next((m["result"][key] for m in measurements if m["impl"] == impl and m.get("result")), None)

    commit = _git("rev-parse", "HEAD")
    record = dict(
        schema=SCHEMA,
        created=started.isoformat(timespec="seconds"),
        seconds=time.perf_counter() - t0,
        command=["./run", "bench", *sys.argv[1:]],
        settings=dict(kinds=list(args.kinds), lengths={k: list(lengths[k]) for k in args.kinds}, rounds=args.rounds,
                      repeats=args.repeats, warmup_len=args.warmup_len, peer_threads=args.peer_threads,
                      matmul_n=args.matmul_n, seed=args.seed),
        method=dict(
            timing="each measurement is its own process; tokens/s from the fastest of `repeats` calls after a warm-up "
                   "call on warmup_len tokens; rounds interleave the two implementations back to back in alternating order",
            memory="peak resident set size of the timed calls: VmHWM (reset through /proc/self/clear_refs after the "
                   "warm-up) minus VmRSS before them; MLX's allocator peak (mx.get_peak_memory minus active) recorded beside",
            ratios="this repository / peer: ratio_best divides each side's fastest round; ratio_paired divides within a round",
            flops="bench/peer.py memory_scan_flops (matmul FLOPs of the chunked dual form) over the fastest memory_scan "
                  "call, against 2 n^3 over the fastest fp32 n x n matmul in the same process",
        ),
        machine=machine,
        versions=dict(
            ours=dict(commit=commit, dirty=bool(_git("status", "--porcelain", "--untracked-files=no")),
                      **(first("ours", "versions") or {})),
            peer=dict(**(first("peer", "versions") or {}), threads=first("peer", "threads"),
                      freeze=peer_freeze(peer_python)),
        ),
        configs=dict(ours={k: OURS_CONFIGS[k] for k in args.kinds}, peer={k: PEER_CONFIGS[k] for k in args.kinds},
                     ours_built={k: next((m["result"]["implementation_config"] for m in measurements
                                          if m["impl"] == "ours" and m["kind"] == k and m.get("result")), None)
                                 for k in args.kinds}),
        rows=rows,
        flops=flops,
        measurements=measurements,
    )
    out_dir = REPO / args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{started.strftime('%Y%m%dT%H%M%SZ')}-{(commit or 'nogit')[:8]}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    cpu = machine.get("cpu", machine["machine"])
    print(f"\nSame run, this machine ({cpu}, {machine['cpus']} cores); ours = this repository (MLX "
          f"{record['versions']['ours'].get('mlx')}), peer = titans-pytorch {record['versions']['peer'].get('titans_pytorch')} "
          f"(torch {record['versions']['peer'].get('torch')}, {record['versions']['peer'].get('threads')} threads); "
          f"ratios = ours / peer; {args.rounds} rounds x {args.repeats} calls; memory = peak RSS added by the forward.\n")
    print(format_table(rows))
    nonfinite = [f"{side} {r['kind']} at {r['seq_len']}" for r in rows for side in ("ours", "peer")
                 if r.get(f"{side}_finite") is False]
    if nonfinite:
        print(f"\nnon-finite outputs (timed all the same; values do not change the work): {', '.join(nonfinite)}")
    if flops:
        print("\nmemory_scan alone (4 heads; FLOPs: bench/peer.py memory_scan_flops), same processes as the fp32 matmul:\n")
        print(format_flops_table(flops))
    print(f"\nrecord: {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    failed = [m for m in measurements if "error" in m]
    if failed:
        print(f"[bench] {len(failed)} measurement(s) failed; see 'error' in the record", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except ConfigMismatch as e:
        print(f"[bench] ERROR: {e}", file=sys.stderr)
        return 4


if __name__ == "__main__":
    sys.exit(main())
