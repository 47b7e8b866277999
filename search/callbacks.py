"""Search callbacks: Keras-style hooks into `CellSearch.search`.

A `SearchCallback` sees the search begin and end, every trial begin and end,
and every update of the search algorithm. Each callback resets its state in
`on_search_begin`; on a resumed run it rebuilds what it needs from
`self.search.history` (the trials already in the log).

Built-ins: `JSONLLogger`, `CSVLogger`, `ControllerCheckpoint`,
`EarlyStoppingOnPlateau`, `TensorBoard`, `ProgressPlot`, `BestCellExporter`.

Example:

>>> import tempfile, os
>>> from nasnet_app.search import algorithms, spaces
>>> from nasnet_app.search.cell_search import CellSearch
>>> from nasnet_app.search.base import Evaluator
>>> class Zeros(Evaluator):
...     def evaluate(self, architecture, *, trial, train_data=None, validation_data=None):
...         return {"reward": architecture.count("none")}
>>> space = spaces.NASBench201Space()
>>> folder = tempfile.mkdtemp()
>>> history = CellSearch(space, algorithms.RandomSearch(space, seed=0), Zeros()).search(
...     max_trials=4, verbose=0, callbacks=[CSVLogger(os.path.join(folder, "t.csv"))])
>>> len(open(os.path.join(folder, "t.csv")).read().splitlines())
5
"""

import csv
import io
import json
import math
import os

from nasnet_app.io_utils import append_line, atomic_path, atomic_write_json

# Keys of `logs` in `on_trial_end`: reward, best_reward, status, cached,
# num_trials (logged so far), num_evaluated (distinct architectures evaluated).


class SearchCallback:
    """Base class of search callbacks; `self.search` is the running `CellSearch`.

    Example:

    >>> class PrintBest(SearchCallback):
    ...     def on_trial_end(self, trial, logs=None):
    ...         print(logs["best_reward"])
    """

    def __init__(self):
        self.search = None

    def set_search(self, search):
        self.search = search

    def on_search_begin(self, logs=None):
        pass

    def on_search_end(self, logs=None):
        pass

    def on_trial_begin(self, trial, logs=None):
        pass

    def on_trial_end(self, trial, logs=None):
        pass

    def on_controller_update(self, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        """Weight-sharing searches: after each epoch (supernet and controller phases)."""


class CallbackList:
    """Calls every callback of a list in order."""

    HOOKS = (
        "on_search_begin",
        "on_search_end",
        "on_trial_begin",
        "on_trial_end",
        "on_controller_update",
        "on_epoch_end",
    )

    def __init__(self, callbacks, search):
        callbacks = list(callbacks or [])
        for index, callback in enumerate(callbacks):
            if not isinstance(callback, SearchCallback):
                raise TypeError(
                    f"`callbacks[{index}]` must be a SearchCallback (for Keras callbacks that "
                    f"train each child, use `child_callbacks`). Received: {callback!r}"
                )
            callback.set_search(search)
        self.callbacks = callbacks

    def __getattr__(self, name):
        if name not in self.HOOKS:
            raise AttributeError(name)

        def call(*args, **kwargs):
            for callback in self.callbacks:
                getattr(callback, name)(*args, **kwargs)

        return call


def _check_path(name, path, suffix=None):
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ValueError(f"`{name}` must be a file path. Received: {name}={path!r}")
    path = os.fspath(path)
    if suffix and not path.lower().endswith(suffix):
        raise ValueError(f"`{name}` must be a path ending in {suffix}. Received: {name}={path!r}")
    return path


def _completed_rewards(trials):
    return [t.reward for t in trials if t.status == "completed" and t.reward is not None]


class JSONLLogger(SearchCallback):
    """Appends one JSON line per finished trial and per algorithm update.

    Lines carry `"event": "trial"` (the trial record) or
    `"event": "controller_update"` (the update logs).

    Args:
        path: the `.jsonl` file.
        append: keep existing lines (otherwise the file is restarted on
            `on_search_begin`).
    """

    def __init__(self, path, append=False):
        super().__init__()
        self.path = _check_path("path", path)
        self.append = bool(append)

    def on_search_begin(self, logs=None):
        if not self.append:
            _write_text(self.path, "")

    def on_trial_end(self, trial, logs=None):
        from nasnet_app.search.run_directory import json_safe

        record = {"event": "trial", **trial.to_dict(), **_plain(logs)}
        append_line(self.path, json.dumps(json_safe(record)))

    def on_controller_update(self, logs=None):
        from nasnet_app.search.run_directory import json_safe

        append_line(
            self.path, json.dumps(json_safe({"event": "controller_update", **_plain(logs)}))
        )


def _plain(logs):
    return {k: v for k, v in (logs or {}).items() if isinstance(v, (int, float, str, bool))}


def _write_text(path, text):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)


