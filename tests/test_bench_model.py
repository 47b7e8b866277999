"""The summary of evaluate/benchmarks/bench_model.py: best setting per model, ratio above 1 = ours faster."""

import pytest

from tests.helpers import load_benchmark

bench = load_benchmark("bench_model")


def test_summary_picks_each_models_best_setting_and_orients_the_ratio():
    results = {
        ("mobile", "train_step", "keras.applications", False): [3.0, 3.2, 2.8],
        ("mobile", "train_step", "keras.applications", True): [2.0],
        ("mobile", "train_step", "nasnet_app", False): [1.6],
        ("mobile", "train_step", "nasnet_app", True): [1.8],
        ("mobile", "throughput", "keras.applications", False): [50.0],
        ("mobile", "throughput", "nasnet_app", False): [60.0],
    }
    rows = {row["task"]: row for row in bench._summarize(results)}
    train = rows["train_step"]
    assert train["keras.applications"] == {"value": 2.0, "jit_compile": True}
    assert train["nasnet_app"] == {"value": 1.6, "jit_compile": False}
    assert train["ratio"] == pytest.approx(2.0 / 1.6)
    assert rows["throughput"]["ratio"] == pytest.approx(60.0 / 50.0)


def test_one_xla_setting_can_be_chosen():
    assert bench.XLA_SETTINGS["off"] == (False,) and bench.XLA_SETTINGS["both"] == (False, True)
    with pytest.raises(SystemExit):
        bench.main(["--xla", "sometimes"])
