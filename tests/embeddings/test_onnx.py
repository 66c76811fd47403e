"""The ONNX Runtime backend of the local model: the numpy backend's vectors (cosine >= 0.99 in
int8, equal in fp32), built from the packaged weights once and cached, and the numpy fallback
when ONNX Runtime is missing."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from importlib.machinery import ModuleSpec
from pathlib import Path

import numpy as np
import pytest

from backends.support import unavailable
from self_learning_memory.embeddings import onnx_runtime
from self_learning_memory.embeddings.local import MAX_TOKENS, LocalEmbedding

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def onnxruntime_installed() -> None:
    """Skipped without ONNX Runtime (the extra ``local``), failed under ``CI=true``."""
    if not onnx_runtime.onnx_available():
        unavailable("onnxruntime/onnx are not installed: pip install 'self-learning-memory[local]'")


TEXTS = [
    "hello",
    "fix it",
    "Add a /health endpoint to the FastAPI orders service",
    "the orders listing returns everything at once, page it",
    "Fix the flaky payment retry test that depends on the wall clock",
    "CREATE INDEX CONCURRENTLY cannot run inside a transaction block",
    "ünïcödé tëxt, emoji 🚀 and mixed CASE",
    "TimeoutError in handler_3.py. domain: web-api. language: python.",
    "paginate the orders endpoint. domain: web-api. language: python. framework: fastapi.",
    "Migrate the users table without downtime. domain: database. language: sql. tools used: "
    "psql, alembic. steps: add the column; backfill in batches; switch reads. errors: lock "
    "timeout on users.",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A cache directory of this module's own: the first construction builds the graph."""
    directory = tmp_path_factory.mktemp("onnx-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEMORY_CACHE_DIR", str(directory))
        yield directory / "onnx"


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return LocalEmbedding(backend="numpy").encode_sync(TEXTS).vectors


@pytest.fixture(scope="module")
def int8(cache: Path) -> LocalEmbedding:
    model = LocalEmbedding(backend="onnx")
    model.encode_sync(["warm up"])
    return model


def test_int8_vectors_are_the_numpy_vectors_within_cosine_099(
    int8: LocalEmbedding, reference: np.ndarray
) -> None:
    batch = int8.encode_sync(TEXTS)
    assert batch.vectors.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(batch.vectors, axis=1), 1.0, atol=1e-5)
    cosines = (batch.vectors * reference).sum(axis=1)
    assert cosines.min() >= 0.99, cosines
    assert cosines.mean() >= 0.995, cosines


def test_fp32_vectors_equal_the_numpy_vectors(cache: Path, reference: np.ndarray) -> None:
    model = LocalEmbedding(backend="onnx", precision="fp32")
    together = model.encode_sync(TEXTS).vectors
    cosines = (together * reference).sum(axis=1)
    assert cosines.min() > 0.9999, cosines


