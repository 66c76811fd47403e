"""all-MiniLM-L6-v2 on ONNX Runtime: the ``onnx`` backend of ``LocalEmbedding``.

The graph is built from the packaged safetensors weights on first use (``onnx_graph``), with
(``int8``, the default) every linear layer in int8 (``QAttention`` for the QKV product and the
attention, ``DynamicQuantizeMatMul`` for the others), its input's outlier channels smoothed
(measured cosine >= 0.995 to the numpy vectors, see docs/performance.md#query-embedding), in
the variant this CPU needs (``s8``, or ``u8`` where ONNX Runtime's int8 product saturates:
``onnx_graph.int8_variant``, from ``/proc/cpuinfo``), or (``fp32``) plain float32. The result
is cached as ``<cache dir>/onnx/minilm-g<graph version>-<precision>[-<variant>]-<hash>.onnx``,
the hash covering the weights, the graph version, the precision and the variant, so a second
process (or the second construction) loads it in a fraction of a second, and a cache copied
from a machine that needs the other variant is not used; building a graph removes those of
other graph versions.
Nothing is downloaded: a fresh ``pip install 'self-learning-memory[local]'`` has everything.

Queries (``encode``) run on the ``precision`` graph, the stored texts (``encode_documents``:
episodes, embedded in the background) on the ``documents`` graph, float32 by default through
``LocalEmbedding``: with int8 episode vectors main's peer-style benchmark lost 2 of 100 hits
against the numpy vectors, with float32 ones none, the queries staying int8 (measured
2026-12-06, docs/performance.md#query-embedding). The float32 session is loaded when the first
document is embedded; both sessions read the word and position tables from one copy.

A text is tokenised without padding (its own length; plain-ASCII texts from a cache of word
pieces, ``_WordPieces``) and run alone: int8 activations are quantised per tensor, so a text's
vector must not share a run with other texts, and the graph has no mask input. ONNX Runtime
runs on one intra-op thread by default (``threads``): a query is small, and the 2-core
machines this runs on serve other work at the same time (see the measurements).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import logging
import os
import platform
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import numpy.typing as npt

from ..errors import CapabilityUnavailableError

if TYPE_CHECKING:
    from .onnx_graph import Variant

__all__ = ["Precision", "build_count", "cache_dir", "cpu_variant", "onnx_available"]

Precision = Literal["int8", "fp32"]
F32 = npt.NDArray[np.float32]
_FIX = "pip install 'self-learning-memory[local]'"
log = logging.getLogger(__name__)
_builds = 0
_build_lock = threading.Lock()
_digests: dict[tuple[str, int, int], str] = {}


def onnx_available() -> bool:
    """Whether ONNX Runtime and onnx (for building the graph) can be imported (cheap)."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def build_count() -> int:
    """How many graphs this process has built (not loaded from the cache): for tests."""
    return _builds


def cache_dir() -> Path:
    """``$MEMORY_CACHE_DIR`` or the user's cache directory, then ``onnx``."""
    env = os.environ.get("MEMORY_CACHE_DIR")
    if env:
        return Path(env).expanduser() / "onnx"
    import platformdirs

    from ..paths import APP_NAME

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)) / "onnx"


def _weights_digest(weights: Path) -> str:
    stat = weights.stat()
    key = (str(weights), stat.st_size, stat.st_mtime_ns)
    if key not in _digests:
        digest = hashlib.sha256()
        with weights.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        _digests[key] = digest.hexdigest()
    return _digests[key]


@functools.cache
def cpu_variant() -> Variant:
    """The int8 graph variant for this CPU (``onnx_graph.int8_variant`` of ``/proc/cpuinfo``
    up to the first processor's flags: every core has the same, and the file is large on
    machines with many; an unreadable file, as on macOS or Windows, counts as unknown flags).
    Read once per process: each session's graph (queries, documents) asks for it."""
    from .onnx_graph import int8_variant

    lines: list[str] = []
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                lines.append(line)
                if line.startswith("flags"):
                    break
    except OSError:
        return int8_variant(None, platform.machine())
    return int8_variant("".join(lines), platform.machine())


def graph_file_name(precision: Precision, variant: Variant | None, weights_digest: str) -> str:
    """The cache file's name: graph version, precision, the int8 variant (None for fp32),
    and a hash of all of them with the weights' digest."""
    from .onnx_graph import GRAPH_VERSION

    kind = f"{precision}-{variant}" if variant else precision
    key = hashlib.sha256(f"{weights_digest}:{GRAPH_VERSION}:{kind}".encode()).hexdigest()[:24]
    return f"{_prefix(GRAPH_VERSION)}{kind}-{key}.onnx"


