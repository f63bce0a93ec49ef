"""Smoke tests: every benchmark's code path runs at a tiny size on the current backend.

They run the benchmarks in this process (`harness.run_in_process`), so no worker process and no
second framework is started; the measured numbers are not checked, only that each benchmark
produces its rows, its Markdown and its plot.
"""

import json

import keras
import pytest

from benchmarks import atac_cost, folded_inference, harness, layer_cost, scaling, train_step

TINY = ("--warmup", "0", "--repeats", "1")


def rows_of(results):
    return results["backends"][keras.backend.backend()]["rows"]


@pytest.mark.slow
def test_layer_cost_checks_every_layer_against_its_plain_reference(tmp_path):
    # The run itself fails if a reference computes another output or input gradient.
    results = harness.run_in_process(
        layer_cost, ["--shapes", "2,4,4,16", "--compile-layers", "none", *TINY], tmp_path
    )
    rows = rows_of(results)
    assert [row["layer"] for row in rows] == ["relu", *layer_cost.package_layer_names()]
    missing = [row["layer"] for row in rows if row["plain_ms"] is None]
    assert not missing, f"layers without a plain-framework reference: {missing}"
    for row in rows:
        assert row["ms"] > 0 and row["peak_bytes"] >= 0
    assert "× plain" in (tmp_path / "layer_cost.md").read_text()
    assert json.loads((tmp_path / "layer_cost.json").read_text())["benchmark"] == "layer_cost"


@pytest.mark.slow
def test_layer_cost_with_torch_compile(tmp_path):
    if keras.backend.backend() != "torch":
        pytest.skip("torch.compile is PyTorch's")
    results = harness.run_in_process(
        layer_cost,
        ["--shapes", "2,4,4,8", "--layers", "arelu", "--compile-layers", "relu", *TINY],
        tmp_path,
    )
    assert [(row["mode"], row["layer"]) for row in rows_of(results)] == [
        ("eager", "relu"),
        ("eager", "arelu"),
        ("compile", "relu"),
    ]


@pytest.mark.slow
def test_scaling(tmp_path):
    argv = ["--batch-size", "2", "--channels", "4,8", "--resolutions", "4", *TINY]
    argv += ["--fixed-resolution", "4", "--fixed-channels", "4"]
    results = harness.run_in_process(scaling, argv, tmp_path)
    assert [(row["sweep"], row["value"]) for row in rows_of(results)] == [
        ("channels", 4),
        ("channels", 8),
        ("resolution", 4),
    ]
    assert (tmp_path / "scaling.png").stat().st_size > 0


@pytest.mark.slow
def test_folded_inference(tmp_path):
    argv = ["--shapes", "2,4,4,8", "--depth", "8", "--batch-size", "2", *TINY]
    rows = rows_of(harness.run_in_process(folded_inference, argv, tmp_path))
    assert len(rows) == 3  # ATAC, XUnit, the ResNet
    assert all(row["folded_ms"] > 0 and row["model_ms"] > 0 for row in rows)


@pytest.mark.slow
def test_train_step(tmp_path):
    argv = ["--depth", "8", "--batch-size", "2", "--activations", "atac,se", *TINY]
    rows = rows_of(harness.run_in_process(train_step, argv, tmp_path))
    assert [row["activation"] for row in rows] == ["relu", "atac", "se"]
    relu, atac, _ = rows
    assert atac["macs"] > relu["macs"] and atac["images_per_s"] > 0
    # ATAC stores its gate's intermediates for the backward pass: more memory than ReLU.
    assert atac["peak_bytes"] > relu["peak_bytes"] > 0


def test_atac_cost(tmp_path):
    argv = ["--batch-size", "2", *TINY]
    rows = rows_of(harness.run_in_process(atac_cost, argv, tmp_path))
    assert [row["unit"] for row in rows] == list(atac_cost.UNITS)
    assert all(len(row["step_ms"]) == len(atac_cost.STAGES) for row in rows)
    assert all(ms > 0 for row in rows for ms in row["step_ms"])
    assert "`atac_written_out`" in (tmp_path / "atac_cost.md").read_text()
