"""Datasets: tar shards of wavelet trees, `wala prep`, and balanced epoch orders."""

from wala.data.prep import collect_items, prepare
from wala.data.sampling import epoch_order, rank_slice
from wala.data.shards import WaveletTreeDataset

__all__ = ["collect_items", "prepare", "epoch_order", "rank_slice", "WaveletTreeDataset"]