class CSVLogger(SearchCallback):
    """Writes one CSV row per finished trial.

    Columns: `trial_id, status, reward, best_reward, cached, seed,
    duration_s, arch_key, error`.

    Args:
        path: the `.csv` file.
        append: keep existing rows (no new header when the file has rows).
    """

    COLUMNS = (
        "trial_id",
        "status",
        "reward",
        "best_reward",
        "cached",
        "seed",
        "duration_s",
        "arch_key",
        "error",
    )

    def __init__(self, path, append=False):
        super().__init__()
        self.path = _check_path("path", path)
        self.append = bool(append)

    def on_search_begin(self, logs=None):
        if self.append and os.path.exists(self.path) and os.path.getsize(self.path):
            return
        _write_text(self.path, self._row(self.COLUMNS))

    @staticmethod
    def _row(values):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(values)
        return buffer.getvalue()

    def on_trial_end(self, trial, logs=None):
        logs = logs or {}
        duration = None if trial.end_time is None else trial.end_time - trial.start_time
        values = {
            **trial.to_dict(),
            "best_reward": logs.get("best_reward"),
            "duration_s": None if duration is None else round(duration, 3),
        }
        row = ["" if values.get(c) is None else values[c] for c in self.COLUMNS]
        append_line(self.path, self._row(row))


class ControllerCheckpoint(SearchCallback):
    """Saves the search algorithm's state (controller weights, ...) to a `.npz`.

    Args:
        filepath: a `.npz` path; may contain `{version}` (the update count).
        save_freq: save after every `save_freq` updates.
    """

    def __init__(self, filepath, save_freq=1):
        super().__init__()
        self.filepath = _check_path("filepath", filepath, ".npz")
        if isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1:
            raise ValueError(f"`save_freq` must be a positive integer. Received: {save_freq!r}")
        self.save_freq = save_freq

    def on_search_begin(self, logs=None):
        self._updates = 0

    def on_controller_update(self, logs=None):
        from nasnet_app.search.algorithms import save_state

        self._updates += 1
        if self._updates % self.save_freq:
            return
        algorithm = self.search.algorithm
        path = self.filepath.format(version=algorithm.version)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        save_state(path, algorithm.get_state())


class EarlyStoppingOnPlateau(SearchCallback):
    """Stops the search when the best reward has not improved for a while.

    Args:
        patience: distinct architectures evaluated without an improvement of
            the best reward by more than `min_delta` before stopping.
        min_delta: the smallest change that counts as an improvement.
    """

    def __init__(self, patience=100, min_delta=0.0):
        super().__init__()
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"`patience` must be a positive integer. Received: {patience!r}")
        if not isinstance(min_delta, (int, float)) or min_delta < 0:
            raise ValueError(f"`min_delta` must be a number >= 0. Received: {min_delta!r}")
        self.patience, self.min_delta = patience, float(min_delta)

    def on_search_begin(self, logs=None):
        self.best, self.wait, self.stopped_at = -math.inf, 0, None
        for trial in self.search.history.trials:  # a resumed run: replay the log
            self._observe(trial)

    def _observe(self, trial):
        if trial.cached:
            return
        if trial.status == "completed" and trial.reward > self.best + self.min_delta:
            self.best, self.wait = trial.reward, 0
        else:
            self.wait += 1

    def on_trial_end(self, trial, logs=None):
        self._observe(trial)
        if self.wait >= self.patience and self.stopped_at is None:
            self.stopped_at = trial.trial_id
            self.search.stop(
                f"EarlyStoppingOnPlateau: no improvement of the best reward ({self.best:.6g}) "
                f"by more than {self.min_delta} in {self.wait} trials."
            )


class TensorBoard(SearchCallback):
    """Writes TensorBoard scalars: per-trial reward and best reward, update logs.

    Scalars are written with `tf.summary.write` and the scalar plugin's
    metadata, so the `tensorboard` package is needed only to view them.

    Args:
        log_dir: the TensorBoard log folder.
    """

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = _check_path("log_dir", log_dir)

    def on_search_begin(self, logs=None):
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        self._tf = tf
        self._writer = tf.summary.create_file_writer(self.log_dir)
        self._metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
            data_class=summary_pb2.DATA_CLASS_SCALAR,
        ).SerializeToString()

    def _scalars(self, prefix, values, step):
        tf = self._tf
        with self._writer.as_default():
            for name, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    if math.isfinite(value):
                        tensor = tf.constant(value, tf.float32)
                        tf.summary.write(f"{prefix}/{name}", tensor, step, self._metadata)
        self._writer.flush()

    def on_trial_end(self, trial, logs=None):
        logs = logs or {}
        values = {"best_reward": logs.get("best_reward"), "failed": int(trial.status == "failed")}
        if trial.reward is not None:
            values["reward"] = trial.reward
        self._scalars("search", values, trial.trial_id)

    def on_controller_update(self, logs=None):
        logs = dict(logs or {})
        self._scalars("controller", logs, int(logs.get("version", 0)))

    def on_search_end(self, logs=None):
        self._writer.close()


