"""WeightSharingSearch: the ENAS schedule, the uniform arm, the collapse guard, run files, CLI."""

import io
import json
import os

import numpy as np
import pytest

from nasnet_app.search.algorithms import Reinforce
from nasnet_app.search.base import Trial
from nasnet_app.search.callbacks import SearchCallback
from nasnet_app.search.controller import Controller
from nasnet_app.search.spaces import NASBench201Space
from nasnet_app.search.weight_sharing import (
    ENAS_SETTINGS,
    WeightSharingSearch,
    enas_nasnet_space,
)

SHAPE = (16, 16, 3)
ALL_SKIP = [1] * 6


def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, *SHAPE), dtype="uint8")
    return images, rng.integers(0, 10, n)


def _search(space=None, **kwargs):
    options = dict(
        supernet_kwargs={"channels": 4, "cells_per_stage": 1},
        input_shape=SHAPE,
        batch_size=8,
        controller_steps=2,
        aggregate=2,
        derive_samples=3,
        steps_per_epoch=3,
        seed=0,
    )
    options.update(kwargs)
    return WeightSharingSearch(space or NASBench201Space(), **options)


class EpochRecorder(SearchCallback):
    def __init__(self):
        super().__init__()
        self.epochs, self.trials, self.updates = [], 0, 0

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append((epoch, dict(logs)))

    def on_trial_end(self, trial, logs=None):
        self.trials += 1

    def on_controller_update(self, logs=None):
        self.updates += 1


@pytest.fixture(scope="module")
def enas_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("enas")
    recorder = EpochRecorder()
    stream = io.StringIO()
    search = _search(warmup_epochs=1)
    import sys

    real, sys.stdout = sys.stdout, stream
    try:
        history = search.search(
            _data(), _data(seed=1), epochs=2, directory=directory, callbacks=[recorder]
        )
    finally:
        sys.stdout = real
    return search, history, recorder, directory, stream.getvalue()


def test_enas_run_writes_the_run_files(enas_run):
    search, history, _, directory, _ = enas_run
    summary = json.loads((directory / "summary.json").read_text())
    best = summary["best_trial"]
    assert summary["finished"] is True
    assert best["arch_key"] == NASBench201Space().decode(best["actions"])
    assert best["metrics"]["phase"] == "derive"
    assert best["metrics"]["val_images"] == 48  # the whole validation split
    lines = (directory / "trials.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["trial_id"] for r in records] == list(range(len(records)))
    phases = [r["metrics"]["phase"] for r in records]
    # warm-up epoch: 2 monitored samples; ENAS epoch: 2 updates x 2 samples; 3 derived.
    assert phases == ["controller"] * 6 + ["derive"] * 3
    assert os.path.exists(directory / "checkpoint" / "state.json")


def test_warmup_is_uniform_then_the_controller_learns(enas_run):
    search, history, recorder, _, _ = enas_run
    first, second = history.epochs
    assert first["controller_updates"] == 0 and first["mean_reward"] is None
    assert second["controller_updates"] == 2 and second["mean_reward"] is not None
    assert search.algorithm.version == 2 and recorder.updates == 2
    assert [epoch for epoch, _ in recorder.epochs] == [0, 1]
    assert recorder.trials == 9


def test_one_trace_for_the_whole_run(enas_run):
    search = enas_run[0]
    assert search.trace_count() == {"train": 1, "eval": 1}


def test_progress_shows_loss_validation_accuracy_and_mean_reward(enas_run):
    output = enas_run[4]
    assert "supernet loss" in output and "val acc" in output
    assert "policy mean reward" in output and "epoch 2/2" in output


def test_random_arm_uses_the_same_supernet_without_a_controller():
    search = _search(algorithm="random")
    history = search.search(_data(), _data(seed=1), epochs=1, verbose=0)
    assert not hasattr(search.algorithm, "controller")
    assert history.epochs[0]["mean_reward"] is None
    assert history.best_trial.metrics["phase"] == "derive"


def test_enas_preset_is_the_enas_code_settings():
    assert ENAS_SETTINGS == {
        "units": 64,
        "learning_rate": 3.5e-3,
        "entropy_weight": 1e-4,
        "baseline_decay": 0.99,
        "tanh_constant": 1.1,
        "op_tanh_reduce": 2.5,
        "controller_steps": 30,
        "aggregate": 10,
    }
    search = _search(controller_steps=None, aggregate=None)
    search._build(0)
    controller = search.algorithm.controller
    assert controller.units == 64 and controller.tanh_constant == 1.1
    assert controller.op_tanh_reduce == 2.5
    assert search.algorithm.learning_rate == 3.5e-3 and search.algorithm.baseline_decay == 0.99


def test_collapse_guard_bounds_the_all_skip_cell():
    """Even a reward that pays only for the all-skip cell cannot take the ENAS policy over."""
    space = NASBench201Space()
    s = ENAS_SETTINGS
    controller = Controller(
        space, units=16, tanh_constant=s["tanh_constant"], op_tanh_reduce=s["op_tanh_reduce"]
    )
    algorithm = Reinforce(
        space,
        controller=controller,
        learning_rate=0.05,
        batch_size=10,
        entropy_weight=0.0,
        baseline_decay=0.9,
        advantage="baseline",
        allow_repeats=True,
        seed=0,
    )
    rng = np.random.default_rng(0)
    for _ in range(60):
        sample = controller.sample(10, rng)
        trials = [
            Trial(i, a.tolist(), "", "", "completed", reward=float(a.tolist() == ALL_SKIP))
            for i, a in enumerate(sample["actions"])
        ]
        trials = [
            Trial(i, t.actions, "", "", "completed", reward=t.reward + (np.mean(t.actions) == 1))
            for i, t in enumerate(trials)
        ]
        algorithm.update(trials)
    probability = float(np.prod(controller.step_probabilities([ALL_SKIP])))
    bound = (np.exp(0.44) / (np.exp(0.44) + 4 * np.exp(-0.44))) ** 6
    assert algorithm.version == 60
    assert probability > 1 / 5**6  # it learnt towards the rewarded cell ...
    assert probability <= bound + 1e-9  # ... but stays below the tanh bound (about 0.3%)


@pytest.mark.slow  # tracing the NASNet supernet's gradient takes minutes on a loaded CPU
def test_nasnet_space_search_runs():
    space = enas_nasnet_space(num_blocks=2)
    search = _search(space, supernet_kwargs={"filters": 4, "cells_per_stage": 1})
    history = search.search(_data(), _data(seed=1), epochs=1, verbose=0)
    genotype = space.from_data(history.best_trial.architecture)
    assert len(genotype.normal.blocks) == 2
    assert search.trace_count() == {"train": 1, "eval": 1}


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="`algorithm` must be"):
        _search(algorithm="ppo")
    with pytest.raises(ValueError, match="`settings` must be"):
        _search(settings={"units": 8, "learning": 1})
    with pytest.raises(ValueError, match="`training_ops` must be"):
        _search(training_ops=["conv9x9"])
    search = _search()
    with pytest.raises(ValueError, match="`train_data` must be"):
        search.search(_data()[0], _data(), epochs=1, verbose=0)


