"""The pure parts of ``./run bench --peer`` (bench/peer.py): arguments, the FLOP count of
``memory_scan``, the configuration match, ratios and tables. Nothing here installs or imports torch."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench import peer
from bench._proc import PeakRSS, status_bytes

# ---------------------------------------------------------------------------------------------
# Arguments: every error names its argument
# ---------------------------------------------------------------------------------------------


def test_defaults():
    args = peer.parse_args(["--peer"])
    assert args.kinds == ("memory", "mac")
    assert args.memory_lengths == (1024, 4096, 8192, 16384)
    assert args.mac_lengths == (1024, 4096, 8192)
    assert args.rounds >= 1 and args.repeats >= 1 and args.peer_threads >= 1


def test_lengths_accept_k_suffix():
    assert peer.parse_lengths("1k, 4096,8K", "--memory-lengths", 64) == (1024, 4096, 8192)
    args = peer.parse_args(["--peer", "--kinds", "mac", "--mac-lengths", "2k"])
    assert args.kinds == ("mac",) and args.mac_lengths == (2048,)


@pytest.mark.parametrize("text, fragment", [
    ("1000", "multiple of 64"), ("0", "positive multiple"), ("abc", "not a length"), ("1k,,4k", "empty entry"),
    ("1k,1024", "given twice"), ("-64", "not a length"),
])
def test_bad_lengths_name_the_option(text, fragment):
    with pytest.raises(ValueError, match=fragment) as e:
        peer.parse_lengths(text, "--memory-lengths", 64)
    assert str(e.value).startswith("--memory-lengths:")


@pytest.mark.parametrize("argv, option", [
    ([], "--peer"),
    (["--peer", "--rounds", "0"], "--rounds"),
    (["--peer", "--repeats", "x"], "--repeats"),
    (["--peer", "--peer-threads", "0"], "--peer-threads"),
    (["--peer", "--kinds", "memory,lstm"], "--kinds"),
    (["--peer", "--kinds", "mac,mac"], "--kinds"),
    (["--peer", "--mac-lengths", "1000"], "--mac-lengths"),
    (["--peer", "--memory-lengths", "4k,100"], "--memory-lengths"),
    (["--peer", "--warmup-len", "192"], "--warmup-len"),
    (["--peer", "--memory-lengths", "128"], "--memory-lengths"),  # shorter than the warm-up
    (["--peer", "--timeout", "-1"], "--timeout"),
    (["--peer", "--matmul-n", "-2"], "--matmul-n"),
])
def test_bad_arguments_are_named(argv, option, capsys):
    with pytest.raises(SystemExit) as e:
        peer.parse_args(argv)
    assert e.value.code == 2
    assert option in capsys.readouterr().err


def test_lengths_of_a_kind_not_run_are_not_held_to_the_warmup():
    args = peer.parse_args(["--peer", "--kinds", "mac", "--memory-lengths", "128"])
    assert args.kinds == ("mac",)


# ---------------------------------------------------------------------------------------------
# FLOPs of memory_scan
# ---------------------------------------------------------------------------------------------


def _mm(m, k, n):
    return 2 * m * k * n


def _enumerated_chunk_flops(b, dims):
    """The matmuls of one chunk of ``titans/ops/memory.py`` written out one by one."""
    layers = list(zip(dims[:-1], dims[1:]))
    total = _mm(b, b, 1) + _mm(b, b, b)  # chunk_coefficients: f = R_α m, G = R_α R_η
    for d_in, d_out in layers:  # _forward_backward: k through the MLP at the chunk-start weights
        total += _mm(b, d_in, d_out)
    for d_in, d_out in layers[1:]:  # the error back through every layer but the first
        total += _mm(b, d_out, d_in)
    for d_in, d_out in layers:  # _scan_chunk: h W_s^T, h S_s^T, h a^T, (. * G) g
        total += 2 * _mm(b, d_in, d_out) + _mm(b, d_in, b) + _mm(b, b, d_out)
    for d_in, d_out in layers:  # chunk-end weights and momentum: (g * g_end)^T a, (g * n_end)^T a
        total += 2 * _mm(d_out, b, d_in)
    return total


def test_flops_tiny_by_hand():
    # b = 2, one 1x1 layer: 2·8 + 2·4 (coefficients) + 10·2·1·1 (forward, 2 reads, 2 updates)
    # + 2·4·(1 + 1) (the two b x b products of the read) = 60
    assert peer.memory_scan_flops(2, 2, (1, 1)) == 60


@pytest.mark.parametrize("dims", [(1, 1), (2, 3, 2), (4, 8, 8, 4)])
@pytest.mark.parametrize("T, chunk", [(2, 2), (3, 2), (8, 4), (5, 8)])
def test_flops_formula_matches_the_enumerated_matmuls(dims, T, chunk):
    full, rest = divmod(T, chunk)
    expected = full * _enumerated_chunk_flops(chunk, dims) + (_enumerated_chunk_flops(rest, dims) if rest else 0)
    assert peer.memory_scan_flops(T, chunk, dims) == expected
    assert peer.memory_scan_flops(T, chunk, dims, heads=4, batch=3) == 12 * expected


def test_flops_of_the_benchmarked_memory():
    # 4 heads x 64, hidden 256, chunk 64: 28.84 MFLOP per chunk and head, 1.80 MFLOP per token
    per_token = peer.memory_scan_flops(64, 64, (64, 256, 64), heads=4) / 64
    assert per_token == 1_802_752
    assert peer.memory_scan_flops(4096, 64, (64, 256, 64), heads=4) == 4096 * per_token


def test_flops_rejects_bad_sizes():
    with pytest.raises(ValueError):
        peer.memory_scan_flops(0, 64, (64, 64))
    with pytest.raises(ValueError):
        peer.memory_scan_flops(64, 64, (64,))


# ---------------------------------------------------------------------------------------------
# Configurations
# ---------------------------------------------------------------------------------------------


def test_peer_configs_match_what_this_repository_builds():
    """The MLX worker's modules (built as in a run) against the peer's keyword arguments."""
    from bench import worker_mlx

    for kind in peer.KINDS:
        _, _, _, described = worker_mlx._build(kind, peer.OURS_CONFIGS[kind], 128, 0)
        peer.check_match(kind, described, peer.PEER_CONFIGS[kind])


def test_config_mismatch_names_the_setting():
    ours = dict(dims=256, n_heads=4, head_dim=64, chunk_size=32, depth=2, expansion=4)
    with pytest.raises(peer.ConfigMismatch, match=r"chunk: ours 32, peer 64"):
        peer.check_match("memory", ours, peer.PEER_CONFIGS["memory"])


# ---------------------------------------------------------------------------------------------
# Ratios and tables
# ---------------------------------------------------------------------------------------------


def _m(impl, kind, L, r, tps, rss=None, **extra):
    return dict(impl=impl, kind=kind, seq_len=L, round=r, order=0,
                result=dict(tokens_per_s=tps, rss_working_bytes=rss, **extra))


def test_summarize_ratios():
    ms = [
        _m("ours", "memory", 1024, 0, 100.0, rss=10 * 2**20), _m("peer", "memory", 1024, 0, 50.0, rss=40 * 2**20),
        _m("peer", "memory", 1024, 1, 40.0, rss=30 * 2**20), _m("ours", "memory", 1024, 1, 200.0, rss=12 * 2**20),
        _m("ours", "memory", 4096, 0, 80.0),
        dict(impl="peer", kind="memory", seq_len=4096, round=0, order=1, error="timed out after 9 s"),
    ]
    rows = peer.summarize(ms, ("memory",), {"memory": (1024, 4096)})
    a, b = rows
    assert a["ratio_best"] == pytest.approx(200 / 50)
    assert a["ratio_paired"] == pytest.approx([2.0, 5.0])
    assert a["ratio_paired_median"] == pytest.approx(3.5)
    assert (a["ratio_paired_min"], a["ratio_paired_max"]) == pytest.approx((2.0, 5.0))
    assert a["ours_rss_working_bytes"] == 12 * 2**20 and a["peer_rss_working_bytes"] == 40 * 2**20
    assert a["memory_ratio"] == pytest.approx(12 / 40)
    assert b["rounds_peer"] == 0 and "ratio_best" not in b  # the failed peer measurement gives no ratio
    table = peer.format_table(rows)
    lines = table.splitlines()
    assert len(lines) == 4
    assert "| memory | 1024 | 200 | 50 | 4.00× | 3.50× [2.00–5.00] | 12 MiB | 40 MiB | 0.30× |" in lines
    assert lines[3].startswith("| memory | 4096 | 80 | — | — | — |")


def test_summarize_flops():
    scan = dict(scan_seconds=[0.5, 0.25], matmul_seconds=[0.02, 0.01], matmul_n=100, scan_dims=[2, 3, 2],
                scan_heads=2, scan_chunk=2, scan_finite=True)
    ms = [_m("ours", "memory", 4, 0, 1.0, scan=scan)]
    (row,) = peer.summarize_flops(ms, (4, 8))  # no record at 8: no row
    flops = peer.memory_scan_flops(4, 2, (2, 3, 2), heads=2)
    assert row["flops"] == flops
    assert row["scan_gflops"] == pytest.approx(flops / 0.25 / 1e9)
    assert row["matmul_gflops"] == pytest.approx(2 * 100**3 / 0.01 / 1e9)
    assert row["fraction_best"] == pytest.approx(flops / 0.25 / (2 * 100**3 / 0.01))
    assert "| 4 |" in peer.format_flops_table([row])


def test_rounds_alternate_which_side_goes_first():
    orders = [peer.round_order(r, p) for r in range(2) for p in range(3)]
    assert orders[:3] == [("ours", "peer"), ("peer", "ours"), ("ours", "peer")]
    assert orders[3:] == [("peer", "ours"), ("ours", "peer"), ("peer", "ours")]


# ---------------------------------------------------------------------------------------------
# The peer environment's pins, the RSS reader
# ---------------------------------------------------------------------------------------------


def test_peer_requirements_are_pinned():
    lines = [line.split("#")[0].strip() for line in peer.REQUIREMENTS.read_text().splitlines()]
    pins = [line for line in lines if line]
    assert all("==" in line for line in pins), pins
    names = {line.split("==")[0].lower().replace("_", "-") for line in pins}
    assert "titans-pytorch" in names and "torch" not in names  # torch: PEER_TORCH, installed first
    assert peer.PEER_TORCH.startswith("torch==")


def test_install_failure_says_why(tmp_path):
    """An install that cannot get its packages stops with a message naming the cause (offline:
    ``--no-index`` and an empty link folder, into no environment since nothing is found)."""
    with pytest.raises(peer.PeerSetupError, match="could not get the pinned packages") as e:
        peer._run_pip(Path(sys.executable), ["--no-index", "--find-links", str(tmp_path), "--dry-run",
                                             "titans-bench-peer-no-such-package==0.0.1"], "test install")
    assert "Nothing was measured" in str(e.value)


def test_status_bytes_parses_proc_status():
    text = "Name:\tpython\nVmHWM:\t  2048 kB\nVmRSS:\t    1024 kB\n"
    assert status_bytes("VmHWM", text) == 2048 * 1024
    assert status_bytes("VmRSS", text) == 1024 * 1024
    assert status_bytes("VmSwap", text) is None


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
def test_peak_rss_sees_a_block_of_memory():
    with PeakRSS() as m:
        block = bytearray(64 * 2**20)
        block[:: 4096] = b"x" * len(block[:: 4096])  # touch every page
        del block
    if m.reset:
        assert m.working >= 60 * 2**20
    assert m.record()["rss_peak_bytes"] >= m.before


def test_summarize_reports_non_finite_outputs():
    ms = [_m("ours", "mac", 1024, 0, 10.0, finite=True), _m("peer", "mac", 1024, 0, 5.0, finite=False),
          _m("peer", "mac", 1024, 1, 6.0, finite=True)]
    (row,) = peer.summarize(ms, ("mac",), {"mac": (1024,)})
    assert row["ours_finite"] is True and row["peer_finite"] is False
