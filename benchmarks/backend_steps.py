"""Compiled forward+backward steps and their peak memory, on the backend of this process.

`current()` returns the adapter of `keras.backend.backend()`. An adapter turns a built Keras
layer, or a plain-framework reference of the same formula (see `reference_*.py`), into a
`step()` that computes the gradients of `sum(layer(x, training=True))` with respect to `x` and
every trainable weight (batch statistics and moving averages included), and measures the peak
memory of one step with what the backend offers on CPU:

- TensorFlow: the peak of TensorFlow's CPU allocator during the step above what it held
  before (`tf.config.experimental.get_memory_info`), as a BFC allocator
  (`TF_CPU_ALLOCATOR_USE_BFC=true`, which the benchmarks' workers set: without it the default
  CPU allocator kept these statistics on the Intel build of this project's machine, where
  oneDNN is on, and not on its AMD build);
- JAX: XLA's buffer assignment of the compiled step, temporaries plus outputs
  (`compiled.memory_analysis()`), i.e. what the step allocates beyond its inputs;
- PyTorch: the peak of the bytes PyTorch's CPU allocator holds during the step above what it
  held before, summed from the allocation events of `torch.profiler` (`profile_memory=True`).

Every `step()` returns `(input_gradient, weight_gradients, ...)` once they are computed.
`inference_step(layer, x, mode)` is the same compiled path for `layer(x, training=False)`
without gradients (a layer or a whole model); `model_step(model, x, y)` is one training step
of a compiled Keras model as `fit` runs it. `profile(step)` says what a step runs (XLA's
kernels, or PyTorch's operators with their times) and `kernel_times(step, repeats)` how long
each of them takes (`benchmarks.kernel_times`).
"""

import importlib
import inspect
import re

import keras
import numpy as np

from benchmarks.kernel_times import Kernel, torch_category, xla_kernel_times


def call_kwargs(layer, training=True):
    """`{"training": training}` for layers whose `call` takes it (stateless_call passes kwargs
    as they are, so a layer without the argument must not get it)."""
    return {"training": training} if "training" in inspect.signature(layer.call).parameters else {}


def to_numpy(variable):
    """A Keras variable's value as a NumPy array (to build the plain-framework references)."""
    return keras.ops.convert_to_numpy(variable)


def model_state(model):
    """The state a JAX Keras model's `train_step` takes and returns: the values of its
    trainable, non-trainable, optimizer and metrics variables (the optimizer built)."""
    values = lambda variables: [variable.value for variable in variables]  # noqa: E731
    return (
        values(model.trainable_variables),
        values(model.non_trainable_variables),
        values(model.optimizer.variables),
        values(model.metrics_variables),
    )


def hlo_summary(text):
    """What XLA runs for a compiled step: the instructions of its optimized HLO entry
    computation, counted by kind (each fusion is one generated kernel)."""
    entry = text[text.index("ENTRY") :]
    entry = entry[: entry.index("\n}")]
    kinds = {}
    for line in entry.splitlines()[1:]:
        if "=" not in line:
            continue
        # "%name = <type> opcode(operands), attributes": the first word followed by "(".
        operation = re.search(r"(?:^|\s)([a-z][\w\-]*)\(", line.split("=", 1)[1]).group(1)
        if operation in ("parameter", "constant", "get-tuple-element", "tuple", "bitcast"):
            continue
        if operation == "fusion" and "kind=" in line:
            operation = "fusion " + line.split("kind=", 1)[1].split(",", 1)[0].split()[0]
        if operation == "custom-call" and "custom_call_target=" in line:
            operation = line.split("custom_call_target=", 1)[1].split(",", 1)[0]
        kinds[operation] = kinds.get(operation, 0) + 1
    total = sum(kinds.values())
    listed = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    return f"{total} kernels in the optimized HLO entry computation: {listed}"


def current():
    return {"tensorflow": TensorFlowSteps, "jax": JaxSteps, "torch": TorchSteps}[
        keras.backend.backend()
    ]()


