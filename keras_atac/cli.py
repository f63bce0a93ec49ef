"""The `keras-atac` command line: train one network, or compare activations on the same budget.

    keras-atac train --model cifar_resnet20 --activation atac --dataset cifar10
    keras-atac compare --model conv_mnist --activations relu,arelu --dataset mnist --epochs 5
    keras-atac train --model cifar_resnet20 --mechanism ssia --dataset cifar10
    keras-atac compare --model cifar_resnet20 --activations relu --attentions none,se,cbam \
        --dataset cifar10
    keras-atac report runs/seed0 runs/seed1 --out runs/report

Each run writes Keras's CSV log, a JSON summary and a plot; `compare` adds a Markdown table and
one plot of all curves. Every run keeps a `keras.callbacks.BackupAndRestore` backup of its last
finished epoch until it ends, so that the same command with `--resume` continues an interrupted
run (and skips the finished runs of a `compare`). Choose the backend with `KERAS_BACKEND` before
running.
"""

import argparse
import csv
import dataclasses
import functools
import json
import pathlib
import shlex
import shutil
import sys
import time

import keras

from keras_atac import datasets, layers, models, threads, training
from keras_atac.models import hosts, model_utils

# Model-level attention that --mechanism wraps around the network (with its defaults).
MECHANISMS = {
    "none": None,
    "ssia": models.SSIA,
    "gattanet": models.GAttANet,
    "gattanet_cosine": functools.partial(models.GAttANet, agreement="cosine"),
}
# The recipe each dataset is trained with unless --recipe says otherwise.
DEFAULT_RECIPES = {"cifar10": "atac_cifar", "cifar100": "atac_cifar", "mnist": "arelu_mnist"}

EPILOG = """\
models: cifar_resnet<depth> (the ATAC paper's pre-activation CIFAR ResNet; depth 6b+2, the
paper used 8, 14, 20, 26, 32), resnet50_v1b, conv_mnist (the AReLU paper's ConvMNIST).
activations: {activations}.
attention modules (--attention, --attentions; on the residual branch of every block of
cifar_resnet<depth> and resnet50_v1b): none, {attentions}.
recipes: atac_cifar (Nesterov SGD lr 0.2, momentum 0.9, x0.1 at 75% and 87.5% of the epochs,
coupled L2 1e-4 on every weight, batch 128, 400 epochs); arelu_mnist (SGD momentum 0.9, fixed
lr 1e-4, no weight decay, batch 128, 20 epochs).
data: without --data-dir, tensorflow-datasets downloads the dataset (set TFDS_DATA_DIR to choose
where). Offline, --data-dir is an image folder (train/<class>/*, test/<class>/*) or an .npz file
with x_train, y_train, x_test, y_test (and y_train_coarse, y_test_coarse for --labels coarse).
backend: set KERAS_BACKEND=jax, torch or tensorflow before running.
"""


def _common_options():
    """The options of `train` and `compare`: the network, the data, the training and the run."""
    parser = argparse.ArgumentParser(add_help=False)
    _network_options(parser)
    _data_options(parser)
    _training_options(parser)
    _run_options(parser)
    threads.add_threads_argument(parser)
    return parser


def _network_options(parser):
    parser.add_argument(
        "--model",
        required=True,
        help="host network: cifar_resnet<depth> (e.g. cifar_resnet20), resnet50_v1b, conv_mnist",
    )
    parser.add_argument(
        "--mechanism",
        default="none",
        choices=tuple(MECHANISMS),
        help="model-level attention around the network: ssia (a training-only guidance loss, "
        "each stage's attention map guided by the next stage's; the plain network at "
        "inference) or gattanet (a second pass modulated by global attention agreement at "
        "every block output, or at every activation of conv_mnist; gattanet_cosine with the "
        "bounded cosine agreement, stable at large learning rates) (default: none)",
    )
    parser.add_argument(
        "--attention",
        help="an attention module on the residual branch of every block (before the addition) "
        "of cifar_resnet<depth> or resnet50_v1b: none or one of "
        f"{', '.join(layers.attention_names())} (default: none)",
    )


def _data_options(parser):
    parser.add_argument(
        "--dataset", required=True, choices=datasets.names(), help="the dataset to train on"
    )
    parser.add_argument(
        "--labels",
        default="fine",
        choices=("fine", "coarse"),
        help="CIFAR-100 labels: fine (100 classes) or coarse (20 superclasses, with a 100-way "
        "head as in the ATAC paper) (default: fine)",
    )
    parser.add_argument(
        "--data-dir",
        type=pathlib.Path,
        help="an image folder (train/<class>/, test/<class>/) or an .npz file; default: "
        "download with tensorflow-datasets",
    )
    parser.add_argument(
        "--subset",
        type=int,
        help="train on the first N training images, class-balanced (N/K of each of the K "
        "classes); the test set is always complete",
    )


def _training_options(parser):
    parser.add_argument(
        "--recipe",
        choices=training.recipe_names(),
        help="training recipe (default: atac_cifar for CIFAR, arelu_mnist for MNIST)",
    )
    parser.add_argument(
        "--epochs", type=int, help="epoch budget; the recipe's learning-rate drops scale with it"
    )
    parser.add_argument("--batch-size", type=int, help="images per batch (default: the recipe's)")
    parser.add_argument(
        "--learning-rate", type=float, help="initial learning rate (default: the recipe's)"
    )
    parser.add_argument(
        "--weight-decay", type=float, help="coupled L2 weight decay (default: the recipe's)"
    )
    parser.add_argument(
        "--num-classes",
        type=int,
        help="output units of the network (default: the dataset's, 100 for CIFAR-100)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds the weights, the data order and the augmentation (default: 0)",
    )


def _run_options(parser):
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        help="output folder (default: "
        "runs/<model>_<activation or 'compare'>[_<mechanism>]_<dataset>)",
    )
    parser.add_argument(
        "--verbose",
        type=int,
        default=1,
        choices=(0, 1, 2),
        help="Keras's fit output: 0 silent, 1 progress bar, 2 one line per epoch (default: 1)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the runs of an interrupted command (same options and --out): a run with "
        "a summary.json is read back, not trained again; one with a backup/ folder continues "
        "after its last finished epoch, with its weights, optimizer state and learning-rate "
        "schedule, and sees a new seeded data order from there on (default: every run starts "
        "afresh)",
    )


def make_parser():
    """The argument parser of `keras-atac` with its `train`, `compare` and `report` commands."""
    epilog = EPILOG.format(
        activations=", ".join(layers.names(include_aliases=True)),
        attentions=", ".join(layers.attention_names()),
    )
    parser = argparse.ArgumentParser(
        prog="keras-atac",
        description="Train Keras networks with ATAC, AReLU or any other activation, with the "
        "papers' data pipelines and recipes, on the backend KERAS_BACKEND names.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    common = _common_options()
    _add_train_command(commands, common, epilog)
    _add_compare_command(commands, common, epilog)
    _add_report_command(commands)
    return parser


def _add_train_command(commands, common, epilog):
    train = commands.add_parser(
        "train",
        parents=[common],
        help="train one network and write its log, summary and plot",
        description="Train one network; writes log.csv (keras.callbacks.CSVLogger), "
        "summary.json (best and final test accuracy, parameters, seconds per epoch, backend, "
        "command) and curves.png to --out.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument(
        "--activation",
        default="relu",
        help="the activation at every site of the network, any name keras_atac.layers.get "
        "accepts (default: relu)",
    )


def _add_compare_command(commands, common, epilog):
    compare = commands.add_parser(
        "compare",
        parents=[common],
        help="train the same network with several activations on the same data and budget",
        description="Train one network per activation (and per attention module of "
        "--attentions), with the same data, seed and budget; writes one folder per network "
        "(<activation> or <activation>+<attention>, as `train` does), results.md (a Markdown "
        "table), summary.json and curves.png (all curves) to --out.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compare.add_argument(
        "--activations",
        required=True,
        help="comma-separated activation names, e.g. relu,atac,arelu,swish",
    )
    compare.add_argument(
        "--attentions",
        help="comma-separated attention modules, e.g. none,se,cbam: one network per activation "
        "and module (instead of the single --attention)",
    )


def _add_report_command(commands):
    report_parser = commands.add_parser(
        "report",
        help="pool finished runs over their seeds: mean and spread of each network's accuracy",
        description="Read every single run's summary.json under the given folders (runs of "
        "train or compare, e.g. one compare per seed), pool the runs of each network "
        "(activation, attention module, mechanism) over their seeds, and write results.md "
        "(mean and sample standard deviation per network, and every run), summary.json and "
        "curves.png (every run) to --out. The runs must share model, data, epochs and recipe.",
    )
    report_parser.add_argument(
        "runs", nargs="+", type=pathlib.Path, help="folders holding finished runs"
    )
    report_parser.add_argument(
        "--out", type=pathlib.Path, required=True, help="output folder of the report"
    )


def _build_host(args, attention=None, **kwargs):
    """The host network `args.model` with the attention module `attention` ("none" for none)."""
    if attention not in (None, "none"):
        if args.model == "conv_mnist":
            raise ValueError(
                "--attention needs a residual network (cifar_resnet<depth> or resnet50_v1b). "
                f"Received: --model {args.model} --attention {attention}"
            )
        kwargs["attention"] = attention
    try:
        builder = hosts.builder(args.model)
    except ValueError as error:
        raise ValueError(f"unknown model {args.model!r} (--model): {error}") from None
    return builder(**kwargs)


def build_model(args, activation, data, attention=None):
    """The network the parsed options ask for, with `activation` at every site and the
    attention module `attention` (a name, "none" or None) in every block, for `data`.

    This is the one place where options become a model: an option that changes the network
    (e.g. an attention mechanism) is applied here.
    """
    model = _build_host(
        args,
        attention,
        num_classes=args.num_classes or data.num_classes,
        activation=activation,
        input_shape=data.input_shape,
    )
    return _with_mechanism(args, model)


def attention_list(args):
    """The attention modules the options ask for: `--attentions` split, or `[--attention]`."""
    if getattr(args, "attentions", None) is None:
        return [args.attention or "none"]
    if args.attention is not None:
        raise ValueError("use --attention or --attentions, not both")
    return [name.strip() for name in args.attentions.split(",") if name.strip()]


def run_label(activation, attention):
    """The name of one run of `compare` (its folder and curve): "relu", or "relu+se"."""
    return activation if attention == "none" else f"{activation}+{attention}"


def _with_mechanism(args, model):
    """`model` wrapped in the --mechanism, or `model` itself for "none"."""
    mechanism = MECHANISMS[args.mechanism]
    return model if mechanism is None else mechanism(model)


def _recipe(args):
    changes = {
        field: value
        for field, value in (
            ("epochs", args.epochs),
            ("batch_size", args.batch_size),
            ("learning_rate", args.learning_rate),
            ("weight_decay", args.weight_decay),
        )
        if value is not None
    }
    return training.get_recipe(args.recipe or DEFAULT_RECIPES[args.dataset], **changes)


def _check_options(args, activations, attentions):
    """Raises ValueError for options that would fail later, before any data is read."""
    for activation in activations:
        layers.layer_class(activation)
    if len(set(activations)) != len(activations):
        raise ValueError(f"an activation is listed twice: {','.join(activations)}")
    if not attentions or len(set(attentions)) != len(attentions):
        raise ValueError(f"list each attention module once: --attentions {','.join(attentions)}")
    for attention in attentions:
        if attention != "none":
            model_utils.check_attention(attention)
    # Building the network once at its default input size checks the model name and its
    # arguments before any data is read or downloaded.
    _with_mechanism(args, _build_host(args, attentions[-1], num_classes=args.num_classes or 10))
    return _recipe(args)


def _describe(args, data):
    """E.g. "cifar_resnet8 on cifar100 (coarse labels)"."""
    labels = " (coarse labels)" if data.label_mode == "coarse" else ""
    return f"{args.model} on {data.name}{labels}"


def read_log(path):
    """The epochs of a `keras.callbacks.CSVLogger` file as a `History`-like dict of lists.

    A run interrupted between the CSV row of an epoch and its backup trains that epoch again
    when resumed and appends a second row for it: the last row of each epoch is kept.
    """
    with open(path, newline="") as file:
        rows = {int(row["epoch"]): row for row in csv.DictReader(file)}
    epochs = sorted(rows)
    if epochs != list(range(len(epochs))):
        raise ValueError(f"{path} does not hold consecutive epochs from 0: {epochs}")
    columns = [key for key in (rows[0] if rows else {}) if key != "epoch"]
    return {key: [float(rows[epoch][key]) for epoch in epochs] for key in columns}


def _write_log(path, logs):
    """Writes `logs` (a dict of per-epoch lists) as a CSVLogger file, one row per epoch."""
    columns = sorted(logs)
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["epoch", *columns])
        for epoch, values in enumerate(zip(*(logs[key] for key in columns))):
            writer.writerow([epoch, *values])


def run(args, activation, data, recipe, out, command, attention="none"):
    """Trains one network, with `attention` ("none" or a module name) in every block; writes
    `log.csv`, `summary.json` and `curves.png` to `out`.

    With `args.resume`, a run that has a `summary.json` is read back instead of trained, and
    one with a backup continues from it (`keras.callbacks.BackupAndRestore` restores the
    weights, the optimizer and the epoch); the summary and the plot then cover every epoch.

    Returns:
        `(summary, logs)`: the JSON summary and the per-epoch logs (a dict of lists).
    """
    summary_path, log_path, backup = out / "summary.json", out / "log.csv", out / "backup"
    label = run_label(activation, attention)
    if args.resume and summary_path.exists():
        print(f"{label}: finished earlier, read back from {summary_path}", flush=True)
        return json.loads(summary_path.read_text()), read_log(log_path)
    if not (args.resume and log_path.exists()):
        # BackupAndRestore would otherwise restore a stale backup into a fresh run.
        shutil.rmtree(backup, ignore_errors=True)
    resuming = backup.exists()
    done = len(read_log(log_path)["loss"]) if resuming else 0
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    model = build_model(args, activation, data, attention)
    steps = data.steps_per_epoch(recipe.batch_size)
    recipe.compile(model, steps_per_epoch=steps)
    trainable = sum(int(keras.ops.size(v)) for v in model.trainable_weights)
    # Per image, at inference; a mechanism's wrapper (SSIA, GAttANet) has no MAC rule.
    macs = models.count_macs(model) if args.mechanism == "none" else None
    print(
        f"{model.name} with {run_label(activation, attention)}: {trainable:,} trainable "
        "parameters, "
        f"{len(data.x_train):,} training images, {steps} steps per epoch, "
        f"backend {keras.backend.backend()}"
        + (f"; resuming after epoch {done} of {recipe.epochs}" if resuming else ""),
        flush=True,
    )
    seconds = _fit(args, model, data, recipe, out, done=done, resuming=resuming)
    logs = read_log(log_path)
    if resuming:
        _write_log(log_path, logs)
    summary = {
        **_run_description(args, command, activation, attention, data, recipe),
        "trainable_parameters": trainable,
        "parameters": model.count_params(),
        "macs": macs,
        "num_classes": args.num_classes or data.num_classes,
        **training.summarize_history(logs),
        # Over every epoch, also those of earlier, interrupted invocations.
        "total_seconds": sum(logs["epoch_seconds"]),
        "resumed_after_epoch": done if resuming else None,
        "seconds_of_this_invocation": seconds,
        "backend": keras.backend.backend(),
        "keras_version": keras.__version__,
    }
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    training.plot_curves(
        {label: logs}, out / "curves.png", title=f"{_describe(args, data)}, {label}"
    )
    return summary, logs


def _fit(args, model, data, recipe, out, *, done, resuming):
    """Trains `model` (resuming from its backup after `done` finished epochs, or afresh) with
    the callbacks that write `out / "log.csv"` and the backup; returns the seconds it took."""
    start = time.perf_counter()
    model.fit(
        # A resumed pipeline would replay the first epochs' order: its seed moves on instead.
        data.train_dataset(batch_size=recipe.batch_size, seed=args.seed + done),
        validation_data=data.test_dataset(batch_size=recipe.batch_size),
        epochs=recipe.epochs,
        # The pipeline shuffles; Keras warns when asked to shuffle a tf.data.Dataset.
        shuffle=False,
        # The backup comes after the CSV row of each epoch: interrupted between the two, the
        # epoch is trained again and `read_log` keeps its second row.
        callbacks=[
            training.EpochTimer(),
            keras.callbacks.CSVLogger(out / "log.csv", append=resuming),
            keras.callbacks.BackupAndRestore(out / "backup"),
        ],
        verbose=args.verbose,
    )
    return time.perf_counter() - start


def _run_description(args, command, activation, attention, data, recipe):
    """The entries of a run's summary that say what was run."""
    return {
        "command": command,
        "model": args.model,
        "activation": activation,
        "attention": attention,
        "mechanism": args.mechanism,
        "dataset": data.name,
        "labels": data.label_mode,
        "data_source": data.source,
        "train_images": len(data.x_train),
        "test_images": len(data.x_test),
        "recipe": {**dataclasses.asdict(recipe), "drop_epochs": list(recipe.drop_epochs())},
        "seed": args.seed,
    }


RESULT_COLUMNS = [
    ("activation", "activation"),
    ("attention", "attention"),
    ("trainable_parameters", "trainable parameters"),
    ("best_accuracy", "best test accuracy"),
    ("best_epoch", "best epoch"),
    ("final_accuracy", "final test accuracy"),
    ("seconds_per_epoch", "seconds per epoch", ".1f"),
]


AGGREGATE_COLUMNS = [
    ("activation", "activation"),
    ("attention", "attention"),
    ("runs", "seeds"),
    ("trainable_parameters", "trainable parameters"),
    ("macs", "MACs"),
    ("best_accuracy_mean", "best test accuracy, mean"),
    ("best_accuracy_std", "std"),
    ("final_accuracy_mean", "final test accuracy, mean"),
    ("final_accuracy_std", "std"),
    ("seconds_per_epoch", "seconds per epoch", ".1f"),
]
RUN_COLUMNS = [
    ("activation", "activation"),
    ("attention", "attention"),
    ("seed", "seed"),
    ("best_accuracy", "best test accuracy"),
    ("best_epoch", "best epoch"),
    ("final_accuracy", "final test accuracy"),
    ("seconds_per_epoch", "seconds per epoch", ".1f"),
]


def _run_summaries(folders):
    """`(folder, summary)` of every single run under `folders` (a `summary.json` holding one
    run; those of `compare`, lists of runs, are skipped: their runs have their own)."""
    found = []
    for folder in folders:
        if not folder.is_dir():
            raise ValueError(f"not a folder: {folder}")
        for path in sorted(folder.rglob("summary.json")):
            summary = json.loads(path.read_text())
            if isinstance(summary, dict):
                found.append((path.parent, summary))
    if not found:
        raise ValueError(f"no run summary.json under {', '.join(map(str, folders))}")
    return found


def _macs_of_run(summary):
    """The MACs a run recorded or, for runs written before they were recorded, those of the
    network rebuilt from the summary (None for a mechanism, which has no MAC rule).

    Raises:
        ValueError: if the rebuilt network's trainable parameters differ from the run's.
    """
    if summary.get("macs") is not None or summary.get("mechanism", "none") != "none":
        return summary.get("macs")
    image_shape, num_classes = datasets.network_shape(summary["dataset"])
    host = argparse.Namespace(model=summary["model"])
    model = _build_host(
        host,
        summary.get("attention", "none"),
        num_classes=summary.get("num_classes", num_classes),
        activation=summary["activation"],
        input_shape=image_shape,
    )
    trainable = sum(int(keras.ops.size(v)) for v in model.trainable_weights)
    if trainable != summary["trainable_parameters"]:
        raise ValueError(
            f"the network rebuilt for {summary['activation']} has {trainable:,} trainable "
            f"parameters, the run {summary['trainable_parameters']:,}: its MACs are unknown"
        )
    return models.count_macs(model)


def report(folders, out):
    """Pools finished runs over their seeds: writes `results.md` (a table per network with mean
    and spread, and one per run), `summary.json` (the pooled rows) and `curves.png` (every run)
    to `out`. Returns the pooled rows."""
    runs = _run_summaries(folders)
    summaries = [{**summary, "macs": _macs_of_run(summary)} for _, summary in runs]
    rows = training.aggregate_runs(summaries)
    out.mkdir(parents=True, exist_ok=True)
    first = summaries[0]
    header = (
        f"{first['model']} on {first['dataset']}, {first['train_images']:,} training and "
        f"{first['test_images']:,} test images, {first['epochs']} epochs of recipe "
        f"{first['recipe']['name']}; backend {first['backend']}. Standard deviations are over "
        "seeds (sample, n - 1); a single seed has none.\n\n"
    )
    # A `compare` run's networks share one command: each is listed once, in order.
    commands = "\n".join(
        f"    {command}" for command in dict.fromkeys(s["command"] for s in summaries)
    )
    (out / "results.md").write_text(
        header
        + training.markdown_table(rows, AGGREGATE_COLUMNS)
        + "\nEvery run:\n\n"
        + training.markdown_table(summaries, RUN_COLUMNS)
        + f"\nCommands:\n\n{commands}\n"
    )
    (out / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    histories = {
        f"{run_label(s['activation'], s.get('attention', 'none'))}, seed {s['seed']}": read_log(
            folder / "log.csv"
        )
        for folder, s in runs
    }
    training.plot_curves(histories, out / "curves.png", title=_describe_summary(first))
    return rows


def _describe_summary(summary):
    labels = " (coarse labels)" if summary.get("labels") == "coarse" else ""
    return f"{summary['model']} on {summary['dataset']}{labels}"


def main(argv=None):
    """Runs `keras-atac` with `argv` (default: the process's arguments); returns 0 on success."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command == "report":
        try:
            rows = report(args.runs, args.out)
        except (ValueError, KeyError) as error:
            parser.error(f"report: {error}")
        print(training.markdown_table(rows, AGGREGATE_COLUMNS))
        print(f"wrote {args.out}")
        return 0
    # Before any tensor is made: the frameworks size their pools when they start.
    threads.set_threads(args.threads)
    command = shlex.join(["keras-atac", *argv])
    if args.command == "train":
        activations = [args.activation]
    else:
        activations = [name.strip() for name in args.activations.split(",") if name.strip()]
    try:
        attentions = attention_list(args)
        recipe = _check_options(args, activations, attentions)
        data = datasets.load(
            args.dataset, data_dir=args.data_dir, label_mode=args.labels, subset=args.subset
        )
        # Raises if the training set is smaller than one batch.
        data.train_dataset(batch_size=recipe.batch_size)
    except (ValueError, TypeError, FileNotFoundError) as error:
        parser.error(str(error))

    if args.command == "train":
        return _train(args, data, recipe, attentions, command)
    return _compare(args, activations, attentions, data, recipe, command)


def _mechanism_suffix(args):
    return "" if args.mechanism == "none" else f"_{args.mechanism}"


def _train(args, data, recipe, attentions, command):
    """`keras-atac train`, once the options are checked and the data is loaded."""
    (attention,) = attentions
    network = args.activation + ("" if attention == "none" else f"_{attention}")
    name = f"{args.model}_{network}{_mechanism_suffix(args)}_{args.dataset}"
    out = args.out or pathlib.Path("runs") / name
    summary, _ = run(args, args.activation, data, recipe, out, command, attention)
    print(json.dumps({k: summary[k] for k in ("best_accuracy", "final_accuracy")}))
    print(f"wrote {out}")
    return 0


def _compare(args, activations, attentions, data, recipe, command):
    """`keras-atac compare`: one run per activation and attention module, then the table."""
    name = f"{args.model}_compare{_mechanism_suffix(args)}_{args.dataset}"
    out = args.out or pathlib.Path("runs") / name
    summaries, histories = [], {}
    for activation in activations:
        for attention in attentions:
            label = run_label(activation, attention)
            summary, histories[label] = run(
                args, activation, data, recipe, out / label, command, attention
            )
            summaries.append(summary)
    table = training.markdown_table(summaries, RESULT_COLUMNS)
    drops = recipe.drop_epochs()
    header = (
        f"`{command}`\n\n{_describe(args, data)}, "
        f"{len(data.x_train):,} training and {len(data.x_test):,} test images; recipe "
        f"{recipe.name}: {recipe.epochs} epochs, batch {recipe.batch_size}, learning rate "
        f"{recipe.learning_rate:g}"
        + (f" (x{recipe.drop_factor:g} after epochs {', '.join(map(str, drops))})" if drops else "")
        + f", weight decay {recipe.weight_decay:g}; seed {args.seed}; backend "
        f"{keras.backend.backend()}.\n\n"
    )
    (out / "results.md").write_text(header + table)
    (out / "summary.json").write_text(json.dumps(summaries, indent=2) + "\n")
    training.plot_curves(histories, out / "curves.png", title=_describe(args, data))
    print("\n" + table)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
