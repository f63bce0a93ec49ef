"""
Title: One script, three backends: JAX, PyTorch and TensorFlow
Description: Train the same ATAC network with the same code on every Keras backend, compare
their speed, and load a model saved on one backend into the others.

Keras 3 runs one model definition on JAX, PyTorch or TensorFlow; the backend is read from the
`KERAS_BACKEND` environment variable when Keras is first imported. keras_atac's layers use only
`keras.ops`, and its data pipelines are tf.data, which `model.fit` accepts on every backend, so
switching is a matter of the environment:

    KERAS_BACKEND=jax python examples/switch_backends.py --worker
    KERAS_BACKEND=torch python examples/switch_backends.py --worker
    KERAS_BACKEND=tensorflow python examples/switch_backends.py --worker

Without `--worker`, the script does exactly that for every backend in `--backends`, one
process each, and prints a table: test accuracy, training milliseconds per step (after the
first epoch, which includes tracing and compilation), and the test accuracy of the models the
other backends saved, loaded here from their `.keras` files.

    python examples/switch_backends.py --data-dir /tmp/cifar10 --subset 2560

On a busy or shared machine add `--threads 1` (or the cores your job owns).
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys

# TensorFlow's start-up INFO lines (CPU instructions) mean nothing here; its warnings and
# errors still print. A value the user set is kept (and passed on to the workers).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

BACKENDS = ("jax", "torch", "tensorflow")
# keras_atac.threads.THREADS_HELP: the coordinator never imports Keras (see below).
THREADS_HELP = (
    "cap every framework's CPU thread pools at N threads; on a shared or busy machine, the "
    "cores the job owns (1 when other processes compete for them)"
)

"""
## The worker: the same code on every backend

Keras is imported here and not at the top of the script: the backend is fixed at the first
`import keras`, and the coordinating process below never needs one.
"""


def work(args):
    import keras

    import keras_atac

    keras_atac.threads.set_threads(args.threads)
    backend = keras.backend.backend()
    print(f"Keras {keras.__version__}, backend: {backend}", flush=True)
    keras.utils.set_random_seed(args.seed)
    data = keras_atac.datasets.load("cifar10", data_dir=args.data_dir, subset=args.subset)
    recipe = keras_atac.training.get_recipe(
        "atac_cifar", epochs=args.epochs, batch_size=args.batch_size
    )
    model = keras_atac.models.cifar_resnet(args.depth, activation=args.activation)
    steps = data.steps_per_epoch(recipe.batch_size)
    recipe.compile(model, steps_per_epoch=steps)
    history = model.fit(
        data.train_dataset(batch_size=recipe.batch_size, seed=args.seed),
        epochs=recipe.epochs,
        shuffle=False,  # the pipeline shuffles
        callbacks=[keras_atac.training.EpochTimer()],
        verbose=args.verbose,
    )
    test = data.test_dataset(batch_size=recipe.batch_size)
    _, accuracy = model.evaluate(test, verbose=0)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / f"{backend}.keras")

    loaded, loaded_jit_compile = {}, {}
    for path in sorted(out.glob("*.keras")):
        if path.stem != backend:
            other = load_saved_model(path)
            loaded[path.stem] = other.evaluate(test, verbose=0, return_dict=True)["accuracy"]
            loaded_jit_compile[path.stem] = other.jit_compile

    seconds = history.history["epoch_seconds"]
    result = {
        "backend": backend,
        "test_accuracy": accuracy,
        "ms_per_step": 1000 * min(seconds[1:] or seconds) / steps,
        "loaded_accuracy": loaded,
        "loaded_jit_compile": loaded_jit_compile,
    }
    (out / f"{backend}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result), flush=True)


"""
## Loading a model saved on another backend

Two things to know when a `.keras` file moves between backends:

- keras_atac's layers are registered for serialization when `keras_atac` is imported, so the
  loading process must `import keras_atac` (no `custom_objects` needed after that). Without
  it, Keras fails with "Could not locate class 'ATAC'".
- The file keeps the compile settings of the backend that saved it, with `jit_compile`
  resolved there: `True` on JAX, which on PyTorch means `torch.compile` (slow to start, and it
  recompiles for every new batch shape). Load with `compile=False` and compile again on the
  backend that uses the model: `jit_compile="auto"`, Keras's default, is right for each.
"""


def load_saved_model(path):
    """A `.keras` file saved on any backend, compiled for this one for evaluation."""
    import keras

    import keras_atac  # noqa: F401 (registers keras_atac's layers for deserialization)

    try:
        model = keras.saving.load_model(path, compile=False)
    except TypeError as error:
        if "Could not locate" not in str(error):
            raise
        raise TypeError(
            f"{error}\nIf the class is one of keras_atac's, `import keras_atac` in the loading "
            "process registers it; for your own classes, import the module that defines them."
        ) from error
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    return model


"""
## The coordinator: one process per backend

Each backend runs in its own process with `KERAS_BACKEND` set; the results come back as JSON
files next to the saved models.
"""


def coordinate(args, argv):
    out = pathlib.Path(args.out)
    for backend in args.backends.split(","):
        print(f"\n=== KERAS_BACKEND={backend} ===", flush=True)
        env = {**os.environ, "KERAS_BACKEND": backend}
        subprocess.run([sys.executable, __file__, *argv, "--worker"], env=env, check=True)
    print("\n| backend | test accuracy | ms per step | accuracy of models saved on |")
    print("|---|---|---|---|")
    for backend in args.backends.split(","):
        result = json.loads((out / f"{backend}.json").read_text())
        loaded = ", ".join(f"{k}: {v:.4f}" for k, v in result["loaded_accuracy"].items())
        print(
            f"| {backend} | {result['test_accuracy']:.4f} | {result['ms_per_step']:.0f} | "
            f"{loaded or '-'} |"
        )


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--data-dir", help="image folder or .npz (default: tfds download)")
    parser.add_argument("--subset", type=int, default=2560, help="training images")
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--activation", default="atac")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated")
    parser.add_argument("--out", default="switch_backends", help="folder for models and results")
    parser.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    parser.add_argument("--worker", action="store_true", help="train on $KERAS_BACKEND only")
    parser.add_argument("--threads", type=int, metavar="N", help=THREADS_HELP)
    args = parser.parse_args(argv)
    if args.worker:
        work(args)
    else:
        coordinate(args, argv)


if __name__ == "__main__":
    main()
