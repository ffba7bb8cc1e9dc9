"""Every Numba flag in one place (stumpy's config.py pattern), and where compiled rules are cached."""

from __future__ import annotations

import os
from pathlib import Path

#: Flags for every kernel: no bounds checks on the hot path; numpy error model so x/0 is inf, not an
#: exception. The GIL is kept on single-event calls: releasing and retaking it costs more than the call.
KERNEL_FLAGS = {"cache": True, "nogil": False, "boundscheck": False, "error_model": "numpy", "fastmath": False}
#: Batch kernels run long enough for releasing the GIL to pay: other threads may run meanwhile.
BATCH_FLAGS = {**KERNEL_FLAGS, "nogil": True}


def cache_dir() -> Path:
    """Directory for generated rule kernels: ``$SEGENGINE_CACHE_DIR`` or ``~/.cache/segengine``."""
    env = os.environ.get("SEGENGINE_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "segengine"


def c_fast_path_enabled() -> bool:
    """Whether engines use the C fast path of ``ingest`` when it is built (``segengine.runtime._fastpath``).
    ``SEGENGINE_PURE_PYTHON=1`` turns it off: the same checks then run in Python."""
    return os.environ.get("SEGENGINE_PURE_PYTHON", "") in ("", "0")
