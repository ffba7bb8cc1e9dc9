"""Build of the optional C fast path (segengine/runtime/_fastpath.c); everything else is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds, and ``Engine.ingest``
runs the same checks in Python (slower, same results).

Editable installs (``pip install -e .``) use setuptools' "compat" mode: a static ``.pth``
entry for the project directory, which type checkers (mypy, pyright) follow. The default
mode for a flat layout like ours is an import hook they cannot see (mypy then reports
``Cannot find implementation or library stub for module named "segengine"``).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("segengine.runtime._fastpath", ["segengine/runtime/_fastpath.c"], optional=True,
                             extra_compile_args=["-O2"])],
      options={"editable_wheel": {"mode": "compat"}})