def test_a_text_s_vector_does_not_depend_on_its_batch(int8: LocalEmbedding) -> None:
    together = int8.encode_sync(TEXTS).vectors
    alone = np.stack([int8.encode_sync([t]).vectors[0] for t in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-6)


def test_long_text_is_truncated_and_reported(int8: LocalEmbedding) -> None:
    batch = int8.encode_sync(["short", "word " * (MAX_TOKENS + 50)])
    assert batch.truncated == [False, True]


def test_the_built_graph_is_cached_and_not_rebuilt(int8: LocalEmbedding, cache: Path) -> None:
    files = sorted(cache.glob("minilm-*.onnx"))
    assert len(files) >= 1
    mtimes = {f: f.stat().st_mtime_ns for f in files}
    builds = onnx_runtime.build_count()
    again = LocalEmbedding(backend="onnx")
    again.encode_sync(["a second construction"])
    assert again.active_backend == "onnx"
    assert onnx_runtime.build_count() == builds
    assert {f: f.stat().st_mtime_ns for f in files} == mtimes
    assert not list(cache.glob("*.partial"))


def test_auto_uses_onnx_when_installed(cache: Path) -> None:
    model = LocalEmbedding()
    assert model.active_backend is None  # nothing loads at construction
    model.encode_sync(["which backend"])
    assert model.active_backend == "onnx"


def test_auto_falls_back_to_numpy_without_onnxruntime(
    monkeypatch: pytest.MonkeyPatch, reference: np.ndarray
) -> None:
    real = importlib.util.find_spec

    def hide(name: str, package: str | None = None) -> ModuleSpec | None:
        return None if name.partition(".")[0] in ("onnxruntime", "onnx") else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", hide)
    assert not onnx_runtime.onnx_available()
    model = LocalEmbedding()
    vectors = model.encode_sync(TEXTS[:3]).vectors
    assert model.active_backend == "numpy"
    np.testing.assert_allclose(vectors, reference[:3], atol=1e-5)


def test_an_unwritable_cache_still_gives_vectors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, reference: np.ndarray
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("MEMORY_CACHE_DIR", str(blocker / "cache"))  # mkdir fails under a file
    builds = onnx_runtime.build_count()
    model = LocalEmbedding(backend="onnx")
    vectors = model.encode_sync(TEXTS[:2]).vectors
    assert onnx_runtime.build_count() == builds + 1
    assert model.active_backend == "onnx"
    assert ((vectors * reference[:2]).sum(axis=1) >= 0.99).all()


def test_an_int8_graph_needs_calibration_texts() -> None:
    from self_learning_memory.embeddings.onnx_graph import build_model

    with pytest.raises(ValueError, match="calibration"):
        build_model({}, "int8")


def test_only_outlier_channels_are_smoothed_down_to_the_ratio() -> None:
    from self_learning_memory.embeddings.onnx_graph import OUTLIER_RATIO, _smoothing

    peaks = np.array([1.0, 1.0, 1.0, 1.0, 30.0, 2.0], dtype=np.float32)
    factors = _smoothing(peaks)
    assert factors is not None
    level = OUTLIER_RATIO * 1.0  # the median peak is 1
    np.testing.assert_allclose(factors, [1, 1, 1, 1, 30.0 / level, 1])
    assert _smoothing(np.ones(8, dtype=np.float32)) is None


def test_the_graph_is_calibrated_on_the_texts_tokens_without_padding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tokenizer file pads to 128: calibrating on its rows would count [PAD] tokens
    (run as real tokens) among the activations that locate the outliers."""
    from self_learning_memory.embeddings import onnx_graph

    monkeypatch.setenv("MEMORY_CACHE_DIR", str(tmp_path))
    seen: list[list[int]] = []
    build = onnx_graph.build_model

    def recorded(*args: object, calibration: list[list[int]], **kwargs: object) -> bytes:
        seen.extend(list(ids) for ids in calibration)
        return build(*args, calibration=calibration, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(onnx_graph, "build_model", recorded)
    LocalEmbedding(backend="onnx").encode_sync(["warm up"])
    assert len(seen) == len(onnx_graph.CALIBRATION)
    assert all(0 not in ids for ids in seen)  # 0 is [PAD]
    assert max(len(ids) for ids in seen) < 40
    assert min(len(ids) for ids in seen) == 3  # "deploy": [CLS] deploy [SEP]


def test_a_build_removes_the_graphs_of_other_versions_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each graph version's files are 58-90 MB: those of earlier versions (and of releases that
    did not name the version) go when a graph is built; this version's other precision stays,
    and so does a build in progress."""
    from self_learning_memory.embeddings.onnx_graph import GRAPH_VERSION

    monkeypatch.setenv("MEMORY_CACHE_DIR", str(tmp_path))
    cache = tmp_path / "onnx"
    cache.mkdir()
    older = [cache / "minilm-0123456789abcdef01234567.onnx", cache / "minilm-g1-int8-ab.onnx"]
    kept = [cache / f"minilm-g{GRAPH_VERSION}-int8-other.onnx", cache / "minilm-x.onnx.9.partial"]
    for path in [*older, *kept]:
        path.write_bytes(b"graph")
    model = LocalEmbedding(backend="onnx", precision="fp32")
    model.encode_sync(["prune"])
    assert model.active_backend == "onnx"
    left = {p.name for p in cache.iterdir()}
    assert not left & {p.name for p in older}
    assert {p.name for p in kept} <= left
    assert any(n.startswith(f"minilm-g{GRAPH_VERSION}-fp32-") for n in left)


def test_the_attention_output_s_smoothing_is_folded_into_v_without_changing_vectors() -> None:
    """The attention output's outlier channels are divided in V's weights (no ``Mul``): the
    vectors are those of the graph that divides them with a ``Mul`` (issue 17)."""
    import onnx
    import onnxruntime as ort
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    from self_learning_memory.embeddings import onnx_graph
    from self_learning_memory.embeddings.local import model_directory

    directory = model_directory()
    weights = load_file(str(directory / "model.safetensors"))
    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.no_padding()
    calibration = [e.ids for e in tokenizer.encode_batch(list(onnx_graph.CALIBRATION))]
    peaks = onnx_graph._activation_peaks(weights, 12, calibration)
    assert any(onnx_graph._smoothing(peaks[f"l{i}.proj"]) is not None for i in range(6))
    folded = onnx_graph._build(weights, "int8", 12, peaks)
    unfolded = onnx_graph._build(weights, "int8", 12, peaks, fold=False)

    def muls(model: bytes) -> set[str]:
        graph = onnx.load_from_string(model).graph
        return {n.name for n in graph.node if n.op_type == "Mul"}

    ops = [n.op_type for n in onnx.load_from_string(folded).graph.node]
    assert ops.count("QAttention") == 6  # the QKV product and the attention in one node
    assert "Split" not in ops
    assert "MultiHeadAttention" not in ops
    assert not any(".proj." in name for name in muls(folded))
    assert any(".proj." in name for name in muls(unfolded))
    assert {n for n in muls(unfolded) if ".proj." not in n} == muls(folded)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    sessions = [
        ort.InferenceSession(m, options, providers=["CPUExecutionProvider"])
        for m in (folded, unfolded)
    ]
    assert [i.name for i in sessions[0].get_inputs()] == ["input_ids"]  # no mask: no padding
    for encoding in tokenizer.encode_batch(TEXTS):
        ids = np.array(encoding.ids, dtype=np.int64)[None, :]
        a, b = (s.run(None, {"input_ids": ids})[0][0] for s in sessions)
        assert float(a @ b) > 0.999, encoding.tokens


def test_a_query_is_the_raw_graph_s_vector(int8: LocalEmbedding) -> None:
    """The one-text path of ``encode_sync`` (no chunking, no concatenation) returns what the
    session computes for the text's tokens."""
    impl = int8._impl
    for text in TEXTS:
        ids = np.array(impl.tokenizer.encode(text).ids, dtype=np.int64)[None, :]
        batch = int8.encode_sync([text])
        assert batch.vectors.shape == (1, 384)
        assert batch.truncated == [False]
        np.testing.assert_array_equal(batch.vectors, impl.session.run(None, {"input_ids": ids})[0])
    assert int8.encode_sync([]).vectors.shape == (0, 384)


def test_the_word_piece_cache_gives_the_tokenizer_s_ids() -> None:
    """Plain-ASCII texts are tokenised from cached word pieces: the ids and the truncation flag
    must be the tokenizer's, on the corpus, on random printable ASCII and on the edge cases
    (special tokens spelt out, truncation at the limit, non-ASCII and control characters)."""
    import random

    from benchmarks.embeddings_bench import agreement_texts
    from tokenizers import Tokenizer

    from self_learning_memory.embeddings.local import model_directory
    from self_learning_memory.embeddings.onnx_runtime import _WordPieces

    tokenizer = Tokenizer.from_file(str(model_directory() / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.no_padding()
    pieces = _WordPieces(tokenizer, MAX_TOKENS)
    rng = random.Random(17)
    alphabet = [chr(c) for c in range(32, 127)] + ["\t", "\n", "\r"] * 3 + [" "] * 20
    texts = [*TEXTS, *agreement_texts()]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300))) for _ in range(500)]
    texts += ["", " ", *("word " * n for n in (MAX_TOKENS - 3, MAX_TOKENS - 2, MAX_TOKENS - 1))]
    texts += ["x [SEP] y", "[CLS]", "[cls] [MASK]", "a" * 150, "naïve café", "\x0bvt", "日本語"]
    texts += ["e.g. C++/C# -- don't!", "KeyError: 'user_id' in handlers/session.py:42"]
    for text in texts:
        encoding = tokenizer.encode(text)
        assert pieces(text) == (encoding.ids, bool(encoding.overflowing)), text
    assert pieces("word " * MAX_TOKENS)[1] is True
    assert pieces("word word")[1] is False
    assert "word" in pieces.pieces  # the plain texts went through the cache


