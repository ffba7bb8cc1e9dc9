"""Compiler: checked rules -> state layout -> generated kernel module, cached on disk and in process.

Numba can only cache functions that live in a real source file, so the generated
module is written to the cache directory under a name derived from a hash of
everything that shapes it (the generated source, segengine's kernel sources, the
Numba and Python versions). A second process with the same rules imports the
file and Numba loads the machine code from its own cache: no recompilation.
A bad or unwritable cache entry is never fatal: we fall back to a temporary
directory and carry on.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import logging
import os
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numba
from cachetools import LRUCache

from .. import config
from ..kernels.primitives import PURE_PYTHON, true_divide
from ..rules.load import RuleSet
from ..schema.fields import EVENT_ROW
from .layout import Layout, build_layout
from .codegen import Generated, generate
from .explaingen import add_explain

__all__ = ["CompiledRules", "compile_rules", "module_source", "entry_point", "INGEST_EVENT_SIG", "INGEST_EVENT_CSIG"]

_I, _F = numba.types.int64, numba.types.float64
#: ingest_event(tab_addr, *row, index): the row is the event schema's (schema/fields.py, EVENT_ROW:
#: slot, vid, room, code, ts, item, cat, price, amount, text)
INGEST_EVENT_SIG = (_I, *({"i8": _I, "f8": _F}[c.dtype] for c in EVENT_ROW), _I)
#: the same as a C function returning int64 (segengine/runtime/_fastpath.c declares it as ``kernel_t``)
INGEST_EVENT_CSIG = _I(*INGEST_EVENT_SIG)


def entry_point(dispatcher, signature: tuple):
    """The compiled function behind a Numba dispatcher, for one fixed signature.

    Calling it skips the dispatcher's per-call type resolution of every argument (about
    half the cost of a single-event call). Callers must pass exactly these types. With
    ``NUMBA_DISABLE_JIT=1`` the "dispatcher" is the plain Python function: returned as it is.
    """
    if PURE_PYTHON:
        return dispatcher
    dispatcher.compile(signature)
    return dispatcher.overloads[signature].entry_point

log = logging.getLogger("segengine.compiler")
_modules: LRUCache = LRUCache(maxsize=64)  # key -> imported kernel module, shared by engines in a process
_lock = threading.Lock()
_cfuncs: LRUCache = LRUCache(maxsize=64)  # key -> the event kernel as a C function (engines keep theirs alive)


@dataclass
class CompiledRules:
    rules: RuleSet
    layout: Layout
    generated: Generated
    module: ModuleType
    key: str

    @property
    def path(self) -> Path:
        """The generated module's file: in the cache directory (``config.cache_dir()``), or in a
        temporary directory when the cache was unusable."""
        return Path(self.module.__file__ or "")

    def event_cfunc(self):
        """The event kernel compiled as a C function (Numba ``cfunc``), for the C fast path of
        ``Engine.ingest``: compiled or loaded from the disk cache once per process and rules.
        It replaces the Numba-callable ``ingest_event``, which is then never compiled.
        Not available with ``NUMBA_DISABLE_JIT=1`` (no machine code: engines call the Python kernel)."""
        if PURE_PYTHON:
            raise RuntimeError("no C function with NUMBA_DISABLE_JIT=1: the kernels are plain Python")
        with _lock:
            fn = _cfuncs.get(self.key)
            if fn is None:
                options = {k: v for k, v in config.KERNEL_FLAGS.items() if k not in ("cache", "nogil")}
                fn = _cfuncs[self.key] = numba.cfunc(INGEST_EVENT_CSIG, cache=True, **options)(self.module.ingest_event_c)
        return fn


def _runtime_fingerprint() -> str:
    here = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    guards = sorted(str(p.relative_to(here)) for p in (here / "guards").glob("*.py"))  # kernel helpers too
    for rel in ("kernels/primitives.py", "config.py", "compiler/codegen.py", "compiler/exprgen.py", *guards):
        h.update((here / rel).read_bytes())
    h.update(numba.__version__.encode())
    h.update(sys.version.encode())
    return h.hexdigest()


_RUNTIME = _runtime_fingerprint()


def _write_module(directory: Path, name: str, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    if path.exists() and path.read_text(encoding="utf-8") == source:
        return path
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(source)
    os.replace(tmp, path)
    return path


class _NumpyDivision(ast.NodeTransformer):
    """``a / b`` -> ``true_divide(a, b)``, keeping the line and column of the division.

    Kernels compile with Numba's numpy error model, where ``x / 0`` is ``±inf`` or ``nan``;
    a plain Python ``x / 0`` raises ``ZeroDivisionError``. With ``NUMBA_DISABLE_JIT=1`` the
    generated module runs with every division replaced (the file on disk is unchanged:
    a debugger and coverage show its lines as written)."""

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if not isinstance(node.op, ast.Div):
            return node
        call = ast.Call(ast.Name("true_divide", ast.Load()), [node.left, node.right], [])
        return ast.copy_location(call, node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        self.generic_visit(node)
        if not isinstance(node.op, ast.Div) or not isinstance(node.target, ast.Name):
            return node
        value = ast.copy_location(ast.Call(ast.Name("true_divide", ast.Load()),
                                           [ast.Name(node.target.id, ast.Load()), node.value], []), node)
        return ast.copy_location(ast.Assign([node.target], value), node)


def _import(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    if PURE_PYTHON:  # plain Python with Numba's division semantics (see _NumpyDivision)
        tree = _NumpyDivision().visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        module.__dict__["true_divide"] = true_divide
        exec(compile(ast.fix_missing_locations(tree), str(path), "exec"), module.__dict__)
    else:
        spec.loader.exec_module(module)
    return module


def _generate(rs: RuleSet) -> tuple[Layout, Generated]:
    layout = build_layout(rs)
    gen = generate(rs, layout)
    add_explain(gen, rs, layout)  # explain_values(): compiled lazily, on the first explain()
    return layout, gen


def module_source(rs: RuleSet) -> str:
    """The Python source of the kernel module for ``rs`` (what :func:`compile_rules` writes to the
    cache and imports), generated without importing or compiling anything."""
    cached = _by_rules.get(id(rs))
    if cached is not None and cached.rules is rs:
        return cached.generated.source
    return _generate(rs)[1].source


_by_rules: LRUCache = LRUCache(maxsize=64)  # RuleSet object -> CompiledRules: new engines skip codegen


def compile_rules(rs: RuleSet) -> CompiledRules:
    """Layout and kernels for ``rs``; reuses a module compiled earlier in this process or on disk.

    The same (checked, immutable) ``RuleSet`` object compiles once per process: a new
    ``Engine(rules)`` then costs only its arrays.
    """
    cached = _by_rules.get(id(rs))
    if cached is not None and cached.rules is rs:
        return cached
    layout, gen = _generate(rs)
    key = hashlib.sha256((gen.source + _RUNTIME).encode()).hexdigest()[:20]
    with _lock:
        module = _modules.get(key)
        if module is None:
            name = f"segengine_rules_{key}"
            try:
                path = _write_module(config.cache_dir(), name, gen.source)
                module = _import(path, name)
            except (OSError, SyntaxError, ImportError) as err:  # never fail because of the cache
                log.warning("segengine: compile cache unusable (%s); using a temporary directory", err)
                path = _write_module(Path(tempfile.mkdtemp(prefix="segengine-")), name, gen.source)
                module = _import(path, name)
            _modules[key] = module
        compiled = CompiledRules(rs, layout, gen, module, key)
        _by_rules[id(rs)] = compiled
    return compiled
