"""`nasnet-app search --weight-sharing`: ENAS and the uniform arm from the shell."""

import json

import pytest

from nasnet_app.cli import main
from nasnet_app.search.spaces import NASBench201Space
from tests import helpers


def image_folder(root, classes=2, per_class=8, size=16):
    return helpers.image_folder(root, classes, per_class, size)


TINY = [
    "--epochs", "1", "--warmup-epochs", "0", "--child-filters", "4", "--child-blocks", "1",
    "--image-size", "16", "--child-batch-size", "4", "--steps-per-epoch", "2",
    "--derive-samples", "2", "--verbose", "0",
]  # fmt: skip


def test_nasbench201_weight_sharing_search_and_resume(tmp_path, capsys):
    data, out = image_folder(tmp_path / "images"), tmp_path / "run"
    argv = ["search", "--space", "nasbench201", "--weight-sharing", "--data", str(data)]
    assert main([*argv, *TINY, "--seed", "0", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    arch = summary["best_trial"]["arch_key"]
    assert NASBench201Space().decode(NASBench201Space().encode(arch)) == arch
    assert summary["finished"] and summary["algorithm"] == "enas"
    assert "derived architecture" in capsys.readouterr().out
    assert main(["search", "--out", str(out), "--resume", "--verbose", "0"]) == 0
    assert json.loads((out / "summary.json").read_text())["best_trial"]["arch_key"] == arch
    capsys.readouterr()
    again = ["--derive-samples", "3", "--derive-images", "5"]
    assert main(["search", "--out", str(out), "--resume", "--verbose", "0", *again]) == 0
    assert "best of 3 on 5 validation images" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["derivation"] == {"samples": 3, "images": 5}


def test_random_arm_from_the_shell(tmp_path):
    data, out = image_folder(tmp_path / "images"), tmp_path / "run"
    argv = ["search", "--space", "nasbench201", "--weight-sharing", "--algorithm", "random"]
    assert main([*argv, "--data", str(data), *TINY, "--out", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["algorithm"] == "random"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--space", "macro", "--data", "demo"], "--weight-sharing needs --space nasnet"),
        (["--space", "nasbench201", "--table", "t.csv"], "give --data DIR"),
        (["--space", "nasnet", "--data", "demo", "--algorithm", "ppo"], "reinforce (ENAS) or"),
        (["--space", "nasnet", "--data", "demo", "--training-ops", "none"], "--training-ops"),
        (["--space", "nasbench201", "--data", "demo", "--training-ops", "conv"], "conv"),
    ],
)
def test_bad_weight_sharing_command_lines_are_usage_errors(tmp_path, capsys, extra, message):
    argv = ["search", "--weight-sharing", *extra, "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_nasbench201_defaults_are_the_ranked_supernet(tmp_path):
    data, out = image_folder(tmp_path / "images"), tmp_path / "run"
    argv = ["search", "--space", "nasbench201", "--weight-sharing", "--data", str(data)]
    width = TINY.index("--child-filters")
    tiny = TINY[:width] + TINY[width + 4 :]  # without --child-filters 4 --child-blocks 1
    assert main([*argv, *tiny, "--out", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())["algorithm_config"]
    assert run["supernet"]["channels"] == 16 and run["supernet"]["cells_per_stage"] == 1
    assert run["training_ops"] == ["skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
    assert run["derive_images"] == 5000 and run["derive_samples"] == 2  # --derive-samples given
    settings = json.loads((out / "cli_args.json").read_text())
    assert settings["derive_samples"] == 2 and settings["warmup_epochs"] == 0
