"""Numba kernels only: arrays in, arrays out. Generated rule kernels import :mod:`.runtime`."""
