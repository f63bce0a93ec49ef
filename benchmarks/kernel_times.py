"""Where a step compiled by XLA spends its time, kernel by kernel (TensorFlow and JAX).

XLA's CPU runtime records every kernel it runs as a profiler event named after the kernel's
instruction in the optimized HLO program: a fusion of elementwise operations, a reduction, a
matrix product, a convolution, a transpose. `xla_kernel_times` runs a step under the
backend's profiler (`jax.profiler.trace`, `tf.profiler.experimental`), reads the events back
from the XSpace protocol buffer the profiler writes, and sums their durations per instruction
of the step's optimized HLO (`hlo_kernels`). Times are summed over XLA's threads, so two
kernels that run side by side both count.

Instruction names differ between two programs, so a kernel is described by its work instead:
its fused operations and its output, e.g. `fusion(divide, exponential, multiply) ->
f32[65536,16]`, in one of the categories of `category`. Two networks' steps are then compared
work by work (`benchmarks.profile_step --network`). PyTorch's `aten` operators are timed by
`torch.profiler` instead (`benchmarks.backend_steps`), by their self time on the calling
thread, and put in the same categories by name (`torch_category`).
"""

import collections
import glob
import os
import re
import tempfile

# Instructions of a program's entry computation that run no kernel.
_NO_KERNEL = {"parameter", "constant", "bitcast", "tuple", "get-tuple-element"}
# Operations that move no data of their own, or only rename it, left out of a kernel's
# description of its work.
_NO_WORK = {
    "parameter",
    "constant",
    "bitcast",
    "broadcast",
    "reshape",
    "tuple",
    "get-tuple-element",
    "iota",
}
# Operations that only move data.
_DATA_MOVEMENT = {
    "broadcast",
    "concatenate",
    "convert",
    "copy",
    "iota",
    "pad",
    "reshape",
    "reverse",
    "slice",
    "transpose",
}
# Operations that are neither elementwise nor in one of the other categories.
_OTHER = {
    "all-reduce",
    "call",
    "conditional",
    "custom-call",
    "dynamic-slice",
    "dynamic-update-slice",
    "gather",
    "rng-bit-generator",
    "scatter",
    "sort",
    "while",
}
_TORCH_PRODUCTS = {"addmm", "bmm", "dot", "linear", "matmul", "mm"}
_TORCH_REDUCTIONS = {"amax", "amin", "max", "min", "norm", "std", "var", "var_mean"}
_TORCH_DATA_MOVEMENT = {
    "as_strided",
    "cat",
    "clone",
    "constant_pad_nd",
    "contiguous",
    "copy",
    "empty",
    "empty_like",
    "expand",
    "pad",
    "permute",
    "reshape",
    "slice",
    "stack",
    "to",
    "to_copy",
    "transpose",
    "unsqueeze",
    "view",
    "zero",
    "zeros",
    "zeros_like",
}
CATEGORIES = (
    "convolution",
    "matrix product",
    "reduction",
    "transpose",
    "other data movement",
    "elementwise",
    "other",
)

# What a kernel does (`"fusion(exponential, multiply) -> f32[64,16]"`) and its category.
Kernel = collections.namedtuple("Kernel", ["work", "category"])


def hlo_kernels(hlo_text):
    """The kernels of an optimized HLO module: name -> `Kernel`, one per instruction of its
    entry computation that runs (parameters, constants, tuples and bitcasts do not)."""
    computations, entry = _computations(hlo_text)
    kernels = {}
    for name, shape, operation, line in computations[entry]:
        if operation in _NO_KERNEL:
            continue
        operations = {operation}
        called = re.search(r"calls=%?([\w.\-]+)", line)
        if operation == "fusion" and called and called.group(1) in computations:
            operations = {op for _, _, op, _ in computations[called.group(1)]} - _NO_WORK
        if operation == "custom-call":
            target = re.search(r'custom_call_target="([^"]+)"', line)
            operation = f"custom-call {target.group(1)}" if target else operation
        work = f"{operation}({', '.join(sorted(operations))}) -> {shape}"
        kernels[name] = Kernel(work, category(operations))
    return kernels


def category(operations):
    """What a kernel mostly does, from the set of operations it computes.

    The first that applies: a kernel with a convolution is a convolution, one with a product a
    matrix product, one with a reduction a reduction, one with a transpose a transpose (with
    whatever elementwise work XLA fused into it: XLA moves an activation's elementwise work
    into the transposes that feed convolutions' kernel gradients, so that work is counted
    where XLA put it), one of copies, pads and slices other data movement; the rest is
    elementwise, or other (gathers, loops, custom calls...).
    """
    if "convolution" in operations:
        return "convolution"
    if "dot" in operations:
        return "matrix product"
    if operations & {"reduce", "reduce-window", "select-and-scatter"}:
        return "reduction"
    if "transpose" in operations:
        return "transpose"
    if operations <= _DATA_MOVEMENT:
        return "other data movement"
    if operations & _OTHER:
        return "other"
    return "elementwise"