def _prefix(version: str) -> str:
    return f"minilm-g{version}-"


def _prune(directory: Path, version: str) -> None:
    """Remove the graphs of other graph versions (58-90 MB each; the files of releases before
    the version was in the name included) and builds abandoned over an hour ago. A process
    still using one has it loaded already; on a system where an open file cannot be removed
    it stays for a later build to remove."""
    keep, stale = _prefix(version), time.time() - 3600
    for path in directory.glob("minilm-*"):
        try:
            old = path.name.endswith(".onnx") and not path.name.startswith(keep)
            if old or (path.name.endswith(".partial") and path.stat().st_mtime < stale):
                path.unlink()
                log.info("removed %s (an earlier ONNX graph of the local model)", path)
        except OSError:
            continue


def model_file(
    directory: Path, precision: Precision, tokenizer: Any, variant: Variant | None
) -> Path | bytes:
    """The cached ONNX model for the weights in ``directory``, built first if missing. When
    the cache directory cannot be written (a read-only home), the built model itself (bytes),
    with a warning: it is then rebuilt by every process."""
    global _builds
    from .onnx_graph import CALIBRATION, GRAPH_VERSION, build_model

    weights = directory / "model.safetensors"
    target = cache_dir() / graph_file_name(precision, variant, _weights_digest(weights))
    with _build_lock:
        if target.exists():
            return target
        from safetensors.numpy import load_file

        # the caller's tokenizer, without padding: a padded row would calibrate on [PAD] tokens
        calibration = [e.ids for e in tokenizer.encode_batch(list(CALIBRATION))]
        model = build_model(
            load_file(str(weights)),
            precision,
            calibration=calibration,
            variant=variant or "s8",
        )
        _builds += 1
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(model)
            os.replace(partial, target)  # atomic: another process sees all of it or nothing
            _prune(target.parent, GRAPH_VERSION)
        except OSError as exc:
            log.warning(
                "could not cache the ONNX model in %s (%s): set MEMORY_CACHE_DIR to a writable "
                "directory to avoid rebuilding it in every process",
                target.parent,
                exc,
            )
            return model
        finally:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
        return target


# Printable ASCII, tab, newline and carriage return: the texts whose BERT normalisation is
# lowercasing alone (no control characters to drop, no accents, no CJK) and whose
# pre-tokenisation is runs of letters and digits, every other printable character alone (all of
# them are punctuation to BERT).
_PLAIN = re.compile(r"[\t\n\r\x20-\x7e]*")
_WORDS = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")
_CACHED_WORDS = 20_000


class _WordPieces:
    """Token ids (with ``[CLS]`` and ``[SEP]``, truncated as the tokenizer truncates) from a
    cache of each word's word pieces, for plain-ASCII texts; the tokenizer itself for the rest
    and for texts that spell a special token. Word pieces depend on the word alone, and each
    new word's come from the tokenizer, so the ids are the tokenizer's (tested on the corpus and
    on random ASCII). Why: right after a forward pass the Rust tokenizer took 88 / 114 / 181 us
    of CPU for a query of 8 / 16 / 32 tokens (its tables out of cache), this 38 / 41 / 58; in a
    tight loop over the corpus texts 37 / 88 / 272 us against 8 / 17 / 48 for texts of about 32
    / 97 / 333 characters (2026-12-06)."""

    def __init__(self, tokenizer: Any, max_tokens: int) -> None:
        self.tokenizer = tokenizer
        self.cls = int(tokenizer.token_to_id("[CLS]"))
        self.sep = int(tokenizer.token_to_id("[SEP]"))
        self.room = max_tokens - 2  # word pieces kept beside [CLS] and [SEP]
        self.specials = [t.content for t in tokenizer.get_added_tokens_decoder().values()]
        self.pieces: dict[str, list[int]] = {}

    def __call__(self, text: str) -> tuple[list[int], bool]:
        """The ids and whether the text was truncated."""
        if _PLAIN.fullmatch(text) is None or any(s in text for s in self.specials):
            encoding = self.tokenizer.encode(text)
            return list(encoding.ids), bool(encoding.overflowing)
        pieces = self.pieces
        ids = [self.cls]
        for word in _WORDS.findall(text.lower()):
            known = pieces.get(word)
            if known is None:
                if len(pieces) >= _CACHED_WORDS:
                    pieces.clear()
                known = self.tokenizer.encode(word, add_special_tokens=False).ids
                pieces[word] = known
            ids += known
        cut = len(ids) - 1 > self.room
        if cut:
            del ids[self.room + 1 :]
        ids.append(self.sep)
        return ids, cut


