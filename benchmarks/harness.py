"""What every benchmark shares: one worker process per backend, interleaved timing, reports.

A benchmark module defines `add_arguments(parser)`, `work(args) -> dict` (run inside a worker,
with Keras imported for that worker's backend) and `report(results, output_dir) -> str` (the
Markdown, run in the parent), and calls `harness.main(...)`. The parent imports no framework:
each worker is `python -m benchmarks.NAME --worker BACKEND ...` with `KERAS_BACKEND=BACKEND`.
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


def main(name, description, add_arguments, work, report, argv=None):
    """Parses the command line and runs either the parent (all backends) or one worker."""
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{name}", description=description)
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help="comma-separated Keras backends, each run in its own process (default: all)",
    )
    parser.add_argument(
        "--output-dir",
        type=pathlib.Path,
        default=OUTPUT_DIR,
        help=f"where the JSON, Markdown and plots go (default: {OUTPUT_DIR.relative_to(ROOT)})",
    )
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--worker-output", type=pathlib.Path, help=argparse.SUPPRESS)
    add_arguments(parser)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)

    if args.worker:
        result = {"versions": software_versions(), **work(args)}
        args.worker_output.write_text(json.dumps(result))
        return result

    backends = [backend.strip() for backend in args.backends.split(",") if backend.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)}")
    results = {
        "benchmark": name,
        "command": shlex.join(["python", "-m", f"benchmarks.{name}", *argv]),
        "machine": machine_description(),
        "backends": {},
    }
    start = time.perf_counter()
    for backend in backends:
        print(f"[{name}] {backend} ...", flush=True)
        results["backends"][backend] = _run_worker(name, backend, argv)
    results["machine"]["load_average_after"] = [round(value, 2) for value in os.getloadavg()]
    results["seconds"] = round(time.perf_counter() - start, 1)

    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / f"{name}.json").write_text(json.dumps(results, indent=1) + "\n")
    markdown = report(results, args.output_dir)
    (args.output_dir / f"{name}.md").write_text(markdown)
    print(markdown)
    return results


def _run_worker(name, backend, argv):
    with tempfile.TemporaryDirectory() as folder:
        output = pathlib.Path(folder) / "result.json"
        command = [
            sys.executable,
            "-m",
            f"benchmarks.{name}",
            *argv,
            "--worker",
            backend,
            "--worker-output",
            str(output),
        ]
        pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": pythonpath}
        completed = subprocess.run(command, env=env, cwd=ROOT)
        if completed.returncode != 0:
            raise SystemExit(f"The {backend} worker of benchmarks.{name} failed.")
        return json.loads(output.read_text())


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
            f"Load average (1, 5, 15 min) before: {machine['load_average_before']}, "
            f"after: {machine['load_average_after']}.",
        ]
    )
