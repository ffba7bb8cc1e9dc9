"""Numba kernels only: arrays in, arrays out. Generated rule kernels import :mod:`.runtime`."""

from .cachelock import install as _install_cache_lock

_install_cache_lock()  # before any kernel compiles: see cachelock.py
