"""Weight-sharing runs: SIGKILL then resume continues the same run; MirroredStrategy on 2 CPUs."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

RUN = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    import tensorflow as tf
    tf.config.experimental.enable_op_determinism()
    from nasnet_app.search.callbacks import SearchCallback
    from nasnet_app.search.spaces import NASBench201Space
    from nasnet_app.search.weight_sharing import WeightSharingSearch

    directory, kill_epoch, resume = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "resume"

    class KillMidEpoch(SearchCallback):
        # SIGKILL in the controller phase of `kill_epoch`: after that epoch's supernet
        # steps and some logged trials, before its checkpoint.
        def on_trial_end(self, trial, logs=None):
            if trial.metrics["epoch"] == kill_epoch and trial.metrics["phase"] == "controller":
                os.kill(os.getpid(), signal.SIGKILL)

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (48, 16, 16, 3), dtype="uint8")
    labels = rng.integers(0, 10, 48)
    search = WeightSharingSearch(
        NASBench201Space(), supernet_kwargs={"channels": 4, "cells_per_stage": 1},
        input_shape=(16, 16, 3), batch_size=8, controller_steps=2, aggregate=2,
        derive_samples=3, steps_per_epoch=3, warmup_epochs=1, seed=0)
    search.search((images, labels), (images[:24], labels[:24]), epochs=3, directory=directory,
                  resume=resume, callbacks=[KillMidEpoch()], verbose=0)
    """
)

MIRRORED = textwrap.dedent(
    """
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    from nasnet_app.search.spaces import NASBench201Space
    from nasnet_app.search.weight_sharing import WeightSharingSearch

    def make(strategy=None):
        search = WeightSharingSearch(
            NASBench201Space(), supernet_kwargs={"channels": 4, "cells_per_stage": 1},
            input_shape=(16, 16, 3), batch_size=8, controller_steps=2, aggregate=2,
            derive_samples=2, steps_per_epoch=2, warmup_epochs=0, strategy=strategy, seed=0)
        search._build(0)
        return search

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, 16, 16, 3), dtype="uint8")
    y = rng.integers(0, 10, 8)
    single, mirrored = make(), make(strategy)
    # Both replicas see x: per-replica BN statistics equal the single device's, and the
    # all-reduced gradient must equal the single-device one (not twice it).
    loss_single, _ = single.train_on_batch(x, y, [3, 1, 2, 4, 0, 3])
    loss_mirrored, _ = mirrored.train_on_batch(np.concatenate([x, x]), np.concatenate([y, y]),
                                               [3, 1, 2, 4, 0, 3])
    np.testing.assert_allclose(loss_single, loss_mirrored, rtol=1e-4)
    for a, b in zip(single.supernet.get_weights(), mirrored.supernet.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    images = rng.integers(0, 256, (32, 16, 16, 3), dtype="uint8")
    labels = rng.integers(0, 10, 32)
    history = make(strategy).search((images, labels), (images, labels), epochs=1, verbose=0)
    print("derived", history.best_trial.arch_key, history.epochs[0]["controller_updates"])
    """
)


def _python(code, *args, check=True):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}: {result.stderr[-3000:]}")
    return result


def _trials(directory):
    with open(os.path.join(directory, "trials.jsonl"), encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    return [(r["actions"], round(r["reward"], 6), r["metrics"]["phase"]) for r in records]


@pytest.mark.slow
def test_sigkill_then_resume_continues_the_same_run(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    _python(RUN, straight, -1, "new")
    result = _python(RUN, killed, 2, "new", check=False)
    assert result.returncode == -signal.SIGKILL
    state = json.loads((killed / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == 2
    logged = len((killed / "trials.jsonl").read_text().splitlines())
    assert logged > state["num_trials"]  # trials after the checkpoint, to be replayed
    _python(RUN, killed, -1, "resume")
    assert _trials(killed) == _trials(straight)
    summary = json.loads((killed / "summary.json").read_text())
    expected = json.loads((straight / "summary.json").read_text())
    assert summary["finished"] and summary["epochs_done"] == 3
    assert summary["best_trial"]["arch_key"] == expected["best_trial"]["arch_key"]


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus():
    output = _python(MIRRORED).stdout
    assert "derived |" in output
