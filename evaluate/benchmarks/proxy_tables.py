"""Proxy NAS-Bench-201 tables, to check that search settings are not tuned to one table.

Only the CIFAR-10 table of NAS-Bench-201 is at hand. These tables are derived
from it (or from nothing) by fixed, seeded rules, written before any search
result on them was seen:

* `dev_noisy`: CIFAR-10 plus Gaussian noise (sd 1 point), seed 12345. The
  table the budget rule of `nasnet_app.search.algorithms.budget_settings` was
  checked on; the others were held out.
* `rank`: CIFAR-10 replaced by its rank, scaled to 0..100: same order, a
  uniform distribution instead of a long tail of broken cells (tests that
  the rule does not depend on the reward's scale or shape).
* `noisy2`: CIFAR-10 plus noise of sd 2 points, seed 7: a low-fidelity
  proxy (like a short training schedule) whose top ranks are scrambled.
* `synthetic`: no CIFAR-10 at all: a random landscape over the same 6 edges x
  5 ops, one effect per (edge, op) plus one per pair of edges' ops (N(0, 1)
  and N(0, 0.5)), seed 2024, scaled to 10..95. Another structure entirely.

They are proxies, not NAS-Bench-201's CIFAR-100 or ImageNet16-120 columns.

Run: `python evaluate/benchmarks/proxy_tables.py --out tables/`, then
`python evaluate/benchmarks/bench_search.py --table tables/rank.csv`.
"""

import argparse
import csv
import itertools
import os

import numpy as np


def read_table(path):
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return [row[0] for row in rows[1:]], np.array([float(row[1]) for row in rows[1:]])


def noisy(values, sd, seed):
    return values + np.random.default_rng(seed).normal(0.0, sd, values.shape)


def ranked(values):
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    for value in np.unique(values):  # ties share their mean rank
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return 100.0 * ranks / (len(values) - 1)


def synthetic(archs, seed, num_ops=5, num_edges=6):
    from nasnet_app.search.spaces import NASBench201Space

    rng = np.random.default_rng(seed)
    single = rng.normal(0.0, 1.0, (num_edges, num_ops))
    pairs = rng.normal(0.0, 0.5, (num_edges, num_edges, num_ops, num_ops))
    space = NASBench201Space()
    scores = []
    for arch in archs:
        actions = space.encode(arch)
        score = sum(single[e, a] for e, a in enumerate(actions))
        for e, f in itertools.combinations(range(num_edges), 2):
            score += pairs[e, f, actions[e], actions[f]]
        scores.append(score)
    scores = np.array(scores)
    return 10.0 + 85.0 * (scores - scores.min()) / (scores.max() - scores.min())


def write_table(path, archs, values):
    from nasnet_app.io_utils import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch", "accuracy"])
        writer.writerows((arch, f"{value:.4f}") for arch, value in zip(archs, values))


def make_tables(source, out):
    """Writes the four proxy tables into `out`; returns their paths by name."""
    archs, values = read_table(source)
    tables = {
        "dev_noisy": noisy(values, 1.0, 12345),
        "rank": ranked(values),
        "noisy2": noisy(values, 2.0, 7),
        "synthetic": synthetic(archs, 2024),
    }
    os.makedirs(out, exist_ok=True)
    paths = {}
    for name, table in tables.items():
        paths[name] = os.path.join(out, f"{name}.csv")
        write_table(paths[name], archs, table)
    return paths


DEFAULT_SOURCE = os.path.normpath(
    os.path.join(
        os.path.dirname(os.path.abspath(__file__)),
        *("..", "..", "..", "shared", "data", "nasbench201", "cifar10.csv"),
    )
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="the CIFAR-10 table")
    parser.add_argument("--out", required=True, help="folder for the tables")
    args = parser.parse_args(argv)
    for name, path in make_tables(args.source, args.out).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
