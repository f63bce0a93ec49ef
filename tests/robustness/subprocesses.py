"""Runs the scripts of `workers/` in fresh Python processes under a chosen backend.

Device counts, logical devices and process groups must be set up before a framework starts,
and a backend is chosen once per process, so these checks run outside the pytest process.
"""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import keras
import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKERS = Path(__file__).resolve().parent / "workers"


def run_worker(script, *args, backend=None, env=None, timeout=600):
    """Runs `workers/<script>` with `args` and returns its last line of output, read as JSON.

    Args:
        script: the file name of the worker.
        *args: command-line arguments (converted with `str`).
        backend: the Keras backend of the new process; defaults to the current one.
        env: further environment variables.
        timeout: seconds before the worker is killed and the test fails.
    """
    environment = {
        **os.environ,
        "KERAS_BACKEND": backend or keras.backend.backend(),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        # The worker shares the cores with the other pytest workers: OpenMP threads (PyTorch's
        # above all) spin and stall on a busy core, so one torch worker took 73 s instead of
        # about 15 s. The workers check results, not speed; one OpenMP thread each.
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        **(env or {}),
    }
    # A session of its own, so that a timeout also ends the processes the worker started.
    process = subprocess.Popen(
        [sys.executable, str(WORKERS / script), *map(str, args)],
        env=environment,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"{script} ran longer than {timeout} s:\n{stderr[-6000:]}")
    if process.returncode != 0:
        pytest.fail(f"{script} exited with {process.returncode}:\n{stderr[-6000:]}")
    return json.loads(stdout.strip().splitlines()[-1])


def free_port():
    """A TCP port on localhost that is free now (for a process group's rendezvous)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