def _tables(weights: Path) -> dict[str, F32]:
    """The graph's lookup tables (``onnx_graph.embedding_tables``) from the safetensors file,
    reading only the three embedding tensors."""
    from safetensors import safe_open

    from .onnx_graph import embedding_tables

    wanted = ("word_embeddings", "position_embeddings", "token_type_embeddings")
    with safe_open(str(weights), framework="numpy") as f:
        keys = f.keys()  # (safe_open is not iterable)
        names = [k for k in keys if any(f"embeddings.{n}.weight" in k for n in wanted)]
        return embedding_tables({k: f.get_tensor(k) for k in names})


class OnnxMiniLM:
    """Tokenizer plus ONNX Runtime sessions; ``encode`` has the numpy backend's contract.

    ``precision`` is the graph of ``encode`` (queries); ``documents`` the graph of
    ``encode_documents`` (episodes, embedded in the background), loaded on its first use when
    it differs. Both sessions read the two lookup tables (the word table is 47 MB) from one
    copy (``SessionOptions.add_initializer``)."""

    def __init__(
        self,
        directory: Path,
        precision: Precision = "int8",
        threads: int = 1,
        documents: Precision | None = None,
    ) -> None:
        try:
            ort: Any = importlib.import_module("onnxruntime")  # typed as Any: no stubs
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - checked by onnx_available first
            raise CapabilityUnavailableError(
                f"The onnx embedding backend needs {exc.name}. Fix: {_FIX}."
            ) from exc
        from .local import MAX_TOKENS

        self.ort = ort
        self.directory = directory
        self.threads = threads
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.no_padding()  # the file pads to 128
        self.token_ids = _WordPieces(self.tokenizer, MAX_TOKENS)
        # kept alive as long as the sessions that read them
        self.tables = {
            name: ort.OrtValue.ortvalue_from_numpy(table)
            for name, table in _tables(directory / "model.safetensors").items()
        }
        self.precision = precision
        self.documents: Precision = documents or precision
        self.variant = cpu_variant() if precision == "int8" else None
        self.session, self.path = self._session(precision, arena=True)
        self._document_session: Any = self.session if self.documents == precision else None
        self._document_lock = threading.Lock()

    def _session(self, precision: Precision, arena: bool) -> tuple[Any, Path | None]:
        """A session of the graph of this precision (built first if not cached) and its cache
        file (None: not cached). ``arena=False``: without ONNX Runtime's memory arena (the
        document session: about 20 MB less for the same CPU time, measured 2026-12-06)."""
        ort = self.ort
        variant = cpu_variant() if precision == "int8" else None
        path = model_file(self.directory, precision, self.tokenizer, variant)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: shape-merge notes are not for users
        options.enable_cpu_mem_arena = arena
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        for name, table in self.tables.items():
            options.add_initializer(name, table)
        session = ort.InferenceSession(
            str(path) if isinstance(path, Path) else path,
            options,
            providers=["CPUExecutionProvider"],
        )
        return session, path if isinstance(path, Path) else None

    @property
    def document_session(self) -> Any:
        """The session of ``encode_documents`` (loaded here on first use)."""
        session = self._document_session
        if session is None:
            with self._document_lock:
                if self._document_session is None:
                    self._document_session = self._session(self.documents, arena=False)[0]
                session = self._document_session
        return session

    def _one(self, text: str, session: Any) -> tuple[F32, bool]:
        ids, cut = self.token_ids(text)
        row = np.array(ids, dtype=np.int64)[None, :]
        (vector,) = session.run(None, {"input_ids": row})  # no padding: no mask input
        return cast(F32, vector), cut

    def encode(self, texts: list[str]) -> tuple[F32, list[bool]]:
        """One run per text: int8 activations are quantised per tensor, so a padded batch
        would give a text's vector a dependence on its neighbours, and a padded batch costs
        more CPU per text, not less (episode texts, 2026-12-05: 14.8 ms alone, 16.5 in 4s,
        20.5 in 16s, 24.5 in 64s; the same text 64 times 18.0 alone vs 20.0 batched)."""
        if len(texts) == 1:  # a query
            vector, cut = self._one(texts[0], self.session)
            return vector, [cut]
        return self._many(texts, self.session)

    def encode_documents(self, texts: list[str]) -> tuple[F32, list[bool]]:
        """``encode`` with the documents' graph."""
        return self._many(texts, self.document_session)

    def _many(self, texts: list[str], session: Any) -> tuple[F32, list[bool]]:
        vectors: list[F32] = []
        truncated: list[bool] = []
        for text in texts:
            vector, cut = self._one(text, session)
            vectors.append(vector)
            truncated.append(cut)
        if not vectors:
            return np.zeros((0, 384), dtype=np.float32), []
        return np.concatenate(vectors), truncated
