"""Trains the shared ResNet-8 with ATAC on 4 host devices with keras.distribution (JAX).

Run with KERAS_BACKEND=jax, XLA_FLAGS=--xla_force_host_platform_device_count=4 and the
repository root on PYTHONPATH. Prints, as JSON, the step losses on one device, with
`DataParallel` over the 4 devices and with `ModelParallel` on a 2x2 mesh (batch x model) that
shards the 1x1 kernels of every ATAC unit over the bottleneck channels, and the sharding the
kernels received.
"""

import json

import keras

from tests.robustness import training


def fit(distribution, weights):
    keras.distribution.set_distribution(distribution)
    model = training.make_model()
    model.set_weights(weights)
    training.compile_model(model)
    losses = training.fit_losses(model, *training.make_data())
    return model, losses


def main():
    devices = keras.distribution.list_devices("cpu")
    weights = training.make_model().get_weights()
    _, single = fit(None, weights)
    _, data_parallel = fit(keras.distribution.DataParallel(devices=devices), weights)

    mesh = keras.distribution.DeviceMesh((2, 2), ["batch", "model"], devices)
    layout_map = keras.distribution.LayoutMap(mesh)
    # PW1 maps C -> Ci and PW2 maps Ci -> C: both are split along the bottleneck channels Ci.
    layout_map[".*/reduce_kernel"] = (None, "model")
    layout_map[".*/expand_kernel"] = ("model", None)
    model, model_parallel = fit(
        keras.distribution.ModelParallel(layout_map=layout_map, batch_dim_name="batch"), weights
    )
    kernels = [w for w in model.weights if w.path.endswith(("reduce_kernel", "expand_kernel"))]
    print(
        json.dumps(
            {
                "devices": len(devices),
                "single": single,
                "data_parallel": data_parallel,
                "model_parallel": model_parallel,
                "atac_kernels": len(kernels),
                "kernel_shardings": sorted({str(w.value.sharding.spec) for w in kernels}),
            }
        )
    )


if __name__ == "__main__":
    main()
