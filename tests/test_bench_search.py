import itertools
import json

import pytest

from nasnet_app.search.spaces import NASBench201Space
from nasnet_app.search.tabular import TabularEvaluator
from tests.helpers import load_benchmark

bench_search = load_benchmark("bench_search")
best_at, format_table, summarize = (
    bench_search.best_at,
    bench_search.format_table,
    bench_search.summarize,
)
parse_entry, parse_overrides = bench_search.parse_entry, bench_search.parse_overrides
run_entry, run_search = bench_search.run_entry, bench_search.run_search

OPS = ("none", "nor_conv_3x3")


def write_table(path):
    """64 archs; accuracy = 50 + 5 * number of convs (optimum 80 is all convs)."""
    space = NASBench201Space(ops=OPS)
    lines = ["arch,acc"]
    for actions in itertools.product(range(2), repeat=6):
        lines.append(f"{space.decode(list(actions))},{50 + 5 * sum(actions)}")
    path.write_text("\n".join(lines) + "\n")
    return space


@pytest.fixture
def tiny_table(tmp_path):
    space = write_table(tmp_path / "table.csv")
    return space, TabularEvaluator(tmp_path / "table.csv")


def test_run_entry_records_best_so_far_at_each_budget(tiny_table):
    space, evaluator = tiny_table
    curve = run_entry("random", "budget", space, evaluator, (4, 64), seed=0)
    assert set(curve) == {4, 64}
    assert curve[4] <= curve[64] == 80.0  # 64 distinct archs: the whole space


def test_budget_free_algorithms_have_the_prefix_of_the_longest_run(tiny_table):
    space, evaluator = tiny_table
    for kind in ("random", "evolution"):
        long_run = run_search(kind, space, evaluator, 40, seed=3)
        assert run_search(kind, space, evaluator, 12, seed=3) == long_run[:12]


def test_summarize_and_format(tiny_table):
    space, evaluator = tiny_table
    curves = [run_entry("evolution", "budget", space, evaluator, (8, 32), s) for s in range(3)]
    rows = summarize(curves, (8, 32), 80.0)
    assert rows[32]["runs"] == 3 and rows[8]["mean"] <= rows[32]["mean"]
    assert rows[32]["optimum_found"] == sum(c[32] == 80.0 for c in curves)
    table = format_table({"evolution": {"budgets": rows}}, (8, 32))
    assert "evolution" in table and "32 archs" in table
    assert best_at([1, 3, 2], (1, 3, 4)) == {1: 1, 3: 3}


def test_the_benchmark_runs_what_the_cli_runs(tmp_path):
    """Same trials, same order, for the same table, budget, algorithm and seed."""
    from nasnet_app.cli import main

    space = NASBench201Space()
    scores = (0.0, 1.0, 2.0, 4.0, 1.5)  # per op, by action
    lines = ["arch,acc"] + [
        f"{space.decode(list(a))},{50 + sum(scores[i] for i in a) + 0.01 * a[0]}"
        for a in itertools.product(range(5), repeat=6)
    ]
    (tmp_path / "table.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    argv = ["search", "--space", "nasbench201", "--table", str(tmp_path / "table.csv")]
    argv += ["--trials", "12", "--algorithm", "reinforce", "--seed", "5", "--out", str(out)]
    assert main([*argv, "--verbose", "0"]) == 0
    with open(out / "trials.jsonl", encoding="utf-8") as handle:
        cli_values = [json.loads(line)["metrics"]["acc"] for line in handle if line.strip()]
    evaluator = TabularEvaluator(tmp_path / "table.csv", space=space)
    assert run_search("reinforce", space, evaluator, 12, seed=5) == cli_values


def test_entries_and_overrides():
    assert parse_entry("reinforce") == ("reinforce", "budget")
    assert parse_entry("ppo:paper") == ("ppo", "paper")
    with pytest.raises(ValueError, match="ALGORITHM"):
        parse_entry("darts")
    assert parse_overrides(["learning_rate=0.01", "batch_size=5"]) == {
        "learning_rate": 0.01,
        "batch_size": 5,
    }
    with pytest.raises(ValueError, match="`--set` must look like"):
        parse_overrides(["epochs=2"])
