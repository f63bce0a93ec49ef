"""Benchmarks of keras_atac against ReLU and against the same formulas in plain framework code.

Each benchmark is a module run as `python -m benchmarks.NAME` from the repository root. It starts
one worker process per Keras backend (the backend is fixed when Keras is imported), times the
compared variants interleaved (ABAB...) in that process, and writes a JSON file, a Markdown table
and, where it has one, a plot under `docs/benchmarks/`:

- `layer_cost`: forward+backward time and peak memory of every layer of the package, as ratios
  to `ReLU` and to a plain PyTorch / JAX / TensorFlow implementation of the same formula;
- `train_step`: training throughput of `cifar_resnet(20)` with each activation, next to the
  ratio of MACs;
- `scaling`: how ATAC's cost grows with the channel count and the resolution;
- `folded_inference`: inference time of `keras_atac.fold_batchnorm(model)` against the model.

Benchmarks are not tests, and they may import the frameworks; the library code may not.
"""
