"""Build of the optional C fast path (segengine/_fastpath.c); everything else is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds, and ``Engine.ingest``
runs the same checks in Python (slower, same results).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("segengine._fastpath", ["segengine/_fastpath.c"], optional=True,
                             extra_compile_args=["-O2"])])
