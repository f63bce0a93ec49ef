"""The kernel profile of `benchmarks.kernel_times` and `benchmarks.profile_step`."""

# ruff: noqa: E501 (the HLO text below keeps XLA's long lines)

import argparse

import keras
import numpy as np
import pytest

from benchmarks import backend_steps, kernel_times, profile_step

# An optimized HLO module as XLA prints it: a multi-output fusion (a tuple type with spaces),
# an elementwise fusion, a product, a transpose with fused work, a broadcast of its own, and
# instructions that run nothing (parameters, a constant, tuples, a bitcast).
HLO = """HloModule jit_step, is_scheduled=true

%add (x: f32[], y: f32[]) -> f32[] {
  %x = f32[] parameter(0)
  %y = f32[] parameter(1)
  ROOT %sum = f32[] add(%x, %y)
}

%fused_sigmoid (p: f32[64,16]) -> f32[64,16] {
  %p = f32[64,16]{1,0} parameter(0)
  %one = f32[] constant(1)
  %ones = f32[64,16]{1,0} broadcast(%one), dimensions={}
  %negated = f32[64,16]{1,0} negate(%p)
  %exp = f32[64,16]{1,0} exponential(%negated)
  %denominator = f32[64,16]{1,0} add(%ones, %exp)
  ROOT %gate = f32[64,16]{1,0} divide(%ones, %denominator)
}

%fused_statistics (q: f32[64,16]) -> (f32[16], f32[16]) {
  %q = f32[64,16]{1,0} parameter(0)
  %zero = f32[] constant(0)
  %total = f32[16]{0} reduce(%q, %zero), dimensions={0}, to_apply=%add
  %squares = f32[64,16]{1,0} multiply(%q, %q)
  %total_of_squares = f32[16]{0} reduce(%squares, %zero), dimensions={0}, to_apply=%add
  ROOT %both = (f32[16]{0}, f32[16]{0}) tuple(%total, %total_of_squares)
}

%fused_transpose (r: f32[64,16]) -> f32[16,64] {
  %r = f32[64,16]{1,0} parameter(0)
  %zero.1 = f32[] constant(0)
  %zeros = f32[64,16]{1,0} broadcast(%zero.1), dimensions={}
  %relu = f32[64,16]{1,0} maximum(%r, %zeros)
  ROOT %transposed = f32[16,64]{1,0} transpose(%relu), dimensions={1,0}
}

ENTRY %main.7 (Arg_0.1: f32[64,8], Arg_1.2: f32[8,16]) -> (f32[64,16], f32[16], f32[16,64]) {
  %Arg_0.1 = f32[64,8]{1,0} parameter(0)
  %Arg_1.2 = f32[8,16]{1,0} parameter(1)
  %dot.3 = f32[64,16]{1,0} dot(%Arg_0.1, %Arg_1.2), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  %sigmoid_fusion = f32[64,16]{1,0} fusion(%dot.3), kind=kLoop, calls=%fused_sigmoid
  %statistics_fusion = (f32[16]{0}, f32[16]{0}) fusion(%dot.3), kind=kInput, calls=%fused_statistics
  %mean = f32[16]{0} get-tuple-element(%statistics_fusion), index=0
  %transpose_fusion = f32[16,64]{1,0} fusion(%sigmoid_fusion), kind=kLoop, calls=%fused_transpose
  %flat = f32[1024]{0} bitcast(%sigmoid_fusion)
  %zero.2 = f32[] constant(0)
  %zeros.2 = f32[64,16]{1,0} broadcast(%zero.2), dimensions={}
  ROOT %tuple.4 = (f32[64,16]{1,0}, f32[16]{0}, f32[16,64]{1,0}) tuple(%sigmoid_fusion, %mean, %transpose_fusion)
}
"""


def test_hlo_kernels_describe_the_work_of_each_kernel():
    kernels = kernel_times.hlo_kernels(HLO)
    works = {name: (kernel.work, kernel.category) for name, kernel in kernels.items()}
    assert works == {
        "dot.3": ("dot(dot) -> f32[64,16]", "matrix product"),
        "sigmoid_fusion": (
            "fusion(add, divide, exponential, negate) -> f32[64,16]",
            "elementwise",
        ),
        "statistics_fusion": (
            "fusion(multiply, reduce) -> (f32[16], f32[16])",
            "reduction",
        ),
        "transpose_fusion": ("fusion(maximum, transpose) -> f32[16,64]", "transpose"),
        "zeros.2": ("broadcast(broadcast) -> f32[64,16]", "other data movement"),
    }


