"""One measurement of the peer, titans-pytorch on the CPU, in its own process.

Run by ``bench/peer.py`` with the peer's venv (``.venv-peer``): ``python bench/worker_torch.py SPEC
OUT``, like ``worker_mlx.py``. ``SPEC["config"]`` holds the keyword arguments of titans-pytorch's
``NeuralMemory`` (``kind`` memory) or ``MemoryAsContextTransformer`` (``kind`` mac; its memory MLP
as ``neural_memory_model``, a dict of ``MemoryMLP`` arguments), chosen in ``bench/peer.py``.

Timing as the MLX worker's: ``torch.set_num_threads(SPEC["threads"])``, forward under
``torch.no_grad()`` in eval mode, a warm-up call on ``warmup_len`` tokens, then ``repeats`` timed
calls on ``seq_len`` tokens. Peak memory: resident set size (``_proc.PeakRSS``, ``VmHWM`` reset
after the warm-up), since ``tracemalloc`` does not see torch's allocations.
"""

import platform
import sys
import time
from importlib.metadata import version

import torch

from _proc import PeakRSS, run_worker  # bench/ is this script's directory, hence on sys.path


def _build(kind: str, config: dict, seq_len: int, seed: int, batch: int):
    from titans_pytorch import MemoryAsContextTransformer, MemoryMLP, NeuralMemory

    torch.manual_seed(seed)
    config = dict(config)
    if kind == "memory":
        module = NeuralMemory(**config)
        x = torch.randn(batch, seq_len, config["dim"], generator=torch.Generator().manual_seed(seed + 1))
    elif kind == "mac":
        memory_model = config.pop("neural_memory_model")
        module = MemoryAsContextTransformer(neural_memory_model=MemoryMLP(**memory_model), **config)
        x = torch.randint(0, config["num_tokens"], (batch, seq_len), generator=torch.Generator().manual_seed(seed + 1))
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return module.eval(), x


def _output(result):
    """The retrieved sequence of ``NeuralMemory`` (it returns ``(retrieved, state)``), the logits
    of the transformer."""
    return result[0] if isinstance(result, tuple) else result


def measure(spec: dict) -> dict:
    torch.set_num_threads(spec["threads"])
    kind, L, batch = spec["kind"], spec["seq_len"], spec["batch"]
    module, x = _build(kind, spec["config"], L, spec["seed"], batch)
    out = []

    def forward(inp):
        with torch.no_grad():
            out[:] = [_output(module(inp))]

    def timed():
        start = time.perf_counter()
        forward(x)
        return time.perf_counter() - start

    forward(x[:, : spec["warmup_len"]])
    seconds = []
    with PeakRSS() as rss:
        for _ in range(spec["repeats"]):
            seconds.append(timed())
    return dict(
        seconds=seconds,
        tokens_per_s=L * batch / min(seconds),
        finite=bool(torch.isfinite(out[0]).all()),
        output_shape=list(out[0].shape),
        parameters=sum(p.numel() for p in module.parameters()),
        threads=torch.get_num_threads(),
        versions=dict(torch=torch.__version__, titans_pytorch=version("titans-pytorch"),
                      python=platform.python_version(), torch_cuda=torch.version.cuda,
                      torch_parallel=torch.__config__.parallel_info().splitlines()[:4]),
        device="cpu",
        **rss.record(),
    )


if __name__ == "__main__":
    run_worker(measure, sys.argv)
