"""How many threads the BLAS library behind numpy may use for retrieval's products.

Retrieval multiplies small matrices (MMR's candidate x candidate cosines, the candidates'
scores): OpenBLAS would split them over every core, and on a loaded machine waking those
threads costs more than the product itself (measured: a 50 x 50 product p50 0.04 ms, p95 37.7
ms with the default threads; p95 0.036 ms with one thread). ``retrieval.blas_threads`` (default
1) caps it once per process, through ``threadpoolctl``; ``0`` leaves the library's choice. The
cap is process-wide: it also applies to the host application's own numpy calls.
"""

from __future__ import annotations

import logging

__all__ = ["limit_blas_threads"]

log = logging.getLogger(__name__)
_applied: int | None = None


def limit_blas_threads(threads: int) -> None:
    """Cap the BLAS threads at ``threads`` (0: leave them); once per process per value."""
    global _applied
    if threads <= 0 or threads == _applied:
        return
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - a dependency
        log.debug("threadpoolctl is missing: BLAS threads left as they are")
        return
    threadpool_limits(limits=threads, user_api="blas")
    _applied = threads
