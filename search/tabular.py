"""Table look-up evaluation: rewards from a CSV of precomputed accuracies.

`TabularEvaluator` answers an architecture with its row of a table such as
NAS-Bench-201 (`../shared/data/nasbench201/cifar10.csv`: all 15,625 cells
with their CIFAR-10 test accuracy), so search algorithms can be measured in
seconds instead of GPU days.
"""

import csv
import math
import os

from nasnet_app.search.base import Evaluator


class TableError(ValueError):
    """A table that cannot be used: the message names the file (and the row)."""

    def __init__(self, message, metric_choices=None):
        super().__init__(message)
        self.metric_choices = metric_choices  # set when the accuracy column must be chosen


class TabularEvaluator(Evaluator):
    """Rewards looked up in a CSV table with an `arch` column.

    The reward is the accuracy as a fraction: a column whose values exceed 1
    anywhere is read as percent and divided by 100; otherwise it is used as
    it is. `metrics` holds the raw value under the column's name.

    Every row is checked when the table is read: a non-numeric or non-finite
    accuracy, or (given a `space`) an `arch` the space cannot parse, is an
    error naming the row. Rows are keyed by the space's `arch_key`, so an
    architecture is found however it is written.

    Args:
        csv_path: the table; a header row with `arch` and accuracy columns.
        metric: the accuracy column (default: the only column besides `arch`).
        space: the search space whose architectures the rows hold (for
            example `NASBench201Space()`), or `None` to take `arch` as it is.

    Example:

    >>> evaluator = TabularEvaluator("../shared/data/nasbench201/cifar10.csv")  # doctest: +SKIP
    >>> evaluator.evaluate(
    ...     "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
    ...     "nor_conv_1x1~2|", trial=None)["reward"]  # doctest: +SKIP
    0.943733
    """

    def __init__(self, csv_path, metric=None, space=None):
        self.csv_path = os.fspath(csv_path)
        self.space = space
        self.table, self.metric = self._read(self.csv_path, metric)
        self.percent = max(self.table.values()) > 1.0
        self.scale = 0.01 if self.percent else 1.0

    @staticmethod
    def _metric_column(path, columns, metric):
        if "arch" not in columns:
            raise TableError(f"The table {path} must have an `arch` column. Received: {columns}")
        others = [c for c in columns if c != "arch"]
        if not others:
            raise TableError(f"The table {path} has no accuracy column, only `arch`.")
        if metric is None:
            if len(others) != 1:
                raise TableError(
                    f"`metric` must name the accuracy column of {path} when it has several "
                    f"({others}). Received: metric=None",
                    metric_choices=others,
                )
            return others[0]
        if metric not in others:
            raise TableError(
                f"`metric` must be one of the columns {others} of {path}. Received: "
                f"metric={metric!r}",
                metric_choices=others,
            )
        return metric

    def _row_key(self, path, line, arch):
        if self.space is None:
            return arch
        try:
            return self.space.arch_key(arch)
        except ValueError:
            raise TableError(
                f"Row {line} of {path} has an arch the {self.space.name} space cannot parse: "
                f"{arch!r}"
            ) from None

    def _read(self, path, metric):
        if not os.path.isfile(path):
            raise TableError(
                f"`csv_path` must be an existing CSV file. Received: csv_path={path!r}"
            )
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            metric = self._metric_column(path, reader.fieldnames or [], metric)
            table = {}
            for line, row in enumerate(reader, start=2):
                try:
                    value = float(row[metric])
                except (TypeError, ValueError):
                    raise TableError(
                        f"Row {line} of {path} has a non-numeric {metric}: {row[metric]!r}"
                    ) from None
                if not math.isfinite(value):
                    raise TableError(f"Row {line} of {path} has a non-finite {metric}: {value}")
                table[self._row_key(path, line, row["arch"])] = value
        if not table:
            raise TableError(f"The table {path} has no rows.")
        return table, metric

    def __len__(self):
        return len(self.table)

    def lookup(self, architecture):
        """The raw table value of an architecture (its arch string)."""
        try:
            key = architecture if self.space is None else self.space.arch_key(architecture)
            return self.table[key]
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                f"`architecture` must be an arch string of the table {self.csv_path}. "
                f"Received: architecture={architecture!r}"
            ) from None

    def evaluate(self, architecture, *, trial=None, train_data=None, validation_data=None):
        value = self.lookup(architecture)
        return {"reward": value * self.scale, "metrics": {self.metric: value}}

    def best(self):
        """`(arch, value)` of the best row of the table."""
        arch = max(self.table, key=self.table.get)
        return arch, self.table[arch]

    def get_config(self):
        return {"name": "tabular", "csv_path": self.csv_path, "metric": self.metric}
