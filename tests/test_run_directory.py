"""Tests of the run folder: log repair, record order, checkpoints."""

import json

import numpy as np
import pytest

from nasnet_app.search.base import Trial
from nasnet_app.search.run_directory import RunDirectory, json_safe


def trial(trial_id, reward=0.5):
    return Trial(trial_id, [0], "arch", "arch", "completed", reward)


def test_a_new_folder_holds_no_run(tmp_path):
    run = RunDirectory(tmp_path / "run")
    assert not run.has_run()
    assert run.read_trials() == [] and run.load_checkpoint() is None and run.read_run_info() is None
    run.create({"seed": 1})
    assert run.has_run() and run.read_run_info()["seed"] == 1
    with pytest.raises(ValueError, match="directory"):
        RunDirectory("")


def test_torn_last_line_is_cut_and_appends_continue(tmp_path):
    run = RunDirectory(tmp_path)
    run.append_trial(trial(0), proposal_id=0)
    with open(run.trials_path, "a") as handle:
        handle.write('{"trial_id": 1, "sta')
    assert run.repair_trials_log() == len('{"trial_id": 1, "sta')
    assert run.repair_trials_log() == 0
    run.append_trial(trial(1), proposal_id=4)
    assert [(p, t.trial_id) for p, t in run.read_trials()] == [(0, 0), (4, 1)]


def test_out_of_order_records_are_reported(tmp_path):
    run = RunDirectory(tmp_path)
    run.append_trial(trial(0), proposal_id=0)
    run.append_trial(trial(2), proposal_id=1)
    with pytest.raises(ValueError, match="trial_id=2"):
        run.read_trials()


def test_run_file_of_another_format_is_refused(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="format"):
        RunDirectory(tmp_path).read_run_info()


def test_checkpoints_replace_each_other_consistently(tmp_path):
    run = RunDirectory(tmp_path)
    for sequence in (1, 2):
        state = {"json": {"step": sequence}, "arrays": {"w": np.full(3, sequence, "float32")}}
        run.save_checkpoint(state, {"sequence": sequence, "consumed": sequence, "outstanding": []})
    algorithm_state, runner_state = run.load_checkpoint()
    assert runner_state["consumed"] == 2 and algorithm_state["json"] == {"step": 2}
    np.testing.assert_array_equal(algorithm_state["arrays"]["w"], [2, 2, 2])
    assert sorted(p.name for p in (tmp_path / "checkpoint").iterdir()) == [
        "algorithm-00000002.npz",
        "state.json",
    ]


def test_json_safe_makes_strict_json():
    data = {"a": np.float32(0.5), "b": [np.int64(3), float("nan")], "c": np.arange(2), 1: None}
    assert json_safe(data) == {"a": 0.5, "b": [3, None], "c": [0, 1], "1": None}
    json.dumps(json_safe(data), allow_nan=False)


def test_summary_reads_back_what_was_written(tmp_path):
    run = RunDirectory(tmp_path)
    assert run.read_summary() is None
    run.write_summary({"finished": True, "best_reward": np.float32(0.5)})
    assert run.read_summary() == {"finished": True, "best_reward": 0.5}
