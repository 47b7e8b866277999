"""Tests of the search callbacks."""

import csv
import json

import pytest

from nasnet_app.genotype import Genotype
from nasnet_app.io_utils import read_jsonl
from nasnet_app.search import algorithms, spaces
from nasnet_app.search.algorithms import load_state
from nasnet_app.search.base import Evaluator
from nasnet_app.search.callbacks import (
    BestCellExporter,
    ControllerCheckpoint,
    CSVLogger,
    EarlyStoppingOnPlateau,
    JSONLLogger,
    ProgressPlot,
    SearchCallback,
    TensorBoard,
    draw_nasbench201_cell,
)
from nasnet_app.search.cell_search import CellSearch

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Convs(Evaluator):
    def evaluate(self, architecture, *, trial, train_data=None, validation_data=None):
        if "avg_pool_3x3~0|+|avg_pool_3x3" in architecture:
            raise RuntimeError("unlucky cell")
        return {"reward": architecture.count("conv") / 6.0}


class Flat(Evaluator):
    """The same reward for every architecture: a plateau from the start."""

    def evaluate(self, architecture, **kwargs):
        return {"reward": 0.5}


def search(callbacks, max_trials=10, evaluator=None, algorithm="random", **kwargs):
    space = spaces.NASBench201Space()
    if algorithm == "evolution":
        algo = algorithms.RegularizedEvolution(space, population_size=4, sample_size=2, seed=0)
    else:
        algo = algorithms.RandomSearch(space, seed=0)
    return CellSearch(space, algo, evaluator or Convs()).search(
        max_trials=max_trials, callbacks=callbacks, verbose=0, **kwargs
    )


def test_callbacks_must_be_search_callbacks():
    import keras

    with pytest.raises(TypeError, match="child_callbacks"):
        search([keras.callbacks.EarlyStopping()])


def test_jsonl_logger_writes_trials_and_updates(tmp_path):
    path = tmp_path / "log.jsonl"
    history = search([JSONLLogger(path)], max_trials=6, algorithm="evolution", batch_size=3)
    lines = read_jsonl(path)
    trials = [line for line in lines if line["event"] == "trial"]
    updates = [line for line in lines if line["event"] == "controller_update"]
    assert [t["trial_id"] for t in trials] == list(range(6))
    assert [t["genotype"] for t in trials] == [t.architecture for t in history.trials]
    assert len(updates) == 2 and updates[-1]["version"] == 2
    search([JSONLLogger(path)], max_trials=2)  # append=False restarts the file
    assert len([line for line in read_jsonl(path) if line["event"] == "trial"]) == 2


def test_csv_logger_rows_and_append(tmp_path):
    path = tmp_path / "trials.csv"
    history = search([CSVLogger(path)], max_trials=5)
    rows = list(csv.DictReader(open(path)))
    assert [int(r["trial_id"]) for r in rows] == list(range(5))
    assert [r["status"] for r in rows] == [t.status for t in history.trials]
    assert rows[-1]["best_reward"] == str(history.best_reward)
    search([CSVLogger(path, append=True)], max_trials=2)
    assert len(list(csv.DictReader(open(path)))) == 7


def test_controller_checkpoint_saves_the_algorithm_state(tmp_path):
    space = spaces.NASBench201Space()
    algorithm = algorithms.Reinforce(space, batch_size=2, units=8, seed=0)
    CellSearch(space, algorithm, Convs()).search(
        max_trials=4,
        batch_size=2,
        verbose=0,
        callbacks=[ControllerCheckpoint(str(tmp_path / "controller-{version}.npz"))],
    )
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert saved == ["controller-1.npz", "controller-2.npz"]
    restored = algorithms.Reinforce(space, batch_size=2, units=8, seed=5)
    restored.set_state(load_state(tmp_path / "controller-2.npz"))
    assert restored.version == 2
    assert restored.propose(3) == algorithm.propose(3)
    with pytest.raises(ValueError, match=".npz"):
        ControllerCheckpoint("controller.h5")


def test_early_stopping_on_plateau_stops_and_resets(tmp_path):
    stopper = EarlyStoppingOnPlateau(patience=3)
    history = search([stopper], max_trials=20, evaluator=Flat())
    assert len(history.trials) == 4  # the first sets the best, three more do not improve it
    assert "EarlyStoppingOnPlateau" in history.stop_reason
    history = search([stopper], max_trials=20, evaluator=Flat())  # state reset on begin
    assert len(history.trials) == 4


def test_early_stopping_counts_resumed_trials(tmp_path):
    search([], max_trials=3, evaluator=Flat(), directory=tmp_path, seed=1)
    history = search(
        [EarlyStoppingOnPlateau(patience=3)],
        max_trials=20,
        evaluator=Flat(),
        directory=tmp_path,
        resume=True,
    )
    assert len(history.trials) == 4  # 2 non-improving trials were already in the log


def test_tensorboard_writes_scalars(tmp_path):
    import tensorflow as tf

    search([TensorBoard(str(tmp_path / "tb"))], max_trials=4, algorithm="evolution", batch_size=2)
    tags = set()
    for event_file in (tmp_path / "tb").iterdir():
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            tags.update(value.tag for value in event.summary.value)
    assert {"search/reward", "search/best_reward", "controller/population"} <= tags


def test_progress_plot_draws_a_png(tmp_path):
    path = tmp_path / "progress.png"
    plot = ProgressPlot(path, every=4)
    search([plot], max_trials=9)
    assert path.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError, match=".png"):
        ProgressPlot(tmp_path / "progress.jpg")


def test_best_cell_exporter_for_nasbench201(tmp_path):
    history = search([BestCellExporter(tmp_path)], max_trials=8)
    exported = json.loads((tmp_path / "best_cell.json").read_text())
    assert exported == {"space": "nasbench201", "architecture": history.best_trial.architecture}
    meta = json.loads((tmp_path / "best_cell.meta.json").read_text())
    assert meta["trial_id"] == history.best_trial.trial_id
    assert (tmp_path / "best_cell.png").read_bytes()[:8] == PNG_MAGIC


def test_best_cell_exporter_writes_a_loadable_genotype(tmp_path):
    space = spaces.NASNetCellSpace(num_blocks=2)

    class Separable(Evaluator):
        def evaluate(self, architecture, **kwargs):
            return {"reward": json.dumps(architecture).count("sep_conv") / 8}

    history = CellSearch(space, algorithms.RandomSearch(space, seed=0), Separable()).search(
        max_trials=5, verbose=0, callbacks=[BestCellExporter(tmp_path, name="cell")]
    )
    genotype = Genotype.load(tmp_path / "cell.json")
    assert genotype.hash() == history.best_trial.arch_key
    assert (tmp_path / "cell.png").read_bytes()[:8] == PNG_MAGIC


def test_draw_nasbench201_cell_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="arch string"):
        draw_nasbench201_cell("|conv~0|", tmp_path / "x.png")


def test_search_callback_base_is_a_no_op():
    history = search([SearchCallback()], max_trials=2)
    assert len(history.trials) == 2
