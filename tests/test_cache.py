"""configure_allocator raises MLX's CPU allocator cache limit (titans._cache); the env var controls
it; import titans alone changes nothing."""

import os
import subprocess
import sys

import pytest

PROBE = ("import titans, mlx.core as mx; from titans._cache import cache_limit; titans.configure_allocator(); "
         "print(cache_limit(), mx.set_cache_limit(0))")
IMPORT_ONLY = "import titans, mlx.core as mx; from titans._cache import cache_limit; print(cache_limit())"


def probe(value: str | None, code: str = PROBE) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TITANS_MLX_CACHE_LIMIT"}
    if value is not None:
        env["TITANS_MLX_CACHE_LIMIT"] = value
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_default_limit_is_raised_and_recorded():
    from titans._cache import _CAP

    run = probe(None)
    assert run.returncode == 0, run.stderr
    recorded, active = (int(x) for x in run.stdout.split())
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert recorded == active == min(_CAP, physical // 4)
    assert recorded > 32 * 2**20  # above MLX's own CPU default


def test_explicit_and_default_choices():
    run = probe(str(3 * 2**30))
    assert run.stdout.split() == [str(3 * 2**30)] * 2
    run = probe("default")
    assert run.stdout.split()[0] == "None"  # MLX's own default kept


@pytest.mark.parametrize("bad", ["lots", "-5"])
def test_bad_values_name_the_variable(bad):
    run = probe(bad)
    assert run.returncode != 0 and "TITANS_MLX_CACHE_LIMIT" in run.stderr


def test_import_alone_keeps_mlx_default():
    run = probe(None, IMPORT_ONLY)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["None"]
