"""An on-disk cache for pynndescent's and UMAP's numba kernels, so a new process does not recompile them all.

pynndescent and UMAP mark only some of their kernels ``cache=True``; the rest (NN-descent's
candidate building, heap updates and sorting; UMAP's neighbour smoothing, membership strengths and
layout epochs) compile again in every process, and a kNN graph that takes seconds to build can
take a minute to compile first. :func:`persist_pynndescent_kernels` and
:func:`persist_umap_kernels` give those kernels numba's own disk cache, in ``<dataaudit
cache>/numba`` (``NUMBA_CACHE_DIR`` when set).

A kernel given another compiled function as an argument (pynndescent passes the distance that
way) is cached too, under the function's module, name and code: numba's own key holds the
function object's type, another one in every process, so its entry would never match again. A
kernel that calls ``numba.get_num_threads()`` (``nn_descent`` and its inner loop) still compiles
each time: its code holds a process-specific pointer ("dynamic globals"), which numba refuses
to cache. About 5 s of compiling per process remain of about 14.

This reaches into numba's caching classes (``numba.core.caching``); if they change shape the
function logs that and does nothing, and kernels simply compile as before.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import sys
from functools import cache
from pathlib import Path

logger = logging.getLogger(__name__)

#: Set to ``off`` to leave pynndescent's and UMAP's kernels as they were made.
KERNEL_CACHE_ENV = "DATAAUDIT_KERNEL_CACHE"


def kernel_cache_dir() -> Path:
    """``NUMBA_CACHE_DIR`` when the user set one, else ``<dataaudit cache>/numba``."""
    from dataaudit.runtime import default_cache_dir

    configured = os.environ.get("NUMBA_CACHE_DIR", "")
    return Path(configured) if configured else default_cache_dir() / "numba"


def persist_pynndescent_kernels() -> int:
    """Give every loaded pynndescent kernel that lacks one a disk cache; how many got one.

    Once per process (later calls return the first answer), before pynndescent's first use:
    a kernel already compiled in this process keeps its code either way.
    """
    return _persist("pynndescent")


def persist_umap_kernels() -> int:
    """The same for UMAP's kernels (about 5 s of compiling per process), before UMAP's first use."""
    return _persist("umap")


@cache
def _persist(package: str) -> int:
    if os.environ.get(KERNEL_CACHE_ENV, "").strip().lower() in {"off", "0", "false", "no"}:
        return 0
    import importlib

    importlib.import_module(package)  # loads the kernel modules
    try:
        cache_class = _cache_class(kernel_cache_dir())
        from numba.core.caching import NullCache
        from numba.core.dispatcher import Dispatcher
    except (ImportError, AttributeError, TypeError) as error:  # numba's internals moved
        logger.debug("pynndescent kernels stay uncached: %s", error)
        return 0
    enabled = 0
    for name, module in list(sys.modules.items()):
        if name != package and not name.startswith(f"{package}."):
            continue
        for kernel in list(vars(module).values()):
            if isinstance(kernel, Dispatcher) and isinstance(kernel._cache, NullCache):
                try:
                    kernel._cache = cache_class(kernel.py_func)
                except (OSError, RuntimeError) as error:  # no writable cache folder
                    logger.debug("kernel %s stays uncached: %s", kernel.py_func.__qualname__, error)
                    return enabled
                enabled += 1
    logger.debug("disk cache for %d %s kernels in %s", enabled, package, kernel_cache_dir())
    return enabled


def _cache_class(directory: Path):
    """numba's ``FunctionCache``, located in ``directory``, skipping what it could never reuse."""
    from numba.core import sigutils, types
    from numba.core.caching import CompileResultCacheImpl, FunctionCache, UserProvidedCacheLocator

    class Locator(UserProvidedCacheLocator):
        def __init__(self, py_func, py_file):
            super().__init__(py_func, py_file)
            self._cache_path = os.path.join(directory, self.get_suitable_cache_subpath(py_file))

        @classmethod
        def from_function(cls, py_func, py_file):
            # Past UserProvidedCacheLocator's, which answers only when NUMBA_CACHE_DIR is set.
            return super(UserProvidedCacheLocator, cls).from_function(py_func, py_file)

    class Impl(CompileResultCacheImpl):
        _locator_classes = [Locator]

    def stable(arg):
        """A compiled function passed as an argument, named by its module, name, bytecode and its
        file's size and time; every other type as it is. The type itself holds the function
        object, another one in every process, so a key holding it would never match again."""
        if not isinstance(arg, types.Dispatcher):
            return arg
        function = arg.dispatcher.py_func
        code = hashlib.sha256(function.__code__.co_code).hexdigest()
        try:
            stat = os.stat(function.__code__.co_filename)
            stamp = (stat.st_size, stat.st_mtime_ns)
        except OSError:
            stamp = None
        return ("compiled function", function.__module__, function.__qualname__, code, stamp)

    def reusable(sig) -> bool:
        # A function defined inside another has no stable name to be found by.
        return all("<locals>" not in arg.dispatcher.py_func.__qualname__
                   for arg in sigutils.normalize_signature(sig)[0] if isinstance(arg, types.Dispatcher))

    class KernelCache(FunctionCache):
        _impl_class = Impl

        def _index_key(self, sig, codegen):
            args, return_type = sigutils.normalize_signature(sig)
            if not any(isinstance(arg, types.Dispatcher) for arg in args):
                return super()._index_key(sig, codegen)  # numba's own key, shared with older entries
            return super()._index_key((tuple(stable(arg) for arg in args), return_type), codegen)

        def load_overload(self, sig, target_context):
            if not reusable(sig):
                return None
            try:
                loaded = super().load_overload(sig, target_context)
                if loaded is None:
                    return None
                # The cached signature names the saving process's function objects; the
                # dispatcher files the overload, and callers here call it, by the types asked for.
                args = tuple(sigutils.normalize_signature(sig)[0])
                described = copy.copy(loaded.fndesc)
                described.argtypes = args
                return loaded._replace(signature=loaded.signature.replace(args=args), fndesc=described)
            except (AttributeError, TypeError, ValueError) as error:  # numba's internals moved
                logger.debug("kernel %s compiles: its cache entry does not load (%s)", self._name, error)
                return None

        def save_overload(self, sig, data):
            # has_dynamic_globals: numba would refuse too, but with a warning in every process.
            if reusable(sig) and not data.library.has_dynamic_globals:
                try:
                    super().save_overload(sig, data)
                except Exception as error:  # noqa: BLE001 - a cache that cannot save must not stop an audit
                    logger.debug("kernel %s stays uncached: %s", self._name, error)

    return KernelCache