class TensorFlowSteps:
    """`tf.function(jit_compile=True)`: XLA, the compiled path of TensorFlow."""

    modes = ("xla",)
    # What `kernel_times` measures here, where it differs from "every kernel's time".
    kernel_times_caveat = (
        "(On TensorFlow, XLA's convolutions run on Eigen's thread pool after their kernel's "
        "profiler event has ended, so their row counts about their launch only; the other "
        "rows are complete.)"
    )

    def __init__(self):
        import tensorflow as tf

        self.tf = tf

    def references(self):
        return importlib.import_module("benchmarks.reference_tensorflow").REFERENCES

    def layer_step(self, layer, x, mode):
        kwargs = call_kwargs(layer)
        return self._step(lambda inputs: layer(inputs, **kwargs), layer.trainable_variables, x)

    def reference_step(self, reference, x, mode):
        return self._step(reference, reference.trainable_variables, x)

    def reference_forward(self, reference, x):
        return reference(self.tf.constant(x)).numpy()

    def inference_step(self, layer, x, mode):
        tf = self.tf
        kwargs = call_kwargs(layer, training=False)
        forward = tf.function(lambda inputs: layer(inputs, **kwargs), jit_compile=True)
        return self._synced_step(forward, tf.constant(x))

    def _step(self, forward, variables, x):
        tf = self.tf
        x = tf.constant(x)

        @tf.function(jit_compile=True)
        def gradients(inputs):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                loss = tf.reduce_sum(forward(inputs))
            input_gradient, *weight_gradients = tape.gradient(loss, [inputs, *variables])
            return input_gradient, weight_gradients

        return self._synced_step(gradients, x)

    def model_step(self, model, x, y):
        """One training step of a compiled Keras model as `fit` compiles it on TensorFlow:
        `model.train_step` in `tf.function(jit_compile=True)`."""
        tf = self.tf
        train_step = tf.function(model.train_step, jit_compile=True)
        return self._synced_step(train_step, (tf.constant(x), tf.constant(y)))

    def _synced_step(self, function, argument):
        """A step that calls a compiled `function(argument)` and returns once its result is
        computed; `step.optimized_hlo()` is the program XLA runs."""
        tf = self.tf

        def step():
            result = function(argument)
            tf.test.experimental.sync_devices()
            return result

        step.optimized_hlo = lambda: function.experimental_get_compiler_ir(argument)(
            "optimized_hlo"
        )
        return step

    def profile(self, step):
        return hlo_summary(step.optimized_hlo())

    def kernel_times(self, step, repeats):
        return xla_kernel_times(step, step.optimized_hlo(), repeats=repeats)

    def peak_bytes(self, step):
        experimental = self.tf.config.experimental
        try:
            experimental.reset_memory_stats("CPU:0")
        except ValueError as error:
            raise RuntimeError(
                "TensorFlow's CPU allocator keeps no statistics in this process: set "
                "TF_CPU_ALLOCATOR_USE_BFC=true before TensorFlow is imported (the benchmarks' "
                "workers do)."
            ) from error
        held = experimental.get_memory_info("CPU:0")["current"]
        step()
        return experimental.get_memory_info("CPU:0")["peak"] - held


class JaxSteps:
    """`jax.jit` of `jax.grad` over `stateless_call`: the compiled path of JAX."""

    modes = ("jit",)
    kernel_times_caveat = None

    def __init__(self):
        import jax

        self.jax = jax

    def references(self):
        return importlib.import_module("benchmarks.reference_jax").REFERENCES

    def layer_step(self, layer, x, mode):
        kwargs = call_kwargs(layer)

        def apply(params, state, inputs):
            return layer.stateless_call(params, state, inputs, **kwargs)

        params = [variable.value for variable in layer.trainable_variables]
        state = [variable.value for variable in layer.non_trainable_variables]
        return self._step(apply, params, state, x)

    def reference_step(self, reference, x, mode):
        return self._step(reference.apply, reference.params, reference.state, x)

    def reference_forward(self, reference, x):
        return np.asarray(reference.apply(reference.params, reference.state, x)[0])

    def inference_step(self, layer, x, mode):
        jax = self.jax
        kwargs = call_kwargs(layer, training=False)
        params = [variable.value for variable in layer.trainable_variables]
        state = [variable.value for variable in layer.non_trainable_variables]
        forward = jax.jit(
            lambda params, state, inputs: layer.stateless_call(params, state, inputs, **kwargs)[0]
        )
        x = jax.numpy.asarray(x)
        return lambda: jax.block_until_ready(forward(params, state, x))

    def _step(self, apply, params, state, x):
        jax = self.jax

        def loss(params, state, inputs):
            outputs, state = apply(params, state, inputs)
            return jax.numpy.sum(outputs), state

        @jax.jit
        def gradients(params, state, inputs):
            (weight_gradients, input_gradient), state = jax.grad(
                loss, argnums=(0, 2), has_aux=True
            )(params, state, inputs)
            return input_gradient, weight_gradients, state

        x = jax.numpy.asarray(x)

        def step():
            return jax.block_until_ready(gradients(params, state, x))

        step.compiled = gradients.lower(params, state, x).compile()
        return step

    def model_step(self, model, x, y):
        """One training step of a compiled (and already stepped) Keras model as `fit` runs it
        on JAX: `model.train_step` under `jax.jit`, the model's state in and out, the input
        state's buffers donated to the output."""
        jax = self.jax
        # A copy: the step donates its input state, which must not be the model's own buffers.
        current = [jax.tree.map(lambda value: value.copy(), model_state(model))]
        data = (jax.numpy.asarray(x), jax.numpy.asarray(y))
        compiled = jax.jit(model.train_step, donate_argnums=0).lower(current[0], data).compile()

        def step():
            _, current[0] = compiled(current[0], data)
            return jax.block_until_ready(current[0])

        step.compiled = compiled
        return step

    def profile(self, step):
        return hlo_summary(step.compiled.as_text())

    def kernel_times(self, step, repeats):
        return xla_kernel_times(step, step.compiled.as_text(), repeats=repeats)

    def peak_bytes(self, step):
        analysis = step.compiled.memory_analysis()
        return analysis.temp_size_in_bytes + analysis.output_size_in_bytes