# /proc/cpuinfo "flags" lines (abridged) of the CPUs the graph has run on, and of the others
# whose int8 product ONNX Runtime dispatches differently (issue 17, graph 9).
ZEN3 = "fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni vaes vpclmulqdq"
ZEN4 = f"{ZEN3} avx512f avx512dq avx512bw avx512vl avx512_bf16 avx512_vnni avx512_vbmi2"
EMERALD_RAPIDS = f"{ZEN4} avx_vnni amx_bf16 amx_tile amx_int8"
ALDER_LAKE = f"{ZEN3} avx_vnni"
SKYLAKE_X = f"{ZEN3} avx512f avx512dq avx512bw avx512vl"


def cpuinfo(flags: str) -> str:
    """A two-processor /proc/cpuinfo with these flags."""
    one = f"processor\t: 0\nmodel name\t: a cpu\nflags\t\t: {flags}\nbogomips\t: 4000\n\n"
    return one + one.replace(": 0", ": 1", 1)


@pytest.mark.parametrize(
    ("flags", "variant"),
    [
        (ZEN4, "s8"),  # AVX-512 VNNI: today's graph, unchanged
        (EMERALD_RAPIDS, "s8"),  # AMX
        (f"{ZEN3} amx_tile amx_int8", "s8"),
        (ALDER_LAKE, "s8"),  # AVX-VNNI
        (ZEN3, "u8"),  # AVX2 only: vpmaddubsw saturates
        (SKYLAKE_X, "u8"),  # AVX-512 without VNNI saturates too
        (f"{SKYLAKE_X} avx_vnni", "u8"),  # MLAS prefers the AVX-512 kernel over AVX-VNNI
        (f"{ZEN3} amx_tile", "u8"),  # tiles without int8
        ("fpu sse sse2", "u8"),
    ],
)
def test_the_int8_variant_follows_the_cpu_flags(flags: str, variant: str) -> None:
    from self_learning_memory.embeddings.onnx_graph import int8_variant

    assert int8_variant(cpuinfo(flags), "x86_64") == variant
    assert int8_variant(cpuinfo(flags), "AMD64") == variant  # Windows spells it so


