"""Test of evaluate/benchmarks/bench_pipeline.py: the table it prints from real, tiny runs."""

import pytest

from tests.helpers import load_benchmark

bench_pipeline = load_benchmark("bench_pipeline")


@pytest.mark.slow
def test_bench_prints_every_feed_with_its_ratio(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["--data", "demo", "--train-images", "100", "--num-blocks", "1"]
    argv += ["--penultimate-filters", "48", "--batch-size", "8", "--steps", "2", "--repeats", "2"]
    assert bench_pipeline.main(argv + ["--out", str(out)]) == 0
    table = capsys.readouterr().out
    for feed in ("memory", "pipeline", "pipeline (cached)"):
        assert f"\n{feed} " in table
    import json

    result = json.loads(out.read_text())
    assert result["rows"]["memory"]["ratio_vs_memory"] == 1.0
    assert len(result["rows"]["pipeline"]["runs"]) == 2
    assert all(rate > 0 for rate in result["rows"]["pipeline"]["runs"])
    assert result["feed_alone_images_per_s"]["pipeline"] > 0


def test_bench_rejects_bad_arguments():
    with pytest.raises(SystemExit):
        bench_pipeline.main(["--steps", "0"])
