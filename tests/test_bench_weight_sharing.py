import itertools
import json

import numpy as np
import pytest

from nasnet_app.search.spaces import NASBench201Space
from tests.helpers import load_benchmark

bench = load_benchmark("bench_weight_sharing")


def test_kendall_tau_of_orders():
    assert bench.kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert bench.kendall_tau([1, 2, 3, 4], [40, 30, 20, 10]) == -1.0


def test_connected_cells_have_a_path_without_none():
    space = NASBench201Space()
    assert bench.is_connected("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    assert bench.is_connected(
        "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|none~0|none~1|skip_connect~2|"
    )
    assert not bench.is_connected("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert not bench.is_connected(space.decode([0] * 6))
    # Brute force over the two-op space: connected iff some input-output path avoids `none`.
    ops = ("none", "skip_connect")
    small = NASBench201Space(ops=ops)
    paths = [(3,), (0, 4), (1, 5), (0, 2, 5)]  # 0->3; 0->1->3; 0->2->3; 0->1->2->3 (edge ids)
    for actions in itertools.product(range(2), repeat=6):
        expected = any(all(actions[e] for e in path) for path in paths)
        assert bench.is_connected(small.decode(list(actions))) == expected, actions


def test_training_paths_fair_blocks_give_every_op_to_every_edge_once():
    space = NASBench201Space()
    ops = [op for op in space.ops if op != "none"]
    stream = bench.training_paths(space, "fair", ops, np.random.default_rng(0))
    for _ in range(3):
        block = np.array([next(stream) for _ in ops])
        for edge in block.T:
            assert sorted(edge) == sorted(space.ops.index(op) for op in ops)


def test_training_paths_uniform_and_fixed():
    space = NASBench201Space()
    stream = bench.training_paths(space, "uniform", ["skip_connect"], np.random.default_rng(0))
    assert next(stream) == [space.ops.index("skip_connect")] * 6
    arch = space.decode([3, 3, 4, 1, 3, 1])
    fixed = bench.training_paths(space, "fixed", space.ops, None, fixed=arch)
    assert next(fixed) == next(fixed) == [3, 3, 4, 1, 3, 1]


def test_best_of_k_expectation_is_exact_over_the_draws():
    scores, values = [0.3, 0.1, 0.2], [30.0, 10.0, 20.0]
    assert bench.best_of_k_expectation(scores, values, 1) == 20.0  # the plain mean
    for k in (2, 3):
        draws = itertools.product(range(3), repeat=k)
        brute = np.mean([values[max(d, key=lambda i: scores[i])] for d in draws])
        assert np.isclose(bench.best_of_k_expectation(scores, values, k), brute)
    # The pick follows the score, not the value: a misleading score picks badly.
    assert bench.best_of_k_expectation([1, 0], [0.0, 50.0], 50) < 1e-6


def test_learn_paths_vary_only_what_the_sampling_rule_names():
    from nasnet_app.search.spaces import NASNetCellSpace
    from nasnet_app.search.supernets import ENAS_OPS

    space = NASNetCellSpace(num_blocks=5, ops=ENAS_OPS, combines=("add",))
    position = np.arange(len(space.random_actions(np.random.default_rng(0)))) % 5
    for sampling, varied in (("ops", (2, 3)), ("inputs", (0, 1))):
        stream, _ = bench.learn_paths(space, sampling, np.random.default_rng(1))
        paths = np.array([next(stream) for _ in range(40)])
        changes = (paths != paths[0]).any(axis=0)
        assert changes[np.isin(position, varied)].any(), sampling
        assert not changes[~np.isin(position, varied)].any(), sampling
    fixed, scored = bench.learn_paths(space, "fixed", np.random.default_rng(2))
    assert len(scored) == 1 and all(np.array_equal(next(fixed), scored[0]) for _ in range(5))
    pool, scored = bench.learn_paths(space, "pool", np.random.default_rng(3), pool_size=3)
    drawn = {tuple(next(pool)) for _ in range(60)}
    assert drawn == {tuple(a) for a in scored} and len(scored) == 3
    uniform, scored = bench.learn_paths(space, "uniform", np.random.default_rng(4), pool_size=5)
    assert len({tuple(next(uniform)) for _ in range(20)}) > 15 and len(scored) == 5


@pytest.mark.slow
def test_learn_trains_the_supernet_and_writes_its_curve(tmp_path):
    out = tmp_path / "learn.json"
    argv = ["learn", "--space", "nasbench201", "--filters", "2", "--cells-per-stage", "1"]
    argv += ["--steps", "4", "--window", "2", "--eval-every", "4", "--limit", "64"]
    rows = bench.main([*argv, "--batch-size", "16", "--pool-size", "2", "--json", str(out)])
    assert [row["step"] for row in rows] == [2, 4]
    assert 0.0 <= rows[-1]["val_accuracy_mean"] <= rows[-1]["val_accuracy_max"] <= 1.0
    assert json.loads(out.read_text())["results"] == rows


def test_retrained_cells_of_the_nasnet_space_all_build_with_the_same_width():
    # Cells of this space concatenate 1 to 5 unused states, so one fixed penultimate width
    # (NASNet-A's 192 = 8 x 6 x 4) cannot build them all; F per op is what stays equal.
    import keras

    from nasnet_app import NASNet
    from nasnet_app.presets import child_architecture
    from nasnet_app.search.weight_sharing import enas_nasnet_space

    space = enas_nasnet_space()
    rng = np.random.default_rng(0)
    for _ in range(4):
        genotype = space.decode(space.random_actions(rng))
        child = child_architecture(genotype, num_blocks=1, filters=2)
        model = NASNet(
            genotype,
            num_blocks=child.num_blocks,
            penultimate_filters=child.penultimate_filters,
            stem="cifar",
            stem_filters=child.stem_filters,
            input_shape=(32, 32, 3),
            classes=10,
        )
        assert model.output.shape[-1] == 10
        keras.backend.clear_session()


def test_report_counts_the_whole_training_of_resumed_runs(tmp_path, capsys):
    def result(seed, table, call_seconds):
        folder = tmp_path / f"enas-seed{seed}"
        folder.mkdir()
        row = {
            "arm": "enas", "seed": seed, "epochs_done": 2, "derived_arch": "|a|",
            "derived_table_accuracy": table, "kendall_tau": 0.5, "search_seconds": call_seconds,
            "policy": [{"policy_table_accuracy": 0.87}, {"policy_table_accuracy": 0.9}],
            "epoch_logs": [{"seconds": 100.0}, {"seconds": 50.0}],
        }  # fmt: skip
        (folder / "result.json").write_text(json.dumps(row))

    result(0, 93.5, 20.0)  # derived again after a finished run: the call only derived
    result(1, 92.5, 170.0)
    bench.main(["report", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[-2:] == ["150", "20"]
    assert "enas: derived mean 93.00 +- 0.50 over 2" in lines