def test_the_int8_variant_without_flags() -> None:
    """An x86 CPU whose flags cannot be read gets the graph that is right on every CPU; other
    architectures have no vpmaddubsw and keep today's graph."""
    from self_learning_memory.embeddings.onnx_graph import int8_variant

    assert int8_variant(None, "x86_64") == "u8"
    assert int8_variant("processor\t: 0\n", "x86_64") == "u8"
    arm = "processor\t: 0\nFeatures\t: fp asimd aes pmull sha1 sha2 crc32 atomics asimddp\n"
    assert int8_variant(arm, "aarch64") == "s8"
    assert int8_variant(cpuinfo(ZEN3), "arm64") == "s8"


def test_the_cache_file_name_carries_the_variant(int8: LocalEmbedding, cache: Path) -> None:
    """A graph cache copied to a machine that needs the other variant is not used there: the
    two variants' files differ in name and hash; this machine's file carries its variant."""
    from self_learning_memory.embeddings.onnx_graph import GRAPH_VERSION
    from self_learning_memory.embeddings.onnx_runtime import cpu_variant, graph_file_name

    s8, u8 = (graph_file_name("int8", v, "digest") for v in ("s8", "u8"))
    assert s8.startswith(f"minilm-g{GRAPH_VERSION}-int8-s8-")
    assert u8.startswith(f"minilm-g{GRAPH_VERSION}-int8-u8-")
    assert s8.rsplit("-", 1)[1] != u8.rsplit("-", 1)[1]
    assert graph_file_name("fp32", None, "digest").startswith(f"minilm-g{GRAPH_VERSION}-fp32-")
    assert graph_file_name("int8", "s8", "other") != s8  # the weights are in the hash too
    variant = cpu_variant()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():  # read up to the first flags line: the whole file's answer
        import platform

        from self_learning_memory.embeddings.onnx_graph import int8_variant

        assert variant == int8_variant(cpuinfo.read_text(), platform.machine())
    assert int8._impl.variant == variant
    assert int8._impl.path.name.startswith(f"minilm-g{GRAPH_VERSION}-int8-{variant}-")