def test_outputs_of_one_shape_are_counted():
    # A variadic reduce's outputs, with XLA's index comment among them.
    hlo = HLO.replace(
        "%statistics_fusion = (f32[16]{0}, f32[16]{0}) fusion",
        "%statistics_fusion = (f32[16]{0}, f32[16]{0}, /*index=2*/f32[16]{0}) fusion",
    )
    work = kernel_times.hlo_kernels(hlo)["statistics_fusion"].work
    assert work == "fusion(multiply, reduce) -> 3 x f32[16]"


@pytest.mark.parametrize(
    "operations, category",
    [
        ({"convolution", "add"}, "convolution"),
        ({"dot", "multiply"}, "matrix product"),
        ({"reduce-window"}, "reduction"),
        ({"copy", "transpose"}, "transpose"),
        ({"pad", "slice"}, "other data movement"),
        (set(), "other data movement"),  # a fusion of broadcasts only
        ({"compare", "select"}, "elementwise"),
        ({"gather", "add"}, "other"),
    ],
)
def test_category(operations, category):
    assert kernel_times.category(operations) == category


def test_torch_category():
    assert kernel_times.torch_category("aten::mkldnn_convolution") == "convolution"
    assert kernel_times.torch_category("aten::mm") == "matrix product"
    assert kernel_times.torch_category("aten::sum") == "reduction"
    assert kernel_times.torch_category("aten::copy_") == "other data movement"
    assert kernel_times.torch_category("aten::sigmoid_backward") == "elementwise"


def test_totals_by_category_and_by_work():
    kernels = kernel_times.hlo_kernels(HLO)
    times = [
        (kernels["dot.3"], 2.0, 1.0),
        (kernels["sigmoid_fusion"], 0.5, 1.0),
        (kernels["transpose_fusion"], 0.25, 2.0),
    ]
    totals = kernel_times.by_category(times)
    assert list(totals) == list(kernel_times.CATEGORIES)
    assert totals["matrix product"] == 2.0 and totals["transpose"] == 0.25
    assert totals["reduction"] == 0.0
    assert kernel_times.by_work(times)["fusion(maximum, transpose) -> f32[16,64]"] == (
        "transpose",
        0.25,
        2.0,
    )


def test_xla_kernel_times_time_every_kernel_of_a_compiled_step():
    if keras.backend.backend() == "torch":
        pytest.skip("XLA's kernels: TensorFlow and JAX")
    layer = keras.layers.Dense(16, activation="sigmoid", use_bias=False)
    x = np.random.default_rng(0).normal(size=(256, 8)).astype("float32")
    layer.build(x.shape)
    steps_of_backend = backend_steps.current()
    step = steps_of_backend.layer_step(layer, x, steps_of_backend.modes[0])
    step()
    times = steps_of_backend.kernel_times(step, repeats=3)
    categories = {kernel.category for kernel, _, _ in times}
    assert "matrix product" in categories and "elementwise" in categories
    assert all(ms >= 0 for _, ms, _ in times)
    # Each kernel of the program runs once per step.
    assert {calls for _, _, calls in times} == {1.0}


@pytest.mark.slow
def test_network_profile_against_relu():
    # Which kernels a step runs, and how often, is fixed by its program; how long they take is
    # not (CI runs tests side by side), so this checks counts and the report, never which
    # network's step was faster.
    step_ms, profiles = profile_step.network_kernel_times(
        "atac", depth=8, batch_size=2, repeats=1, profiled=1
    )
    assert set(step_ms) == set(profiles) == {"relu", "atac"}
    assert all(ms > 0 for ms in step_ms.values())
    for times in profiles.values():
        assert times and all(ms >= 0 and calls > 0 for _, ms, calls in times)

    def matrix_products(times):
        return sum(calls for kernel, _, calls in times if kernel.category == "matrix product")

    # ATAC's pointwise maps are matrix products; ReLU's network has only its classifier's.
    assert matrix_products(profiles["atac"]) > matrix_products(profiles["relu"]) > 0

    args = argparse.Namespace(layer="atac", depth=8, batch_size=2, repeats=1, profiled=1, rows=4)
    text = profile_step.network_report(args, step_ms, profiles)
    assert f"cifar_resnet(8), atac against ReLU, {keras.backend.backend()}" in text
    (row,) = [line for line in text.splitlines() if line.startswith("| **all kernels** |")]
    relu_ms, atac_ms, difference = (float(cell) for cell in row.strip("|").split("|")[1:4])
    assert difference == pytest.approx(atac_ms - relu_ms, abs=0.11)
    assert relu_ms == pytest.approx(sum(ms for _, ms, _ in profiles["relu"]), abs=0.051)
    work_rows = text.split("kinds of work whose time changed most")[1].splitlines()
    assert len([line for line in work_rows if line.startswith("| `")]) == 4
