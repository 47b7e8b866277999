import itertools

import pytest

from nasnet_app.evaluate.bench_search import format_table, parse_overrides, run_one, summarize
from nasnet_app.search.algorithms import RandomSearch, RegularizedEvolution
from nasnet_app.search.spaces import NASBench201Space
from nasnet_app.search.tabular import TabularEvaluator

OPS = ("none", "nor_conv_3x3")


@pytest.fixture
def tiny_table(tmp_path):
    """64 archs; accuracy = 50 + 5 * number of convs (optimum 80 is all convs)."""
    space = NASBench201Space(ops=OPS)
    lines = ["arch,acc"]
    for actions in itertools.product(range(2), repeat=6):
        lines.append(f"{space.decode(list(actions))},{50 + 5 * sum(actions)}")
    path = tmp_path / "table.csv"
    path.write_text("\n".join(lines) + "\n")
    return space, TabularEvaluator(path)


def test_run_one_records_best_so_far_at_each_budget(tiny_table):
    space, evaluator = tiny_table
    curve = run_one(RandomSearch(space, seed=0), evaluator, space, (4, 64), 3)
    assert set(curve) == {4, 64}
    assert curve[4] <= curve[64] == 80.0  # 64 distinct archs: the whole space


def test_summarize_and_format(tiny_table):
    space, evaluator = tiny_table
    curves = [
        run_one(RegularizedEvolution(space, 4, 2, seed=s), evaluator, space, (8, 32))
        for s in range(3)
    ]
    rows = summarize(curves, (8, 32), 80.0)
    assert rows[32]["runs"] == 3 and rows[8]["mean"] <= rows[32]["mean"]
    assert rows[32]["optimum_found"] == sum(c[32] == 80.0 for c in curves)
    table = format_table({"evolution": {"budgets": rows}}, (8, 32))
    assert "evolution" in table and "32 archs" in table


def test_parse_overrides():
    assert parse_overrides(["ppo.epochs=2", "ppo.clip=0.1"]) == {"ppo": {"epochs": 2, "clip": 0.1}}
    with pytest.raises(ValueError, match="`--set` must look like"):
        parse_overrides(["darts.lr=1"])
