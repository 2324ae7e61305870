"""The training loop: configuration checks, a short run that learns, divergence reporting,
checkpoints, evaluation and the command line."""

import json
import math
import shlex

import mlx.core as mx
import numpy as np
import pytest

from titans import train as T

FAST = dict(model="transformer", task="mqar", task_options=dict(n_pairs=2, vocab_size=64, power_a=1.0,
                                                                random_non_queries=False),
            seq_len=32, batch_size=16, steps=40, lr=3e-3, warmup=5, log_every=1000)


def test_a_short_run_lowers_the_loss():
    model, result = T.train(T.TrainConfig(**FAST), log=None)
    assert not result.diverged and len(result.losses) == 40
    assert np.mean(result.losses[-5:]) < np.mean(result.losses[:5]) - 0.2
    assert result.tokens_per_s > 0


def test_runs_are_reproducible_from_the_seed():
    config = T.TrainConfig(**{**FAST, "steps": 5})
    _, a = T.train(config, log=None)
    _, b = T.train(config, log=None)
    assert a.losses == b.losses


PAPER_MEMORY = {"lr_scale": 1.0, "gate_bias": [-2.0, 2.2, -4.0], "normalize_values": False, "momentum_max": 1.0,
                "normalize_output": False}


def test_divergence_is_reported_not_hidden():
    """The paper-literal memory at θ max 1 diverges; the run stops there and says so."""
    config = T.TrainConfig(**{**FAST, "model": "lmm", "model_options": {"memory": PAPER_MEMORY}, "lr": 3e-2,
                              "steps": 60, "sync_every": 4})
    _, result = T.train(config, log=None)
    assert result.diverged and not math.isfinite(result.losses[-1]) and len(result.losses) < 60


def test_stabilized_memory_stays_finite_where_the_literal_one_diverges():
    config = T.TrainConfig(**{**FAST, "model": "lmm", "model_options": {"memory": {"lr_scale": 1.0}}, "lr": 3e-2,
                              "steps": 30})
    _, result = T.train(config, log=None)
    assert not result.diverged and all(math.isfinite(x) for x in result.losses)


def test_checkpoint_round_trip(tmp_path):
    model, _ = T.train(T.TrainConfig(**{**FAST, "steps": 3}), log=None)
    path = T.save_checkpoint(model, T.TrainConfig(**{**FAST, "steps": 3}), tmp_path / "ckpt")
    assert path.suffix == ".safetensors" and path.with_suffix(".json").exists()
    loaded, config = T.load_checkpoint(path)
    tokens = mx.array(np.arange(32).reshape(1, 32) % 64, dtype=mx.int32)
    assert config.steps == 3 and mx.array_equal(loaded(tokens), model(tokens))


def test_evaluate_scores_only_the_targets():
    model, _ = T.train(T.TrainConfig(**{**FAST, "steps": 2}), log=None)
    out = T.evaluate(model, "far_pointer", seq_len=24, n_examples=10, batch_size=4, by="distance",
                     depth=None, vocab_size=64)
    assert 0.0 <= out["accuracy"] <= 1.0 and out["per_example"].shape == (10,)
    assert sum(count for _, count in out["by"].values()) == 10


def test_schedule_warms_up_then_decays():
    sched = T.schedule(T.TrainConfig(**{**FAST, "steps": 100, "warmup": 10}))
    values = [sched(mx.array(step)).item() for step in (0, 9, 10, 99)]
    assert values[0] < values[1] <= 3e-3 + 1e-9 and values[3] < values[2]


@pytest.mark.parametrize("field, value, error", [
    ("task", "babilong", ValueError), ("steps", 0, ValueError), ("lr", -1.0, ValueError),
    ("batch_size", 2.5, TypeError), ("min_lr_ratio", 2.0, ValueError), ("model", "titan", ValueError),
])
def test_bad_configuration(field, value, error):
    with pytest.raises(error, match=field if field != "model" else "unknown model"):
        T.TrainConfig(**{**FAST, field: value})


