"""An int8 copy of the vector index for a cheaper first pass, with exact float32 re-scoring.

The float32 scan of a large index is memory-bound: 100K x 384 float32 is 154 MB read per query
(and hybrid scans twice). The copy holds each row as int8 with its own scale (a quarter of the
bytes) and is scanned by ONNX Runtime's integer matrix product (``MatMulInteger``: VNNI / AMX
where the CPU has them); numpy has no fast int8 product. The result is **exact**: each approximate
score comes with a bound on its error, every row that could reach the top ``k`` by that bound is
re-scored in float32 from the index's own matrix, and the top ``k`` of those is returned.

The bound. A row x is stored as ``s * xq + e`` (xq the int8 row, s its scale, e the rounding
residual) and the query as ``t * qq + f``; then ``x.q = s t (xq.qq) + s (xq.f) + e.q``, and by
Cauchy-Schwarz the last two terms are at most ``G ||f|| + H ||q||`` with G the largest
``s ||xq||`` and H the largest ``||e||`` over the rows (each row's own would be tighter; the
maxima keep the per-query work to the integer product). With E that bound (plus a float32
margin), the true k-th best score is at least the k-th best approximate score less E, so a row
whose approximate score is below that less another E cannot be in the top k.

The query is quantised to 7 bits (|qq| <= 63): x86 CPUs without VNNI run u8 x s8 products with
an instruction that adds pairs of products in int16 and saturates (255 x 127 x 2 > 32767);
255 x 63 x 2 fits, so the integer product is exact on every CPU. Its precision is taken back by
a second column: the residual of the first, quantised again (``t / 126`` per step), so ``||f||``
is about 1/126 of a one-column query's. Where the product does not saturate (VNNI, AMX), the
rows are its int8 operand and the query its uint8 one, which ONNX Runtime runs faster
(``QuantizedRows``); the integers are the same either way.

Where the rows are the product's right operand, they are also kept in an ONNX Runtime session
of their own (``_packed_session``), in which they are a constant: ONNX Runtime packs them into
its kernel's layout once, when the session is built, instead of at every product (at 100K x 384
the product took 2.1-2.8 against 5.9 ms, at 10K 0.06 against 0.21 ms; 2026-12-06, Zen 4). The
session is built on a background thread at a scan (60-75 ms at 100K, the GIL mostly released),
and again at a scan once the rows appended since (scanned as before, ``_tail``) reach an eighth
of it; a row replaced in it drops it until the next build. The integers are the same either way.

Without onnxruntime (the ``local`` extra) :func:`available` is False and the index scans float32.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import importlib.util
import logging
import threading
import time
from typing import Any, cast

import numpy as np
import numpy.typing as npt

__all__ = [
    "QuantizedRows",
    "available",
    "best",
    "column_room",
    "packed_scan_model",
    "with_room",
]

log = logging.getLogger(__name__)
F32 = npt.NDArray[np.float32]
_MARGIN = 1e-4  # float32 rounding of the scores and the bound, with room to spare
_QMAX = 63  # the query's int8 range (see the module docstring: no int16 saturation)
# Spare room kept when the transposed copy grows: each scan reads it too (its scores are cut
# off), so it is small; an append copies the copy only when the room runs out.
_CODES_GROWTH = 1.0625
_ROWS_GROWTH = 1.5  # the other arrays: spare rows are not scanned (memory only once written)
_MIN_ROOM = 1024
# the packed rows' session is built again once the rows appended after it reach this share of
# it (at least ``_TAIL_MIN``): those are scanned unpacked, as the whole copy was before
_TAIL_SHARE = 8
_TAIL_MIN = 1024
_session: Any = None
_session_lock = threading.Lock()
# one thread builds every packed session, in turn: one heap arena for their buffers (a new
# thread per build left each build's freed buffers in its own arena: 418 against 315 MB at 100K)
_builder = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="slm-int8-pack")


def available() -> bool:
    """Whether onnxruntime (and so the int8 scan) can be used in this process."""
    return importlib.util.find_spec("onnxruntime") is not None


def best(scores: F32, k: int) -> npt.NDArray[np.intp]:
    """The positions of the ``k`` highest scores (1 <= k <= len), highest first, equal scores
    in position order: every scan (float32, int8 with re-scoring, a shortlist) breaks ties
    between equal vectors alike, so they agree on the pseudo-relevance feedback too."""
    n = scores.shape[0]
    kth = scores[np.argpartition(scores, n - k)[n - k]]
    above = np.flatnonzero(scores > kth)
    tied = np.flatnonzero(scores == kth)[: k - above.shape[0]]
    top = np.concatenate([above, tied])
    return top[np.argsort(-scores[top], kind="stable")]


# The ONNX model of that product: (A - 128) @ B, A uint8 [n, d] (the rows), B int8 [d, c] (the
# query's columns), Y int32 [n, c]; opset 13, IR version 7 (any onnxruntime reads it).
# Serialised with the onnx package (a test builds it again and compares) and kept as bytes:
# importing onnx took ~1.8 s, on a first query.
MATMUL_INTEGER_MODEL = (
    b'\x08\x07:f\n\x1e\n\x01A\n\x01B\n\x04zero\x12\x01Y"\rMatMulInteger\x12\x04scan*\x0b'
    b"\x10\x02B\x04zeroJ\x01\x80Z\x0f\n\x01A\x12\n\n\x08\x08\x02\x12\x04\n\x00\n\x00Z\x0f\n\x01B\x12"
    b"\n\n\x08\x08\x03\x12\x04\n\x00\n\x00b\x0f\n\x01Y\x12\n\n\x08\x08\x06\x12\x04\n\x00\n\x00B\x04"
    b"\n\x00\x10\r"
)


def _scan_session(model: bytes, initializers: dict[str, npt.NDArray[Any]] | None = None) -> Any:
    """An ONNX Runtime session of one of the product's models, on one intra-op thread (like
    numpy's BLAS for retrieval: ``threads.py``), with ``initializers`` given from memory."""
    ort: Any = importlib.import_module("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    if initializers:
        names = list(initializers)
        values = [ort.OrtValue.ortvalue_from_numpy(initializers[n]) for n in names]
        options.add_external_initializers(names, values)
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _matmul_integer() -> Any:
    """One ONNX Runtime session computing ``(A - 128) @ B`` for uint8 A and int8 B, in int32."""
    global _session
    with _session_lock:
        if _session is None:
            _session = _scan_session(MATMUL_INTEGER_MODEL)
        return _session


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


# MATMUL_INTEGER_MODEL's graph with B a (dimensions x count) int8 initializer held outside the
# model (``add_external_initializers``), so that ONNX Runtime packs it once: the parts before
# and after that initializer, as the onnx package serialises them (a test compares)
_PACKED_HEAD = (
    b'\n\x1e\n\x01A\n\x01B\n\x04zero\x12\x01Y"\rMatMulInteger\x12\x04scan'
    b"*\x0b\x10\x02B\x04zeroJ\x01\x80"
)
_PACKED_TAIL = (
    b"Z\x0f\n\x01A\x12\n\n\x08\x08\x02\x12\x04\n\x00\n\x00"
    b"b\x0f\n\x01Y\x12\n\n\x08\x08\x06\x12\x04\n\x00\n\x00"
)


def packed_scan_model(dimensions: int, count: int) -> bytes:
    """The ONNX model of ``(A - 128) @ B`` with B an int8 (dimensions x count) initializer
    given from memory (external data named ``rows``); A and Y as in the dynamic model."""
    rows = (
        _varint(1 << 3)
        + _varint(dimensions)  # dims
        + _varint(1 << 3)
        + _varint(count)
        + b"\x10\x03"  # data type int8
        + _field(8, b"B")  # name
        + _field(13, _field(1, b"location") + _field(2, b"rows"))  # external data
        + b"p\x01"  # data location: external
    )
    graph = _PACKED_HEAD + _field(5, rows) + _PACKED_TAIL
    return b"\x08\x07" + _field(7, graph) + b"B\x04\n\x00\x10\r"


def _packed_session(source: npt.NDArray[np.int8]) -> Any:
    """A session computing ``(A - 128) @ source`` with ``source`` packed in it (it must outlive
    the session: ONNX Runtime's contract for initializers given from memory)."""
    return _scan_session(packed_scan_model(source.shape[0], source.shape[1]), {"B": source})


def with_room(
    array: npt.NDArray[Any], used: int, needed: int, growth: float, axis: int = 0
) -> npt.NDArray[Any]:
    """``array`` if it holds ``needed`` entries along ``axis``, else a larger one (``growth``
    times, at least ``needed`` and ``_MIN_ROOM`` more) with its first ``used`` entries copied
    and zeros after them: appending one row at a time then copies each row a bounded number of
    times, instead of the whole array per append (1.75 ms at 10K x 384 float32, 23.5 ms at
    100K). Along axis 1 (the transposed int8 copy, whose row length is the product's stride)
    the size is a multiple of 64 that is not one of 2,048 (:func:`column_room`)."""
    if array.shape[axis] >= needed:
        return array
    size = max(needed, int(array.shape[axis] * growth), used + _MIN_ROOM)
    shape = list(array.shape)
    shape[axis] = size if axis == 0 else column_room(size)
    bigger = np.zeros(shape, dtype=array.dtype)  # pages not written take no memory
    if axis == 0:
        bigger[:used] = array[:used]
    else:
        bigger[:, :used] = array[:, :used]
    return bigger


def column_room(size: int) -> int:
    """The row length to give the transposed copy for ``size`` columns: a multiple of 64 (its
    rows start on cache lines) and not of 2,048 (rows a multiple of 2,048 bytes apart fall in
    the same cache sets). ONNX Runtime's product over 384 x n int8, 2026-12-06 (Zen 4): at 10K
    0.20 ms for 10,000 / 10,048 / 10,112 columns, 0.42 ms for 10,240; at 100K 5.0-5.6 ms for
    100,000, 4.0-5.4 for 100,032 / 100,096 / 106,240, 6.2-7.3 for 106,248 (8 past a multiple
    of 64), 7.7-8.1 for 102,400 and 106,496 (multiples of 4,096)."""
    size = -(-size // 64) * 64
    while size % 2048 == 0:
        size += 64
    return size


def _quantise(block: F32) -> tuple[npt.NDArray[np.int8], F32, float, float]:
    """Rows as int8, their scales, and the largest ``s ||xq||`` and ``||e||``."""
    peak = np.abs(block).max(axis=1)
    scale = np.where(peak > 0, peak / 127, 1.0).astype(np.float32)
    ints = np.clip(np.rint(block / scale[:, None]), -127, 127)
    residual = block.astype(np.float64) - scale[:, None].astype(np.float64) * ints
    g = float((scale.astype(np.float64) * np.linalg.norm(ints, axis=1)).max())
    h = float(np.linalg.norm(residual, axis=1).max())
    return ints.astype(np.int8), scale, g, h


def _unsigned(ints: npt.NDArray[np.int8]) -> npt.NDArray[np.uint8]:
    """int8 values + 128 as uint8 (the product's zero point is 128)."""
    return cast("npt.NDArray[np.uint8]", ints.view(np.uint8) ^ np.uint8(0x80))


def rows_on_the_right() -> bool:
    """Whether this CPU's int8 product takes the rows as its int8 operand (``QuantizedRows``):
    where ONNX Runtime's u8 x s8 product does not saturate (``embeddings.onnx_runtime
    .cpu_variant`` is ``s8``: VNNI, AMX, other architectures)."""
    from ..embeddings.onnx_runtime import cpu_variant

    return cpu_variant() == "s8"


class QuantizedRows:
    """The int8 rows of an index's matrix, kept in step by the index (under its lock).

    Two layouts of the same product (identical integers): ``transposed`` (the default where
    :func:`rows_on_the_right`) keeps the rows as an int8 (dimensions x n) matrix, the right
    operand, with the query's two columns as the uint8 left one (2 x dimensions, 7-bit values
    + 128); otherwise the rows are the uint8 left operand (n x dimensions, values + 128) and
    the query the int8 right one. ONNX Runtime's kernels work on blocks of 16 right-operand
    columns, so a 2-column right operand wastes most of each block: the transposed product
    took 0.30 against 0.47 ms at 10K x 384 and 6.1 against 11.1 ms at 100K (AMD EPYC Zen 4,
    AVX-512 VNNI, 2026-12-06). It needs a product that does not saturate: its left values
    reach 191 against the rows' 127, and 191 x 127 x 2 overflows the 16-bit pair sums of
    CPUs without VNNI (module docstring), which keep the other layout.

    Both arrays keep room to grow (:func:`with_room`): an append copies them only when the
    room runs out. The transposed copy's rows are padded to a length that suits the product
    (:func:`column_room`); the padding and the room are zero columns that every scan reads
    and whose scores are cut off, so the transposed room is kept small (1/16)."""

    def __init__(self, dimensions: int, transposed: bool | None = None, pack: bool = True) -> None:
        self.transposed = rows_on_the_right() if transposed is None else transposed
        shape = (dimensions, 0) if self.transposed else (0, dimensions)
        # int8 (dimensions x capacity) rows on the right; uint8 (capacity x dimensions) rows on
        # the left; the first ``len(self)`` rows (columns) are the index's, the rest room to grow
        # (emptied once the rows are packed: they are then ``_source`` and ``_tail``)
        self._codes: npt.NDArray[np.integer[Any]] = np.zeros(
            shape, dtype=np.int8 if self.transposed else np.uint8
        )
        self._scale = np.zeros(0, dtype=np.float32)
        self._count = 0
        self._g = 0.0  # the largest s ||xq||
        self._h = 0.0  # the largest ||e||
        self.rescored = 0  # rows re-scored by the last top_k (tests, benchmarks)
        # Packed rows (transposed layout only, module docstring): once a build is in place, the
        # first rows are ``_source`` (dimensions x rows, contiguous), packed in ``_session``
        # (None after one of them was replaced: scanned unpacked until the next build), and
        # the rows appended after them ``_tail`` (a transposed copy with room).
        self._pack = self.transposed and pack
        self._source: npt.NDArray[np.int8] | None = None
        self._session: Any = None
        self._tail: npt.NDArray[np.int8] = np.zeros((dimensions, 0), dtype=np.int8)
        self._tail_count = 0
        self._replaced = 0  # bumped by ``replace``: a build that copied rows before is dropped
        self._building: concurrent.futures.Future[None] | None = None
        self._lock = threading.Lock()  # the packed state, against the building thread

    def __len__(self) -> int:
        return self._count

    @property
    def packed(self) -> int:
        """How many rows the packed session holds (0: none)."""
        source = self._source
        return 0 if source is None or self._session is None else source.shape[1]

    def append(self, block: F32) -> None:
        ints, scale, g, h = _quantise(block)
        with self._lock:
            start, end = self._count, self._count + block.shape[0]
            if not self.transposed:
                self._codes = with_room(self._codes, start, end, _ROWS_GROWTH)
                self._codes[start:end] = _unsigned(ints)
            elif self._source is None:
                self._codes = with_room(self._codes, start, end, _CODES_GROWTH, axis=1)
                self._codes[:, start:end] = ints.T
            else:
                used, more = self._tail_count, self._tail_count + block.shape[0]
                self._tail = with_room(self._tail, used, more, _CODES_GROWTH, axis=1)
                self._tail[:, used:more] = ints.T
                self._tail_count = more
            self._scale = with_room(self._scale, start, end, _ROWS_GROWTH)
            self._scale[start:end] = scale
            self._count = end
            self._g, self._h = max(self._g, g), max(self._h, h)

    def replace(self, row: int, vector: F32) -> None:
        ints, scale, g, h = _quantise(vector[None, :])
        with self._lock:
            self._replaced += 1
            source = self._source
            if not self.transposed:
                self._codes[row] = _unsigned(ints[0])
            elif source is None:
                self._codes[:, row] = ints[0]
            elif row < source.shape[1]:
                source[:, row] = ints[0]
                self._session = None  # its packed copy is stale: scanned unpacked until rebuilt
            else:
                self._tail[:, row - source.shape[1]] = ints[0]
            self._scale[row] = scale[0]
            self._g, self._h = max(self._g, g), max(self._h, h)

    def _repack(self) -> None:
        """Start building the packed session (under ``_lock``, at a scan: an index loaded page by
        page, or a process that only writes, builds nothing) when there is none, or when the
        rows appended after it reach ``1 / _TAIL_SHARE`` of it; one build at a time."""
        if not self._pack or self._building is not None:
            return
        source = self._source
        if source is None:
            blocks = [(self._codes, self._count)]
        elif self._session is None or self._tail_count > max(
            _TAIL_MIN, source.shape[1] // _TAIL_SHARE
        ):
            blocks = [(source, source.shape[1]), (self._tail, self._tail_count)]
        else:
            return
        self._building = _builder.submit(self._build, blocks, self._replaced)

    def _build(self, blocks: list[tuple[npt.NDArray[Any], int]], replaced: int) -> None:
        """Build the session of the rows in ``blocks`` (columns, on this thread) and put it in
        place, unless a row was replaced since they were copied (then build again). Rows
        appended since become the new tail. A session that cannot be built turns packing off:
        the rows are scanned unpacked, as before."""
        try:
            source = np.concatenate([rows[:, :n] for rows, n in blocks], axis=1)  # a copy
            session = _packed_session(source)
        except Exception as exc:  # an onnxruntime build without external initializers
            log.warning("int8 rows not packed, scanned unpacked: %s", exc)
            with self._lock:
                self._pack, self._building = False, None
            return
        with self._lock:
            self._building = None
            if replaced != self._replaced:
                self._repack()  # a row changed while they were copied
                return
            packed, count = source.shape[1], self._count
            if self._source is None:
                rest = self._codes[:, packed:count]
            else:
                done = self._source.shape[1]
                rest = self._tail[:, packed - done : count - done]
            tail = with_room(np.zeros((source.shape[0], 0), np.int8), 0, rest.shape[1], 1.0, 1)
            tail[:, : rest.shape[1]] = rest
            self._source, self._session = source, session
            self._tail, self._tail_count = tail, rest.shape[1]
            self._codes = np.zeros((source.shape[0], 0), np.int8)  # now the source and tail

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the builds in progress (benchmarks, tests: a build may start another);
        whether none is left."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (building := self._building) is not None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            concurrent.futures.wait([building], left)
            if building.done() and self._building is building:
                return False  # a build that ended without clearing it (it always does first)
        return True

    def approximate(self, query: F32) -> tuple[F32, float]:
        """Every row's approximate score for ``query`` and the bound E on its error."""
        q = query.astype(np.float64)
        peak = float(np.abs(q).max())
        t = peak / _QMAX if peak > 0 else 1.0
        hi = np.clip(np.rint(q / t), -_QMAX, _QMAX)
        t2 = t / (2 * _QMAX)
        lo = np.clip(np.rint((q - t * hi) / t2), -_QMAX, _QMAX)
        f = q - t * hi - t2 * lo
        ints = np.stack([hi, lo]).astype(np.int8)  # the query's two int8 vectors
        steps = np.array([t, t2], dtype=np.float32)
        n = self._count
        if self.transposed:  # the room's columns are scanned too (zeros), and cut off
            a = _unsigned(ints)
            with self._lock:  # the rows of one moment (a build may put new ones in place)
                source, session = self._source, self._session
                tail, more, codes = self._tail, self._tail_count, self._codes
                self._repack()
            if source is None:
                y = _matmul_integer().run(None, {"A": a, "B": codes})[0]
            else:
                if session is not None:
                    y = session.run(None, {"A": a})[0]
                else:
                    y = _matmul_integer().run(None, {"A": a, "B": source})[0]
                if more:
                    rest = _matmul_integer().run(None, {"A": a, "B": tail})[0]
                    y = np.concatenate([y, rest[:, :more]], axis=1)
            scores = steps @ y[:, :n].astype(np.float32)
        else:
            columns = np.ascontiguousarray(ints.T)
            y = _matmul_integer().run(None, {"A": self._codes[:n], "B": columns})[0]
            scores = y.astype(np.float32) @ steps
        scores *= self._scale[:n]
        bound = self._g * float(np.linalg.norm(f)) + self._h * float(np.linalg.norm(q))
        return scores, bound + _MARGIN

    def top_k(
        self, matrix: F32, query: F32, k: int, max_rescored: int
    ) -> npt.NDArray[np.intp] | None:
        """The rows of the ``k`` highest exact scores ``matrix @ query``, highest first, or
        None when more than ``max_rescored`` rows would need re-scoring (scan in float32)."""
        approx, bound = self.approximate(query)
        return self.select(approx, bound, matrix, query, k, max_rescored)

    def select(
        self,
        approx: F32,
        bound: float,
        matrix: F32,
        query: F32,
        k: int,
        max_rescored: int,
        kth: float | None = None,
    ) -> npt.NDArray[np.intp] | None:
        """``top_k`` from the approximate scores and their bound (``approximate``); ``kth``:
        their k-th highest, when the caller found it already."""
        n = approx.shape[0]
        if kth is None:
            kth = float(np.partition(approx, n - k)[n - k])
        chosen = np.flatnonzero(approx >= kth - 2 * bound)
        self.rescored = int(chosen.shape[0])
        if chosen.shape[0] > max_rescored:
            return None
        return chosen[best(matrix[chosen] @ query, k)]  # chosen ascending: ties by row
