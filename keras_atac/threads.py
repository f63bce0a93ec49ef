"""One `--threads` setting for every framework's CPU thread pools.

TensorFlow, JAX (XLA) and PyTorch each size their pools to the machine's cores. On a machine
shared with other processes (a laptop running other jobs, a cluster node with several jobs, a
CI runner) those threads wait on one another: a PyTorch step that takes 31-36 ms with one
thread took 47-1630 ms with two when one other process kept a core busy (OpenMP threads spin,
then stall on the busy core). `set_threads(n)` caps every pool at `n`; use the number of cores
the job really has (a cluster scheduler's allocation, e.g. `$SLURM_CPUS_PER_TASK`), and 1 when
the machine is busy.

It must run before the frameworks start their pools: after `import keras` (which does not
start them) and before the first tensor operation, model or dataset is built.
"""

import os
import sys

from keras_atac.api_export import keras_atac_export
from keras_atac.utils import checks

# Read by the OpenMP and BLAS runtimes when they first start, and by TensorFlow when it creates
# its runtime (tf.data pipelines included, whatever the Keras backend).
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)

THREADS_HELP = (
    "cap every framework's CPU thread pools (TensorFlow, JAX/XLA, PyTorch, OpenMP) at N "
    "threads; on a shared or busy machine or a cluster node, use the cores the job owns "
    "(1 when other processes compete for the cores) (default: the frameworks' own, one per "
    "core)"
)


@keras_atac_export("keras_atac.threads.add_threads_argument")
def add_threads_argument(parser):
    """Adds `--threads N` to an `argparse` parser; pass its value to `set_threads`."""
    parser.add_argument("--threads", type=int, metavar="N", help=THREADS_HELP)
    return parser


@keras_atac_export("keras_atac.threads.set_threads")
def set_threads(threads):
    """Caps the CPU thread pools of TensorFlow, JAX and PyTorch at `threads` threads each.

    Sets the environment variables the runtimes read when they start (`OMP_NUM_THREADS`,
    `MKL_NUM_THREADS`, `OPENBLAS_NUM_THREADS`, `TF_NUM_INTRAOP_THREADS`,
    `TF_NUM_INTEROP_THREADS`, and `XLA_FLAGS` with `--xla_cpu_multi_thread_eigen=false
    intra_op_parallelism_threads=N` for JAX), and configures the frameworks that are already
    imported (`tf.config.threading`, `torch.set_num_threads`, `torch.set_num_interop_threads`).

    Args:
        threads: a positive integer, or None to leave every setting alone.

    Raises:
        ValueError: if `threads` is not a positive integer.
        RuntimeError: if a framework already started its pools (it ran an operation), so the
            cap could not take effect; call this earlier.
    """
    if threads is None:
        return
    checks.check_positive_number("threads", threads, integer=True)
    n = str(int(threads))
    for variable in THREAD_VARIABLES:
        os.environ[variable] = n
    xla_flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = (
        f"{xla_flags} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={n}"
    ).strip()

    too_late = []
    if "jax" in sys.modules:
        from jax._src import xla_bridge

        # XLA_FLAGS is read once, when JAX creates its CPU client.
        if xla_bridge.backends_are_initialized():
            too_late.append("JAX")
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(int(n))
            tf.config.threading.set_inter_op_parallelism_threads(int(n))
        except RuntimeError:  # "... cannot be modified after initialization"
            too_late.append("TensorFlow")
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(int(n))
        if torch.get_num_interop_threads() != int(n):
            try:
                torch.set_num_interop_threads(int(n))
            except RuntimeError:  # only possible before the first inter-op parallel work
                too_late.append("PyTorch (inter-op pool)")
    if too_late:
        raise RuntimeError(
            f"set_threads({threads}) came too late for {', '.join(too_late)}: its thread "
            "pools were already started. Call it before the first operation, model or "
            "dataset is created, right after parsing the command line."
        )