def test_existing_run_needs_resume(enas_run):
    directory = enas_run[3]
    with pytest.raises(FileExistsError, match="resume=True"):
        _search().search(_data(), _data(seed=1), epochs=2, directory=directory, verbose=0)


def test_training_ops_restrict_uniform_training_paths_only():
    search = _search(training_ops=["skip_connect", "nor_conv_3x3"])
    search._build(0)
    allowed = {search.space.ops.index("skip_connect"), search.space.ops.index("nor_conv_3x3")}
    paths = [search.training_path(uniform=True) for _ in range(50)]
    assert set(np.concatenate(paths)) == allowed
    # The space stays whole: uniform samples of the search (derivation, monitor) use every op.
    sampled = search.sample_architectures(50, uniform=True)[0]
    assert set(np.concatenate(sampled)) == set(range(len(search.space.ops)))


def test_resume_refuses_supernet_weights_of_another_shape(enas_run, tmp_path):
    import shutil

    from nasnet_app.search.algorithms import load_state, save_state
    from nasnet_app.search.run_directory import RunDirectory

    directory = tmp_path / "run"
    shutil.copytree(enas_run[3], directory)
    run_dir = RunDirectory(directory)
    _, runner = run_dir.load_checkpoint()
    path = os.path.join(run_dir.checkpoint_dir, runner["algorithm_file"])
    state = load_state(path)
    state["arrays"]["supernet/0"] = np.zeros((1, 2, 3), "float32")
    save_state(path, state)
    with pytest.raises(ValueError, match=r"Cannot resume .*supernet.* of shape \(1, 2, 3\)"):
        _search().search(_data(), _data(seed=1), epochs=3, directory=directory, resume=True)


def test_finished_run_derives_again_with_other_derivation_settings(enas_run, tmp_path):
    import shutil

    directory = tmp_path / "run"
    shutil.copytree(enas_run[3], directory)
    before = [t.actions for t in enas_run[1].trials if t.metrics["phase"] == "derive"]

    def derive(**settings):
        history = _search(**settings).search(
            _data(), _data(seed=1), epochs=2, directory=directory, resume=True, verbose=0
        )
        return [t for t in history.trials if t.metrics["phase"] == "derive"]

    # Nothing retrained: the restored policy draws the first run's candidates again.
    fewer_images = derive(derive_images=20)
    assert [t.actions for t in fewer_images] == before
    assert {t.metrics["val_images"] for t in fewer_images} == {20}
    assert len(derive(derive_samples=6)) == 6
    summary = json.loads((directory / "summary.json").read_text())
    assert summary["derivation"] == {"samples": 6, "images": 48}
    assert summary["epochs_done"] == 2
    with pytest.raises(ValueError, match="another space or settings"):
        _search(batch_size=4).search(
            _data(), _data(seed=1), epochs=2, directory=directory, resume=True, verbose=0
        )