def test_the_u8_graph_is_the_s8_graph_with_unsigned_weights_and_agrees_with_numpy(
    reference: np.ndarray,
) -> None:
    """``u8`` stores the QKV products' and attention output projections' weights as uint8 with
    zero point 128, the same values; on any CPU its vectors are the numpy vectors within cosine 0.99 (on
    CPUs without VNNI it is the graph that gets there: issue 17)."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    from self_learning_memory.embeddings import onnx_graph
    from self_learning_memory.embeddings.local import model_directory

    directory = model_directory()
    weights = load_file(str(directory / "model.safetensors"))
    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.no_padding()
    peaks = onnx_graph._activation_peaks(
        weights, 12, [e.ids for e in tokenizer.encode_batch(list(onnx_graph.CALIBRATION))]
    )
    graphs = {v: onnx_graph._build(weights, "int8", 12, peaks, variant=v) for v in ("s8", "u8")}
    inits = {
        v: {i.name: numpy_helper.to_array(i) for i in onnx.load_from_string(m).graph.initializer}
        for v, m in graphs.items()
    }
    assert inits["s8"].keys() == inits["u8"].keys()
    assert not [n for n, a in inits["s8"].items() if a.dtype == np.uint8]
    unsigned = {n for n, a in inits["u8"].items() if a.dtype == np.uint8}
    assert unsigned == {f"l{i}.{k}.{t}" for i in range(6) for k in ("qkv", "proj") for t in "qz"}
    for name in unsigned:
        shifted = inits["u8"][name].astype(np.int16) - 128
        np.testing.assert_array_equal(shifted, inits["s8"][name])
    ops = {v: [n.op_type for n in onnx.load_from_string(m).graph.node] for v, m in graphs.items()}
    assert ops["s8"] == ops["u8"]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(graphs["u8"], options, providers=["CPUExecutionProvider"])
    vectors = np.concatenate(
        [
            session.run(None, {"input_ids": np.array(e.ids, dtype=np.int64)[None, :]})[0]
            for e in tokenizer.encode_batch(TEXTS)
        ]
    )
    cosines = (vectors * reference).sum(axis=1)
    assert cosines.min() >= 0.99, cosines
    assert cosines.mean() >= 0.995, cosines


def test_documents_go_through_the_fp32_graph_loaded_on_first_use(
    cache: Path, reference: np.ndarray
) -> None:
    """By default the stored texts (``encode_documents_sync``) are the numpy vectors (the
    float32 graph, loaded when the first document is embedded), the queries the int8 graph's;
    ``document_precision="int8"`` uses the query session for both."""
    model = LocalEmbedding(backend="onnx")
    queries = model.encode_sync(TEXTS).vectors
    impl = model._impl
    assert impl._document_session is None  # nothing loaded for documents yet
    documents = model.encode_documents_sync(TEXTS)
    assert impl._document_session is not impl.session
    assert documents.vectors.shape == (len(TEXTS), 384)
    assert documents.truncated == [False] * len(TEXTS)
    assert (documents.vectors * reference).sum(axis=1).min() > 0.9999
    assert (queries * reference).sum(axis=1).min() < 0.9999  # the int8 graph: another graph
    one = model.encode_documents_sync([TEXTS[-1]])
    np.testing.assert_allclose(one.vectors[0], documents.vectors[-1], atol=1e-6)

    same = LocalEmbedding(backend="onnx", document_precision="int8")
    np.testing.assert_array_equal(same.encode_documents_sync(TEXTS).vectors, queries)
    assert same._impl._document_session is same._impl.session
    numpy = LocalEmbedding(backend="numpy")  # one graph: documents are embedded as queries
    np.testing.assert_array_equal(
        numpy.encode_documents_sync(TEXTS[:3]).vectors, numpy.encode_sync(TEXTS[:3]).vectors
    )


def test_the_sessions_lookup_tables_are_the_graphs(int8: LocalEmbedding, cache: Path) -> None:
    """The one copy of the word and position tables that both sessions read replaces the
    graphs' own initializers of those names: it must be equal to them (int8 and fp32)."""
    import onnx
    from onnx import numpy_helper

    int8.encode_documents_sync(["load the document graph"])
    files = sorted(cache.glob("minilm-*.onnx"))
    assert {f.name.split("-")[2] for f in files} >= {"int8", "fp32"}
    for file in files:
        graph = onnx.load(str(file)).graph
        inits = {i.name: i for i in graph.initializer if i.name in ("word", "pos")}
        assert inits.keys() == int8._impl.tables.keys() == {"word", "pos"}
        for name, value in int8._impl.tables.items():
            np.testing.assert_array_equal(numpy_helper.to_array(inits[name]), value.numpy())