def torch_category(operator):
    """The category of a PyTorch `aten` operator, from its name (a fused batch normalization,
    which Keras's own layers do not call, is "other")."""
    name = operator.removeprefix("aten::").strip("_")
    if "conv" in name:
        return "convolution"
    if name in _TORCH_PRODUCTS:
        return "matrix product"
    if name in _TORCH_REDUCTIONS or name.startswith(("sum", "mean", "max_pool", "avg_pool")):
        return "reduction"
    if name in _TORCH_DATA_MOVEMENT:
        return "other data movement"
    if "batch_norm" in name:
        return "other"
    return "elementwise"


def xla_kernel_times(run, hlo_text, *, repeats=5):
    """Milliseconds per call of `run` spent in each kernel of `hlo_text`'s program.

    Args:
        run: a callable that runs the compiled step once and returns once it is done.
        hlo_text: the step's optimized HLO module, as text.
        repeats: calls of `run` profiled (after the caller's warm-up); times are their mean.

    Returns:
        A list of `(kernel, ms, calls)` for every kernel that ran, the slowest first: its
        `Kernel`, milliseconds and runs per call of `run`.
    """
    kernels = hlo_kernels(hlo_text)
    durations, counts = _profiled_events(run, repeats)
    times = [
        (kernel, durations[name] / repeats, counts[name] / repeats)
        for name, kernel in kernels.items()
        if name in durations
    ]
    if not times:
        raise RuntimeError(
            "The profiler recorded no kernel of the step's HLO program: the program that ran is "
            "not the one given, or this XLA version names its profiler events differently."
        )
    return sorted(times, key=lambda item: -item[1])


def by_category(times):
    """category -> milliseconds, from a list of `(kernel, ms, calls)` as `xla_kernel_times`
    and PyTorch's `kernel_times` (`benchmarks.backend_steps`) return (every category present)."""
    totals = dict.fromkeys(CATEGORIES, 0.0)
    for kernel, ms, _ in times:
        totals[kernel.category] += ms
    return totals


def by_work(times):
    """work -> (category, milliseconds, runs), summed over the kernels of such a list that do
    that work."""
    totals = {}
    for kernel, ms, calls in times:
        _, total, runs = totals.get(kernel.work, (kernel.category, 0.0, 0))
        totals[kernel.work] = (kernel.category, total + ms, runs + calls)
    return totals


def _computations(hlo_text):
    """computation name -> [(instruction, output shape, operation, line)], and the entry's name."""
    computations, entry, current = {}, None, None
    for line in hlo_text.splitlines():
        header = re.match(r"^(ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$", line)
        if header:
            current = header.group(2)
            computations[current] = []
            if header.group(1):
                entry = current
            continue
        instruction = re.match(r"^\s+(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*)$", line)
        if current is None or not instruction:
            continue
        shape, rest = _split_type(instruction.group(2))
        operation = rest.split("(", 1)[0].strip()
        computations[current].append((instruction.group(1), shape, operation, line))
    if entry is None:
        raise ValueError("No ENTRY computation in the HLO text.")
    return computations, entry


def _split_type(text):
    """`"(f32[2]{0}, f32[2]{0}) fusion(...)"` -> `("(f32[2], f32[2])", "fusion(...)")`; a
    tuple of more than two outputs of one shape is written `"27 x f32[64,16]"`."""
    if text.startswith("("):
        depth, end = 0, 0
        while True:
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            end += 1
            if depth == 0:
                break
    else:
        end = text.index(" ")
    shape, rest = text[:end], text[end:].lstrip()
    shape = re.sub(r"\{[^{}]*\}|/\*[^*]*\*/", "", shape)  # layouts, index comments
    if shape.startswith("("):
        elements = re.findall(r"\w+\[[\d,]*\]", shape[1:-1])
        if len(elements) > 2 and len(set(elements)) == 1:
            shape = f"{len(elements)} x {elements[0]}"
        else:
            shape = f"({', '.join(elements)})"
    return shape, rest


def _profiled_events(run, repeats):
    """Total milliseconds and number of the profiler's host events of each name, over
    `repeats` calls of `run`, on every thread: two `collections.Counter`s by name."""
    import keras

    with tempfile.TemporaryDirectory() as directory:
        if keras.backend.backend() == "jax":
            import jax

            options = jax.profiler.ProfileOptions()
            options.host_tracer_level = 3  # every kernel, not only the program
            with jax.profiler.trace(directory, profiler_options=options):
                for _ in range(repeats):
                    run()
        elif keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            options = tf.profiler.experimental.ProfilerOptions(host_tracer_level=3)
            tf.profiler.experimental.start(directory, options=options)
            try:
                for _ in range(repeats):
                    run()
            finally:
                tf.profiler.experimental.stop()
        else:
            raise ValueError(
                "XLA kernel times exist on TensorFlow and JAX only. "
                f"Received: backend={keras.backend.backend()!r}"
            )
        (path,) = glob.glob(os.path.join(directory, "**", "*.xplane.pb"), recursive=True)
        with open(path, "rb") as file:
            serialized = file.read()
    # The XSpace message of TensorFlow's profiler library (TSL), which JAX's profiler writes too.
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    space.ParseFromString(serialized)
    durations, counts = collections.Counter(), collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                durations[name] += event.duration_ps / 1e9
                counts[name] += 1
    return durations, counts
