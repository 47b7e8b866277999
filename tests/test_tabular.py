import pytest

from nasnet_app.search.tabular import TabularEvaluator

ARCH_A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
ARCH_B = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def write(tmp_path, text, name="table.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_percent_column_is_divided_by_100(tmp_path):
    path = write(tmp_path, f"arch,acc\n{ARCH_A},93.66\n{ARCH_B},10.0\n")
    evaluator = TabularEvaluator(path)
    result = evaluator.evaluate(ARCH_A, trial=None)
    assert result["reward"] == pytest.approx(0.9366)
    assert result["metrics"] == {"acc": 93.66}
    assert evaluator.best() == (ARCH_A, 93.66) and len(evaluator) == 2


def test_fraction_column_is_used_as_is_and_metric_selects_a_column(tmp_path):
    path = write(tmp_path, f"arch,valid,test\n{ARCH_A},0.91,0.9\n{ARCH_B},0.1,0.2\n")
    assert TabularEvaluator(path, metric="test").evaluate(ARCH_B)["reward"] == pytest.approx(0.2)
    assert TabularEvaluator(path, metric="valid").evaluate(ARCH_A)["reward"] == pytest.approx(0.91)


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="`csv_path` must be an existing CSV file"):
        TabularEvaluator(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="`arch` column"):
        TabularEvaluator(write(tmp_path, "name,acc\nx,1\n"))
    two = write(tmp_path, f"arch,valid,test\n{ARCH_A},91,90\n", "two.csv")
    with pytest.raises(ValueError, match="`metric` must name the accuracy column"):
        TabularEvaluator(two)
    with pytest.raises(
        ValueError, match=r"`metric` must be one of the columns \['valid', 'test'\]"
    ):
        TabularEvaluator(two, metric="train")
    with pytest.raises(ValueError, match="non-numeric acc"):
        TabularEvaluator(write(tmp_path, f"arch,acc\n{ARCH_A},n/a\n", "bad.csv"))
    evaluator = TabularEvaluator(write(tmp_path, f"arch,acc\n{ARCH_A},93.66\n", "one.csv"))
    with pytest.raises(ValueError, match="`architecture` must be an arch string of the table"):
        evaluator.evaluate(ARCH_B)


def test_rows_are_checked_against_the_space(tmp_path):
    from nasnet_app.search.spaces import NASBench201Space

    space = NASBench201Space()
    with pytest.raises(ValueError, match="Row 3 of .* nasbench201 space cannot parse: 'garbage'"):
        TabularEvaluator(write(tmp_path, f"arch,acc\n{ARCH_A},93\ngarbage,50\n"), space=space)
    bad_op = ARCH_A.replace("avg_pool_3x3", "conv_9x9")
    with pytest.raises(ValueError, match="Row 2 of"):
        TabularEvaluator(write(tmp_path, f"arch,acc\n{bad_op},50\n", "op.csv"), space=space)
    with pytest.raises(ValueError, match="no accuracy column, only `arch`"):
        TabularEvaluator(write(tmp_path, f"arch\n{ARCH_A}\n", "arch_only.csv"))
    evaluator = TabularEvaluator(write(tmp_path, f"arch,acc\n{ARCH_A},93\n", "ok.csv"), space=space)
    assert evaluator.evaluate(ARCH_A)["reward"] == pytest.approx(0.93)
