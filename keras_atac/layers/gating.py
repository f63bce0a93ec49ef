"""The contract the `x * G(x)` layers share: ATAC, SE (and CBAM's channel gate), ECA, CBAM's
spatial gate, Gather-Excite and xUnit."""

import keras
from keras import ops

from keras_atac.layers import input_checks, layer_utils


class GatingLayer(keras.layers.Layer):
    """Base of the layers that multiply their input by a gate computed from it:

        y = x * G(x)

    The shared part: integer and boolean inputs are cast to the compute dtype; `G` is computed
    from `x` cast to the gate dtype (float32 under float16 and bfloat16 policies, see
    `layer_utils.sensitive_dtype_policy`); the gate is cast back to the dtype of `x` for the
    product; the output has the input's shape.

    A subclass calls `build_gate_policy()` in `build()` (and gives its gate's sublayers the
    policy it returns) and implements `gate_values(x, training)`: `G(x)` for `x` in the gate
    dtype, in a shape that broadcasts against `x`.
    """

    def build_gate_policy(self):
        """The dtype policy of the gate's sublayers; also sets the gate dtype."""
        policy = layer_utils.sensitive_dtype_policy(self)
        self._gate_dtype = policy.compute_dtype
        return policy

    def gate_values(self, x, training=None):
        raise NotImplementedError(f"{type(self).__name__} must implement gate_values(x, training)")

    def call(self, inputs, training=None):
        inputs = input_checks.floating_inputs(self, inputs)
        gate = self.gate_values(ops.cast(inputs, self._gate_dtype), training=training)
        return inputs * ops.cast(gate, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape
