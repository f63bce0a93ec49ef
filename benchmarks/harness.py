"""What every benchmark shares: one worker process per backend, interleaved timing, reports.

A benchmark module defines `add_arguments(parser)`, `work(args) -> dict` (run inside a worker,
with Keras imported for that worker's backend) and `report(results, output_dir) -> str` (the
Markdown, run in the parent), and ends with `harness.main(sys.modules[__name__])`. The parent
imports no framework: each worker is `python -m benchmarks.NAME --worker BACKEND ...` with
`KERAS_BACKEND=BACKEND`. `run_in_process` runs the current backend without workers. The
options the benchmarks share (input shapes, the layers measured) are parsed here too.
"""

import argparse
import json
import os
import pathlib
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUTPUT_DIR = ROOT / "docs" / "benchmarks"
BACKENDS = ("tensorflow", "jax", "torch")
# The default channels-last input shapes (N, H, W, C) of the layer benchmarks.
SHAPES = ((128, 32, 32, 16), (128, 8, 8, 64))


def interleaved_times(steps, *, warmup, repeats):
    """Seconds per call of each step, measured in rounds that call every step once (ABAB...).

    Interleaving spreads any change of the machine's load (other processes on shared cores)
    over all variants alike, so their ratios stay meaningful when absolute times drift. The
    order is reversed every other round, so no variant always follows the same neighbour.

    Args:
        steps: name -> callable that runs one step and returns once its result is computed.
        warmup: calls of each step before timing (compilation, caches, allocator pools).
        repeats: timed rounds.

    Returns:
        name -> list of `repeats` durations in seconds.
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    names = list(steps)
    times = {name: [] for name in names}
    for round_index in range(repeats):
        for name in names if round_index % 2 == 0 else reversed(names):
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    return times


def median_ms(seconds):
    return 1e3 * statistics.median(seconds)


def ratio(value, baseline):
    """`value / baseline`, or None where either is missing."""
    if value is None or baseline is None or baseline == 0:
        return None
    return value / baseline


def machine_description():
    """The machine, its load and the software versions, for the report."""
    model = platform.processor() or platform.machine()
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_average_before": [round(value, 2) for value in os.getloadavg()],
    }


def software_versions():
    """Keras and the framework of the current backend (called inside a worker)."""
    import keras

    backend = keras.backend.backend()
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend]
    return {"keras": keras.__version__, backend: __import__(module).__version__}


def _parser(module):
    name = _name(module)
    parser = argparse.ArgumentParser(
        prog=f"python -m benchmarks.{name}", description=module.__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help="comma-separated Keras backends, each run in its own process (default: all)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="threads per framework (OMP/MKL, TensorFlow's, XLA's and PyTorch's thread pools, "
        "set in each worker by keras_atac.threads.set_threads); default: the frameworks' own "
        "choice",
    )
    parser.add_argument(
        "--output-dir",
        type=pathlib.Path,
        default=OUTPUT_DIR,
        help=f"where the JSON, Markdown and plots go (default: {OUTPUT_DIR.relative_to(ROOT)})",
    )
    parser.add_argument(
        "--report-from",
        type=pathlib.Path,
        help="write the Markdown and plots of a saved JSON result again, without measuring",
    )
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--worker-output", type=pathlib.Path, help=argparse.SUPPRESS)
    module.add_arguments(parser)
    return parser


def _name(module):
    return module.__spec__.name.rpartition(".")[2]


def main(module, argv=None):
    """The command line of a benchmark module: the parent (all backends) or one worker.

    The module defines `add_arguments(parser)`, `work(args) -> dict` (run in a worker process
    whose Keras uses the worker's backend) and `report(results, output_dir) -> str`.
    """
    parser = _parser(module)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.worker:
        # The worker caps its own pools, before its framework starts them: the same
        # keras_atac.threads.set_threads as every other entry point (the parent imports none).
        from keras_atac import threads

        threads.set_threads(args.threads)
        result = {"versions": software_versions(), **module.work(args)}
        args.worker_output.write_text(json.dumps(result))
        return result
    if args.report_from:
        results = json.loads(args.report_from.read_text())
        return _write(module, results, args.output_dir)

    backends = [backend.strip() for backend in args.backends.split(",") if backend.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)}")
    results = _new_results(module, argv, args.threads)
    for backend in backends:
        print(f"[{_name(module)}] {backend} ...", flush=True)
        results["backends"][backend] = _run_worker(module, backend, argv)
    return _finish(module, results, args.output_dir)


def run_in_process(module, argv, output_dir):
    """Runs a benchmark for the backend of this process, without workers (the smoke tests).

    Returns the results, after writing the JSON, Markdown and plots into `output_dir`.
    """
    import keras

    args = _parser(module).parse_args(list(argv))
    results = _new_results(module, argv, args.threads)
    results["backends"][keras.backend.backend()] = {
        "versions": software_versions(),
        **module.work(args),
    }
    return _finish(module, results, pathlib.Path(output_dir))


def _new_results(module, argv, threads):
    return {
        "benchmark": _name(module),
        "command": shlex.join(["python", "-m", f"benchmarks.{_name(module)}", *argv]),
        "machine": {**machine_description(), "threads": threads},
        "backends": {},
        "start": time.perf_counter(),
    }


def _finish(module, results, output_dir):
    results["machine"]["load_average_after"] = [round(value, 2) for value in os.getloadavg()]
    results["seconds"] = round(time.perf_counter() - results.pop("start"), 1)
    return _write(module, results, output_dir)


def _write(module, results, output_dir):
    output_dir.mkdir(parents=True, exist_ok=True)
    name = _name(module)
    (output_dir / f"{name}.json").write_text(json.dumps(results, indent=1) + "\n")
    markdown = module.report(results, output_dir)
    (output_dir / f"{name}.md").write_text(markdown)
    print(markdown)
    return results


def _run_worker(module, backend, argv):
    with tempfile.TemporaryDirectory() as folder:
        output = pathlib.Path(folder) / "result.json"
        command = [
            sys.executable,
            "-m",
            module.__spec__.name,
            *argv,
            "--worker",
            backend,
            "--worker-output",
            str(output),
        ]
        pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        env = {
            # TensorFlow's peak memory is read from its CPU allocator's statistics, which every
            # CPU build keeps with the BFC allocator (the default one kept none on an AMD build
            # of this machine): see `backend_steps`.
            "TF_CPU_ALLOCATOR_USE_BFC": "true",
            **os.environ,
            "KERAS_BACKEND": backend,
            "PYTHONPATH": pythonpath,
        }
        completed = subprocess.run(command, env=env, cwd=ROOT)
        if completed.returncode != 0:
            raise SystemExit(f"The {backend} worker of {module.__spec__.name} failed.")
        return json.loads(output.read_text())


# Arguments shared by the benchmarks: input shapes and the layers measured.


def parse_shapes(text):
    """`"128,32,32,16;128,8,8,64"` as a list of shape tuples."""
    return [tuple(int(size) for size in shape.split(",")) for shape in text.split(";")]


def package_layer_names():
    """The factory names whose layers come from keras_atac (not Keras's own activations)."""
    # Imported here, in the worker: the parent process imports no framework.
    from keras_atac import layers

    return [
        name
        for name in layers.names()
        if layers.layer_class(name).__module__.startswith("keras_atac.")
    ]


def selected_names(text, available):
    """The names of a `--layers`-style option among `available` ("all", "none" or a list)."""
    if text == "all":
        return list(available)
    if text == "none":
        return []
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(available))
    if unknown:
        raise SystemExit(f"Unknown layer name(s) {unknown}; known: {', '.join(available)}")
    return names


def markdown_table(header, rows):
    """A Markdown table; `None` cells are written as an en dash."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join("–" if cell is None else str(cell) for cell in row) + " |")
    return "\n".join(lines)


def format_number(value, digits=2, suffix=""):
    return None if value is None else f"{value:.{digits}f}{suffix}"


def machine_markdown(results):
    """The header of every report: command, machine, load and versions."""
    machine = results["machine"]
    versions = {}
    for worker in results["backends"].values():
        versions.update(worker["versions"])
    return "\n".join(
        [
            f"Command: `{results['command']}` ({results['seconds']:.0f} s in all).",
            "",
            f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
            f"{machine['os']}, Python {machine['python']}; "
            + ", ".join(f"{package} {version}" for package, version in sorted(versions.items()))
            + ".",
            f"Threads per framework: {machine.get('threads') or 'default'}. "
            f"Load average (1, 5, 15 min) before: {machine['load_average_before']}, "
            f"after: {machine['load_average_after']}.",
        ]
    )
