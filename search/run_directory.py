"""The files of a search run, all written atomically so a killed run resumes.

Layout of `RUN_DIR`:

* `run.json`: what the run is (space, algorithm, evaluator, seed, options).
* `trials.jsonl`: one JSON object per finished trial, in finishing order
  (`trial_id` 0, 1, ...), each appended in one write and fsynced.
* `summary.json`: counts and the best trial, rewritten after every trial.
* `checkpoint/state.json` + `checkpoint/algorithm-<n>.npz`: the algorithm's
  state (controller weights, baseline, optimizer slots, RNG) and the runner's
  (proposals not finished yet, how many logged trials the algorithm has
  learnt from). The `.npz` is written first under a new name, then
  `state.json` pointing at it, so the pair is always consistent.

Example:

>>> import tempfile
>>> run = RunDirectory(tempfile.mkdtemp())
>>> run.has_run()
False
"""

import glob
import json
import math
import os

import numpy as np

from nasnet_app.io_utils import append_line, atomic_write_json, read_jsonl
from nasnet_app.search.base import Trial

RUN_FORMAT = "nasnet_app.search.run/1"
RUN_FILE = "run.json"
TRIALS_FILE = "trials.jsonl"
SUMMARY_FILE = "summary.json"
CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.json"


def json_safe(value):
    """Numpy values to Python ones, non-finite floats to `None` (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RunDirectory:
    """Reads and writes the files of one search run.

    Args:
        path: the run folder (created on `create`).
    """

    def __init__(self, path):
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise ValueError(f"`directory` must be a folder path. Received: directory={path!r}")
        self.path = os.fspath(path)
        self.trials_path = os.path.join(self.path, TRIALS_FILE)
        self.summary_path = os.path.join(self.path, SUMMARY_FILE)
        self.run_path = os.path.join(self.path, RUN_FILE)
        self.checkpoint_dir = os.path.join(self.path, CHECKPOINT_DIR)

    def has_run(self):
        """Whether the folder already holds (part of) a search run."""
        return any(
            os.path.exists(p) for p in (self.run_path, self.trials_path, self.checkpoint_dir)
        )

    def create(self, run_info):
        os.makedirs(self.path, exist_ok=True)
        atomic_write_json(self.run_path, json_safe({"format": RUN_FORMAT, **run_info}))

    def read_run_info(self):
        if not os.path.exists(self.run_path):
            return None
        with open(self.run_path, encoding="utf-8") as handle:
            info = json.load(handle)
        if info.get("format") != RUN_FORMAT:
            raise ValueError(
                f"{self.run_path} is not a search run file: `format` must be {RUN_FORMAT!r}. "
                f"Received: format={info.get('format')!r}"
            )
        return info

    def repair_trials_log(self):
        """Cuts a torn last line (a kill mid-append); returns the bytes dropped."""
        if not os.path.exists(self.trials_path):
            return 0
        with open(self.trials_path, "rb+") as handle:
            data = handle.read()
            keep = data.rfind(b"\n") + 1
            if keep == len(data):
                return 0
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
        return len(data) - keep

    def read_trials(self):
        """The logged trials, as `(proposal_id, Trial)` pairs in log order."""
        records = read_jsonl(self.trials_path)
        pairs = []
        for position, record in enumerate(records):
            if record.get("trial_id") != position:
                raise ValueError(
                    f"{self.trials_path}: record {position} has trial_id="
                    f"{record.get('trial_id')!r}; trial ids must count 0, 1, ... in order."
                )
            pairs.append((record.get("proposal_id"), Trial.from_dict(record)))
        return pairs

    def append_trial(self, trial, **fields):
        record = {**trial.to_dict(), **fields}
        append_line(self.trials_path, json.dumps(json_safe(record)))

    def write_summary(self, summary):
        atomic_write_json(self.summary_path, json_safe(summary))

    def read_summary(self):
        """The last `summary.json` written, or None before the first one."""
        if not os.path.exists(self.summary_path):
            return None
        with open(self.summary_path, encoding="utf-8") as handle:
            return json.load(handle)

    def save_checkpoint(self, algorithm_state, runner_state):
        """Writes the algorithm state under a new name, then `state.json` naming it."""
        from nasnet_app.search.algorithms import save_state

        os.makedirs(self.checkpoint_dir, exist_ok=True)
        sequence = int(runner_state["sequence"])
        name = f"algorithm-{sequence:08d}.npz"
        save_state(os.path.join(self.checkpoint_dir, name), algorithm_state)
        state = {**runner_state, "algorithm_file": name}
        atomic_write_json(os.path.join(self.checkpoint_dir, STATE_FILE), json_safe(state))
        for old in glob.glob(os.path.join(self.checkpoint_dir, "algorithm-*.npz")):
            if os.path.basename(old) != name:
                os.remove(old)

    def load_checkpoint(self):
        """`(algorithm_state, runner_state)`, or `None` when no checkpoint was written."""
        from nasnet_app.search.algorithms import load_state

        state_path = os.path.join(self.checkpoint_dir, STATE_FILE)
        if not os.path.exists(state_path):
            return None
        with open(state_path, encoding="utf-8") as handle:
            runner_state = json.load(handle)
        algorithm_path = os.path.join(self.checkpoint_dir, runner_state["algorithm_file"])
        return load_state(algorithm_path), runner_state