class ProgressPlot(SearchCallback):
    """Draws reward per trial and the best reward so far into a PNG.

    Args:
        path: the `.png` file (rewritten atomically).
        every: redraw after every `every` trials (and at the end).
    """

    def __init__(self, path, every=10):
        super().__init__()
        self.path = _check_path("path", path, ".png")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"`every` must be a positive integer. Received: every={every!r}")
        self.every = every

    def on_search_begin(self, logs=None):
        self._since_draw = 0

    def on_trial_end(self, trial, logs=None):
        self._since_draw += 1
        if self._since_draw >= self.every:
            self.draw()

    def on_search_end(self, logs=None):
        self.draw()

    def draw(self):
        from nasnet_app.figures import new_figure, save_figure

        self._since_draw = 0
        trials = self.search.history.trials
        figure = new_figure((7, 4))
        axes = figure.add_subplot()
        done = [t for t in trials if t.status == "completed"]
        axes.scatter(
            [t.trial_id for t in done], [t.reward for t in done], s=8, alpha=0.5, label="reward"
        )
        failed = [t.trial_id for t in trials if t.status == "failed"]
        if failed:
            bottom = min([t.reward for t in done], default=0.0)
            axes.scatter(failed, [bottom] * len(failed), marker="x", c="red", s=12, label="failed")
        best = self.search.history.history["best_reward"]
        if any(b is not None for b in best):
            axes.plot(
                range(len(best)),
                [math.nan if b is None else b for b in best],
                c="black",
                label="best so far",
            )
        axes.set_xlabel("trial")
        axes.set_ylabel("reward")
        axes.legend(loc="lower right")
        axes.grid(alpha=0.3)
        figure.tight_layout()
        save_figure(figure, self.path)


class BestCellExporter(SearchCallback):
    """Exports the best architecture so far: JSON and, when it can be drawn, a PNG.

    NASNet genotypes are written as genotype JSON (loadable with
    `Genotype.load` / `NASNet(genotype=path)`) and drawn with
    `nasnet_app.evaluate.cells.draw_genotype`; NAS-Bench-201 cells are drawn
    as their 4-node graph, macro networks as their layer graph with skips.

    Args:
        directory: the output folder.
        name: the file name stem (`<name>.json`, `<name>.png`).
        draw: whether to draw the PNG.
    """

    def __init__(self, directory, name="best_cell", draw=True):
        super().__init__()
        self.directory = _check_path("directory", directory)
        self.name, self.draw = name, bool(draw)

    @property
    def json_path(self):
        return os.path.join(self.directory, f"{self.name}.json")

    @property
    def png_path(self):
        return os.path.join(self.directory, f"{self.name}.png")

    def on_search_begin(self, logs=None):
        best = self.search.history.best_trial
        self.best_reward = -math.inf if best is None else best.reward
        if best is not None and not os.path.exists(self.json_path):
            self.export(best)

    def on_trial_end(self, trial, logs=None):
        if trial.status == "completed" and trial.reward > self.best_reward:
            self.best_reward = trial.reward
            self.export(trial)

    def export(self, trial):
        os.makedirs(self.directory, exist_ok=True)
        architecture = trial.architecture
        space_name = getattr(self.search.space, "name", None)
        if space_name == "nasnet":
            data = {**architecture, "name": f"{self.name}_trial_{trial.trial_id}"}
        else:
            data = {"space": space_name, "architecture": architecture}
        atomic_write_json(self.json_path, data)
        meta = {"trial_id": trial.trial_id, "reward": trial.reward, "arch_key": trial.arch_key}
        atomic_write_json(os.path.join(self.directory, f"{self.name}.meta.json"), meta)
        if self.draw:
            self._draw(space_name, architecture)

    def _draw(self, space_name, architecture):
        if space_name == "nasnet":
            from nasnet_app.evaluate.cells import draw_genotype

            draw_genotype(architecture, self.png_path)
        elif space_name == "nasbench201":
            draw_nasbench201_cell(architecture, self.png_path)
        elif space_name == "macro":
            from nasnet_app.evaluate.cells import draw_macro

            draw_macro(architecture, self.png_path)


def draw_nasbench201_cell(arch, path):
    """Draws a NAS-Bench-201 arch string as its 4-node graph (PNG, atomic).

    The arch string is checked against `NASBench201Space`; the drawing is
    `nasnet_app.evaluate.cells.draw_nasbench201`.

    Example:

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "cell.png")
    >>> draw_nasbench201_cell("|nor_conv_3x3~0|+|skip_connect~0|none~1|"
    ...                       "+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|", path) == path
    True
    """
    from nasnet_app.evaluate.cells import draw_nasbench201
    from nasnet_app.search.spaces import NASBench201Space

    path = _check_path("path", path, ".png")
    return draw_nasbench201(NASBench201Space().from_data(arch), path)
