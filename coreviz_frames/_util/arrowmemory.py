"""The Arrow memory pool the package builds its tables in: :func:`table_pool`.

pyarrow allocates from mimalloc by default on Linux. mimalloc commits its arenas eagerly
and lets Linux back them with transparent huge pages: where the kernel must compact memory
to find a free 2 MiB page (``/sys/kernel/mm/transparent_hugepage/defrag`` is ``madvise``,
the kernel's default), a process whose Arrow memory grows waits in the kernel at each new
page. ``to_tables`` grows by its whole result: on a 2-core machine, flattening 20,000 media
took 1.0 s of system time with mimalloc against 0.45 s with jemalloc, and the call ran
12-20% longer. The buffers the package allocates itself (pages read by pyarrow, flattened
columns, DataFrames) therefore come from jemalloc where pyarrow has it, else from the
system allocator. ``ARROW_DEFAULT_MEMORY_POOL`` set in the environment is a choice, and
is kept: then the pool is pyarrow's default (the one that variable names).

The pool is chosen once per process, at first use. Arrow buffers remember the pool they
came from: tables built here mix freely with any others.

Example:
    >>> import pyarrow as pa
    >>> pool = table_pool()
    >>> pool.backend_name in {"jemalloc", "system", pa.default_memory_pool().backend_name}
    True
    >>> pa.array([1, 2, 3], memory_pool=pool).to_pylist()
    [1, 2, 3]
"""

from __future__ import annotations

import functools
import os

import pyarrow as pa

__all__ = ["table_pool"]

#: The environment variable by which pyarrow's default pool is chosen.
POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"
#: Backends whose arenas ask for transparent huge pages (see the module docstring).
_HUGE_PAGE_BACKENDS = frozenset({"mimalloc"})


@functools.cache
def table_pool() -> pa.MemoryPool:
    """The memory pool for the Arrow buffers the package builds (see the module docstring):
    pyarrow's default unless that is mimalloc left unchosen, then jemalloc (or the system
    allocator where pyarrow is built without jemalloc).

    Example:
        >>> table_pool() is table_pool()  # chosen once
        True
    """
    default = pa.default_memory_pool()
    if os.environ.get(POOL_VARIABLE) or default.backend_name not in _HUGE_PAGE_BACKENDS:
        return default
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without jemalloc (Windows wheels)
        return pa.system_memory_pool()
