"""Helpers shared by the whole package, not by the layers alone.

- `checks`: argument checks (positive numbers, ranges, bools, choices, odd kernel sizes) and
  the data format (`standardize_data_format`, `channel_axis`, `spatial_axes`), used by the
  layers, the host networks, the data loaders, the recipes and the thread settings alike.
"""