class TorchSteps:
    """Eager PyTorch, and `torch.compile` of the forward pass (inductor; backward by AOT)."""

    modes = ("eager", "compile")
    kernel_times_caveat = (
        "(On PyTorch, each row is the `aten` operators' self time on the calling thread.)"
    )

    def __init__(self):
        import torch

        self.torch = torch

    def references(self):
        return importlib.import_module("benchmarks.reference_torch").REFERENCES

    def layer_step(self, layer, x, mode):
        kwargs = call_kwargs(layer)
        weights = [variable.value for variable in layer.trainable_variables]
        return self._step(lambda inputs: layer(inputs, **kwargs), weights, x, mode)

    def reference_step(self, reference, x, mode):
        return self._step(reference, list(reference.parameters()), x, mode)

    def reference_forward(self, reference, x):
        return reference(self.torch.from_numpy(x)).detach().numpy()

    def inference_step(self, layer, x, mode):
        torch = self.torch
        kwargs = call_kwargs(layer, training=False)
        forward = lambda inputs: layer(inputs, **kwargs)  # noqa: E731
        if mode == "compile":
            forward = torch.compile(forward)
        x = torch.from_numpy(x)

        def step():
            with torch.no_grad():
                return forward(x)

        return step

    def _step(self, forward, weights, x, mode):
        torch = self.torch
        if mode == "compile":
            forward = torch.compile(forward)
        x = torch.from_numpy(x).requires_grad_(True)

        def step():
            input_gradient, *weight_gradients = torch.autograd.grad(forward(x).sum(), [x, *weights])
            return input_gradient, weight_gradients

        return step

    def model_step(self, model, x, y):
        """One training step of a compiled Keras model: `model.train_on_batch`, eager."""
        return lambda: model.train_on_batch(x, y)

    def kernel_times(self, step, repeats):
        """`(kernel, ms, calls)` per call of `step` for each `aten` operator, by its self time
        on the calling thread (`torch.profiler`), the slowest first."""
        profiler = self.torch.profiler
        with profiler.profile(activities=[profiler.ProfilerActivity.CPU]) as result:
            for _ in range(repeats):
                step()
        times = [
            (
                Kernel(event.key, torch_category(event.key)),
                event.self_cpu_time_total / 1e3 / repeats,
                event.count / repeats,
            )
            for event in result.key_averages()
            if event.key.startswith("aten::")
        ]
        return sorted(times, key=lambda item: -item[1])

    def profile(self, step):
        profiler = self.torch.profiler
        with profiler.profile(activities=[profiler.ProfilerActivity.CPU]) as result:
            step()
        averages = result.key_averages()
        calls = sum(event.count for event in averages if event.key.startswith("aten::"))
        table = averages.table(sort_by="self_cpu_time_total", row_limit=12)
        return f"{calls} aten operator calls in one step\n{table}"

    def peak_bytes(self, step):
        profiler = self.torch.profiler
        with profiler.profile(activities=[profiler.ProfilerActivity.CPU], profile_memory=True) as p:
            step()
        # Allocation (+) and release (-) events of the CPU allocator, in time order.
        events = sorted(
            (event.start_ns(), event.nbytes())
            for event in p.profiler.kineto_results.events()
            if event.name() == "[memory]"
        )
        held = peak = 0
        for _, nbytes in events:
            held += nbytes
            peak = max(peak, held)
        return peak