def test_command_line(tmp_path, capsys):
    rc = T.main(["--model", "retnet", "--task", "mqar", "--task-option", "n_pairs=2", "--task-option",
                 "vocab_size=64", "--seq-len", "32", "--batch-size", "8", "--steps", "3", "--eval-lengths",
                 "32", "--save", str(tmp_path / "run"), "--log-every", "1"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert rc == 0 and "final_loss" in lines[0] and lines[1]["eval_seq_len"] == 32
    assert (tmp_path / "run.safetensors").exists()


def _documented_example(steps: str) -> list[str]:
    """The command in the module docstring, as argv for ``main``, with ``--steps`` replaced."""
    line = next(line.strip() for line in T.__doc__.splitlines() if line.strip().startswith("python -m titans.train"))
    argv = shlex.split(line)[3:]
    argv[argv.index("--steps") + 1] = steps
    return argv


def test_the_documented_example_runs(capsys):
    assert T.main(_documented_example("2")) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["diverged"] is False


def test_option_values_parse_as_json_or_strings():
    assert T._parse_options(["n_pairs=8", "haystack=filler", "depth=null", "uniform_gaps=true", "x=[1,2]",
                             "lr_scale=0.5", "s=a=b", "empty="]) == {
        "n_pairs": 8, "haystack": "filler", "depth": None, "uniform_gaps": True, "x": [1, 2], "lr_scale": 0.5,
        "s": "a=b", "empty": ""}
    with pytest.raises(ValueError, match="KEY=VALUE, got 'n_pairs'"):
        T._parse_options(["n_pairs"])


TINY_RUN = ["--seq-len", "32", "--batch-size", "4", "--steps", "1", "--log-every", "1000"]


@pytest.mark.parametrize("argv, message", [
    (["--task-option", "n_pairs"], "KEY=VALUE, got 'n_pairs'"),
    (["--task-option", "=8"], "KEY=VALUE, got '=8'"),
    (["--model", "titan"], "argument --model: invalid choice: 'titan'"),
    (["--size", "huge"], "argument --size: invalid choice: 'huge'"),
    (["--task", "far_pointer"], "far_pointer needs option(s) depth"),
    (["--task", "far_pointer", "--task-option", "depth=null", "--task-option", "haystack=hay"], "haystack"),
    (["--task-option", "n_pairs=2", "--model-option", "colour=1"], "no option(s) ['colour']"),
    (["--task-option", "n_pairs=2", "--eval-lengths", "4"], "--eval-lengths 4: seq_len must be >= 4 * n_pairs = 8"),
    (["--task-option", "n_pairs=2", "--task-option", "vocab_size=1024"],
     "vocab_size=1024 exceeds the model's vocab_size=512"),
])
def test_command_line_errors_are_argparse_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        T.main(argv + TINY_RUN)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("options, vocab", [
    ([], 512),                                              # the tiny models' vocabulary
    (["--model-option", "vocab_size=128"], 128),            # follows a model override
    (["--task-option", "vocab_size=64"], 64),               # an explicit smaller one is kept
])
def test_task_vocabulary_follows_the_model(tmp_path, options, vocab):
    assert T.main(["--task-option", "n_pairs=2", *options, *TINY_RUN, "--save", str(tmp_path / "run")]) == 0
    config = json.loads((tmp_path / "run.json").read_text())
    assert config["task_options"]["vocab_size"] == vocab
    assert T.model_args(config["model"], config["size"], **config["model_options"]).vocab_size >= vocab


def test_far_pointer_with_a_string_haystack(capsys):
    rc = T.main(["--task", "far_pointer", "--task-option", "haystack=filler", "--task-option", "depth=null",
                 *TINY_RUN, "--steps", "2", "--eval-lengths", "48"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert rc == 0 and lines[1]["eval_seq_len"] == 48


@pytest.mark.parametrize("model", ["transformer", "lmm", "mac"])
def test_compiled_step_matches_the_eager_step(model):
    """The compiled training step (the fast path) follows the same trajectory as the plain one."""
    config = {**FAST, "model": model, "steps": 6}
    _, compiled = T.train(T.TrainConfig(**config), log=None)
    _, eager = T.train(T.TrainConfig(**config, compile=False), log=None)
    assert np.allclose(compiled.losses, eager.losses, rtol=1e-4, atol=1e-5), (compiled.losses, eager.losses)


def test_learning_curve_is_recorded_on_held_out_data():
    _, result = T.train(T.TrainConfig(**{**FAST, "steps": 10, "curve_every": 4, "eval_examples": 16}), log=None)
    assert [step for step, _ in result.curve] == [4, 8, 10]
    assert all(0.0 <= acc <= 1.0 for _, acc in result.curve)
    assert len(result.accuracies) == len(result.losses) == 10


def test_stopping_rule_stops_once_the_curve_has_reached_the_bar():
    """A run stops at the first curve point where the last ``stop_patience`` points all reach
    ``stop_accuracy``, and trains every step when they never do."""
    base = {**FAST, "steps": 40, "curve_every": 5, "eval_examples": 32}
    _, full = T.train(T.TrainConfig(**base), log=None)
    low = min(acc for _, acc in full.curve[1:])  # a bar that the first two points reach
    _, stopped = T.train(T.TrainConfig(**base, stop_accuracy=max(low, 1e-6), stop_patience=2), log=None)
    first = next(i for i in range(1, len(full.curve)) if min(full.curve[i - 1][1], full.curve[i][1]) >= max(low, 1e-6))
    assert stopped.stopped_early and stopped.curve == full.curve[: first + 1]
    assert len(stopped.losses) == stopped.curve[-1][0] and stopped.losses == full.losses[: len(stopped.losses)]
    _, never = T.train(T.TrainConfig(**base, stop_accuracy=1.0, stop_patience=len(full.curve) + 1), log=None)
    assert not never.stopped_early and len(never.losses) == 40


@pytest.mark.parametrize("options, message", [
    ({"stop_accuracy": 1.5, "curve_every": 5}, "stop_accuracy"),
    ({"stop_accuracy": 0.9}, "curve_every"),
    ({"stop_accuracy": 0.9, "curve_every": 5, "stop_patience": 0}, "stop_patience"),
])
def test_bad_stopping_rule(options, message):
    with pytest.raises(ValueError, match=message):
        T.TrainConfig(**{**FAST, **options})


def test_parallel_trained_runs_equal_serial_ones():
    """``claims.training.run_trainings``: worker processes give the outcomes a serial run gives, and
    outcomes are cached for the session."""
    from claims import training as TR

    runs = [TR.TrainingRun.make(model=m, seed=1, lr=3e-3, steps=3, task="far_pointer", seq_len=16, batch_size=4,
                                task_options={"depth": None, "vocab_size": 64}, eval_lengths=(16,), eval_examples=8)
            for m in ("transformer", "lmm")]
    parallel = TR.run_trainings(runs, workers=2)
    serial = [TR.train_and_evaluate(r) for r in runs]
    for p, s in zip(parallel, serial):
        assert p.run == s.run and not p.diverged and p.steps_done == 3
        assert np.allclose(p.losses, s.losses, rtol=1e-5) and p.accuracy == s.accuracy
    assert TR.run_trainings(runs[:1])[0] is parallel[0]
    with pytest.raises(TypeError, match="TrainingRun"):
        TR.run_trainings([dict(model="lmm")])
