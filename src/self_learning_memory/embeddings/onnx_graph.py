"""The all-MiniLM-L6-v2 forward pass as an ONNX graph, built from the packaged safetensors
weights (no torch, no model hub): the same computation as ``local._NumpyMiniLM``, written
with ONNX Runtime's ``com.microsoft`` operators and the standard ``LayerNormalization``, then
mean pooling and L2 normalisation. int8: each layer's Q, K and V product and the attention are
one ``QAttention`` (its input quantised by a ``DynamicQuantizeLinear``), the other linear
layers ``DynamicQuantizeMatMul`` (bias fused); fp32: ``MatMul``, ``Split`` and
``MultiHeadAttention``. (``SkipLayerNormalization`` and ``BiasGelu`` were measured slower
here: 36 us per call against 16 for ``Add`` then ``LayerNormalization`` at 16 tokens, 2.50
against 2.04 ms per query in all; re-measured 2026-12-06 on an Intel Xeon with AMX, CPU per
query at 16 tokens: ``SkipLayerNormalization`` 2.29 against 1.84 ms, ``BiasGelu`` 1.90,
``FastGelu`` and ONNX ``Gelu`` with ``approximate="tanh"`` no faster. ``QAttention`` against
``DynamicQuantizeMatMul``, ``Split`` and ``MultiHeadAttention``, same day: 1.601 / 2.864 /
3.820 against 1.683 / 2.955 / 4.061 ms of CPU at 8 / 16 / 32 tokens, interleaved, load 5.6.)

Input: ``input_ids`` (int64, batch x length), with no padding: every row is a whole text and
every token is pooled (``onnx_runtime`` runs each text alone, see there; without a mask
``MultiHeadAttention`` and the pooling are cheaper: 2026-12-06, 16 tokens, 1.84 against 1.97 ms
of CPU per query). Output: ``embedding`` (float32, batch x 384, rows L2-normalised).

:func:`build_model` returns the serialised model (bytes); ``onnx_runtime`` caches it on disk,
keyed by a hash of the weights, :data:`GRAPH_VERSION`, the precision and the int8 variant.

int8 variants (:func:`int8_variant` picks one from the CPU's flags when the graph is built):
``s8``, int8 weights everywhere, for CPUs whose int8 product adds without saturating (AVX-512
VNNI, AVX-VNNI, AMX; other architectures); ``u8``, for x86 CPUs without those (AVX2, AVX-512
without VNNI). There ONNX Runtime's u8 x s8 product (MLAS, ``vpmaddubsw``) sums each pair of
byte products in 16 bits with saturation: 255 x 127 x 2 > 32767, so a pair of large activations
against large weights is clipped (simulated over the agreement texts: 1e-5 to 1e-4 of the pairs
in every product whose input is a LayerNorm's or the attention's output, a third to two thirds
of them on the smoothed outlier channels 98/99; 1e-8 in the feed-forward down projection, whose
input is a GELU's output near its zero point). ``u8`` stores the weights of the products where
the clipping costs accuracy, each layer's QKV product and attention output projection, as uint8
with zero point 128, the same values, which ONNX Runtime multiplies u8 x u8 in 16-bit lanes
without saturation; the feed-forward products stay s8. Measured 2026-12-06 on an AMD EPYC Zen
3 (AVX2), cosine to the numpy vectors over 1,145 texts, and CPU per query at 8 / 16 / 32
tokens against ``s8`` (same process, interleaved, load 4-6):

- ``s8``: min 0.99238, mean 0.99710 (on a CPU with AMX: 0.99607 / 0.99853);
- ``u8`` (QKV and attention output): 0.99614 / 0.99842, +2 / +4-5 / +6-7 % CPU;
- every product u8 (or ``s8`` with ONNX Runtime's session option ``session.x64quantprecision``,
  which does that conversion when the session loads): 0.99636 / 0.99853, +4-6 / +8-13 / +20 %
  CPU; with the down projections s8: the same, +5-6 / +9 / +13-14 %; u8 only for the QKV products, or for
  QKV and the feed-forward up projections: 0.9942; only the output projections: 0.9927;
- weights clamped to 7 bits (``reduce_range``): 0.98542 / 0.99532, the smoothed rows taking
  most of each column's range.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "CALIBRATION",
    "GRAPH_VERSION",
    "Variant",
    "build_model",
    "cpu_flags",
    "embedding_tables",
    "int8_variant",
]

# Bump when the graph changes: the on-disk cache key includes it. (9: graph 8 is variant s8,
# unchanged; the u8 variant is new, and the variant is in the file name.)
GRAPH_VERSION = "9"
Variant = Literal["s8", "u8"]
# x86 instruction sets whose u8 x s8 product does not saturate (ONNX Runtime's MLAS kernels:
# AVX-512 VNNI and AVX-VNNI vpdpbusd(s), AMX tiles)
_X86 = {"x86_64", "amd64", "i386", "i486", "i586", "i686", "x86"}
_MS = "com.microsoft"
OUTLIER_RATIO = 2.0
# Texts whose activations locate each layer's outlier channels (generic engineering tasks, not
# the benchmarks' corpora; the outliers are properties of the weights, the texts only reveal
# them). Tokenised by the caller.
CALIBRATION = (
    "Fix the flaky integration test that fails when the clock crosses midnight",
    "Add pagination to the orders endpoint of the REST API",
    "Migrate the users table to the new schema without downtime",
    "TimeoutError: the request to the payment provider took longer than 30 seconds",
    "Refactor the configuration loader so that environment variables override the file",
    "Why does the build fail on CI but pass locally?",
    "Write a Dockerfile for the Python worker and push the image to the registry",
    "The cache returns stale entries after a deploy; invalidate them on version change",
    "Implement retry with exponential backoff for the message queue consumer",
    "KeyError: 'user_id' in handlers/session.py line 42",
    "Set up a nightly backup of the PostgreSQL database to object storage",
    "Profile the slow report query and add the missing index",
    "rename the variable",
    "deploy",
    "Parse the CSV export, drop duplicate rows and load it into the warehouse",
    "Upgrade the web framework to the next major version and fix the deprecations",
    "git rebase --onto main feature~3 feature",
    "Translate the onboarding emails into German and French",
    "Memory usage of the service grows by 200 MB per hour until it is killed",
    "Document the public API of the client library with examples",
)


def cpu_flags(cpuinfo: str) -> set[str]:
    """The CPU flags in a ``/proc/cpuinfo`` text (every ``flags`` line's, together)."""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags.update(value.split())
    return flags


def int8_variant(cpuinfo: str | None, machine: str) -> Variant:
    """The int8 graph for a CPU: ``s8`` (graph 8, unchanged) where ONNX Runtime's u8 x s8
    product does not saturate, ``u8`` where it does (module docstring). ``cpuinfo``: the text
    of ``/proc/cpuinfo`` (None when unreadable); ``machine``: ``platform.machine()``. Follows
    MLAS's dispatch: AMX (``amx_tile`` and ``amx_int8``), AVX-512 VNNI, or AVX-VNNI unless
    AVX-512 BW/DQ/VL (whose kernel replaces AVX-VNNI's) comes without VNNI. An x86 CPU whose
    flags cannot be read gets ``u8``, correct everywhere; other architectures ``s8``."""
    if machine.lower() not in _X86:
        return "s8"
    flags = cpu_flags(cpuinfo or "")
    if {"amx_tile", "amx_int8"} <= flags or "avx512_vnni" in flags:
        return "s8"
    avx512_core = {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags
    if "avx_vnni" in flags and not avx512_core:
        return "s8"
    return "u8"


def embedding_tables(
    weights: dict[str, npt.NDArray[np.float32]],
) -> dict[str, npt.NDArray[np.float32]]:
    """The graph's two lookup tables (its initializers ``word`` and ``pos``; the same in every
    precision and variant), from the weights (named with or without ``bert.``; only the three
    embedding tables are needed): the word embeddings, and the position embeddings with token
    type 0's row added (the same row for every token, folded in). ``onnx_runtime`` gives them to
    its sessions from one copy (47 MB of the 91 MB of weights is the word table)."""
    w = {k.removeprefix("bert."): v for k, v in weights.items()}
    word = np.ascontiguousarray(w["embeddings.word_embeddings.weight"], dtype=np.float32)
    position = np.asarray(w["embeddings.position_embeddings.weight"], dtype=np.float32)
    token_type = np.asarray(w["embeddings.token_type_embeddings.weight"], dtype=np.float32)
    pos = np.ascontiguousarray(position + token_type[0][None, :], dtype=np.float32)
    return {"word": word, "pos": pos}


def _quantised(
    weight: npt.NDArray[np.float32],
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
    """An (in, out) weight as ``DynamicQuantizeMatMul`` wants it: int8, one symmetric scale per
    output channel (zero point 0)."""
    scale = np.abs(weight).max(axis=0) / np.float32(127.0)
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(weight / scale[None, :]), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def _smoothing(peaks: npt.NDArray[np.float32]) -> npt.NDArray[np.float32] | None:
    """Per input channel, the factor that brings a peak above :data:`OUTLIER_RATIO` times the
    median peak down to that level (1 elsewhere); None when no channel needs it."""
    level = OUTLIER_RATIO * float(np.median(peaks))
    if level <= 0 or not (peaks > level).any():
        return None
    return np.where(peaks > level, peaks / level, 1.0).astype(np.float32)


def build_model(
    weights: dict[str, npt.NDArray[np.float32]],
    precision: str = "int8",
    heads: int = 12,
    calibration: Sequence[Sequence[int]] = (),
    variant: Variant = "s8",
) -> bytes:
    """The serialised ONNX model for BERT weights named as in the safetensors file (with or
    without the ``bert.`` prefix; linear weights stored (out, in) as PyTorch does).

    ``int8``: every linear layer is a ``DynamicQuantizeMatMul`` (int8 weights per output
    channel, activations per tensor), its input's outlier channels smoothed (module docstring)
    as found by running the float32 graph over ``calibration`` (token id sequences, each with
    its ``[CLS]`` and ``[SEP]``; required); ``variant`` (:func:`int8_variant`): ``u8`` stores
    the weights of the QKV products and the attention output projections as uint8. ``fp32``:
    plain ``MatMul``."""
    if precision == "int8":
        if not calibration:
            raise ValueError("an int8 graph needs calibration token ids to find the outliers")
        peaks = _activation_peaks(weights, heads, calibration)
        return _build(weights, precision, heads, peaks, variant=variant)
    return _build(weights, precision, heads, {})


def _activation_peaks(
    weights: dict[str, npt.NDArray[np.float32]],
    heads: int,
    calibration: Sequence[Sequence[int]],
) -> dict[str, npt.NDArray[np.float32]]:
    """Each linear layer's input: its largest absolute value per channel over the calibration
    texts' tokens, from the float32 graph of the same weights."""
    import importlib

    onnx: Any = importlib.import_module("onnx")
    ort: Any = importlib.import_module("onnxruntime")
    model = onnx.load_from_string(_build(weights, "fp32", heads, {}, inputs_out=True))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()][1:]
    peaks: dict[str, npt.NDArray[np.float32]] = {}
    for ids in calibration:
        row = np.asarray([list(ids)], dtype=np.int64)
        outputs = session.run(None, {"input_ids": row})
        for name, value in zip(names, outputs[1:], strict=True):
            peak = np.abs(value[0]).max(axis=0)
            peaks[name] = peak if name not in peaks else np.maximum(peaks[name], peak)
    return {name.removesuffix(".in"): peak for name, peak in peaks.items()}


def _build(
    weights: dict[str, npt.NDArray[np.float32]],
    precision: str,
    heads: int,
    peaks: dict[str, npt.NDArray[np.float32]],
    inputs_out: bool = False,
    fold: bool = True,
    variant: Variant = "s8",
) -> bytes:
    """The graph; ``peaks`` (int8) per linear layer's name; ``inputs_out``: every linear
    layer's input is an output too, named ``<layer>.in`` (for the calibration run);
    ``fold=False``: the attention output's smoothing as a ``Mul`` too (for the tests);
    ``variant``: see :func:`build_model`."""
    import importlib

    onnx: Any = importlib.import_module("onnx")  # typed as Any: no stubs
    TensorProto, helper, numpy_helper = onnx.TensorProto, onnx.helper, onnx.numpy_helper

    w = {k.removeprefix("bert."): np.asarray(v, dtype=np.float32) for k, v in weights.items()}
    layers = 1 + max(int(k.split(".")[2]) for k in w if k.startswith("encoder.layer."))
    hidden = w["embeddings.word_embeddings.weight"].shape[1]
    eps = 1e-12
    nodes: list[Any] = []
    inits: list[Any] = []

    def init(name: str, array: npt.NDArray[np.generic]) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op: str, inputs: list[str], output: str, domain: str = "", **attrs: object) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain, **attrs))
        return output

    probes: list[str] = []

    def unsigned(out: str) -> bool:
        """u8 weights for this product: variant ``u8``, QKV and attention output."""
        return variant == "u8" and out.endswith((".qkv", ".proj"))

    def weight_zero(out: str, n: int) -> str:
        """The weights' zero point: 0 (int8), or 128 for u8 weights."""
        if unsigned(out):
            return init(f"{out}.z", np.full(n, 128, dtype=np.uint8))
        return init(f"{out}.z", np.zeros(n, dtype=np.int8))

    def smoothed(
        x: str,
        weight: npt.NDArray[np.float32],
        out: str,
        divided: npt.NDArray[np.float32] | None = None,
    ) -> tuple[str, str, str]:
        """int8: x with its outlier channels divided (a ``Mul``, unless ``divided``: x arrives
        divided by these factors already), and the (out, in) weight with the matching rows
        multiplied, as int8 (in, out) columns and their scales (initializer names)."""
        columns = weight.T  # (in, out)
        smooth = divided if divided is not None else _smoothing(peaks[out])
        if smooth is not None:
            if divided is None:
                x = node("Mul", [x, init(f"{out}.smooth", np.float32(1.0) / smooth)], f"{out}.x")
            columns = columns * smooth[:, None]
        q, scale = _quantised(columns)
        if unsigned(out):  # the same values, offset by the zero point 128
            u8 = (q.astype(np.int16) + 128).astype(np.uint8)
            return x, init(f"{out}.q", u8), init(f"{out}.s", scale)
        return x, init(f"{out}.q", q), init(f"{out}.s", scale)

    def matmul(
        x: str,
        weight: npt.NDArray[np.float32],
        out: str,
        bias: npt.NDArray[np.float32],
        divided: npt.NDArray[np.float32] | None = None,
    ) -> str:
        """x @ weight.T + bias for an (out, in) weight (``divided``: see ``smoothed``)."""
        if inputs_out:
            probes.append(node("Identity", [x], f"{out}.in"))
        if precision == "fp32":
            product = node("MatMul", [x, init(f"{out}.w", weight.T)], f"{out}.nobias")
            return node("Add", [product, init(f"{out}.b", bias)], out)
        x, q, scale = smoothed(x, weight, out, divided)
        zero = weight_zero(out, weight.shape[0])
        return node(
            "DynamicQuantizeMatMul",
            [x, q, scale, zero, init(f"{out}.b", bias)],
            out,
            domain=_MS,
        )

    def add_norm(
        y: str,
        residual: str,
        gamma: npt.NDArray[np.float32],
        beta: npt.NDArray[np.float32],
        out: str,
    ) -> str:
        """LayerNorm(y + residual)."""
        total = node("Add", [y, residual], f"{out}.sum")
        return node(
            "LayerNormalization",
            [total, init(f"{out}.g", gamma), init(f"{out}.beta", beta)],
            out,
            axis=-1,
            epsilon=eps,
        )

    # Embeddings: word + position + token type 0, then LayerNorm.
    tables = embedding_tables(w)
    word, pos = init("word", tables["word"]), init("pos", tables["pos"])
    node("Gather", [word, "input_ids"], "emb.word")
    node("Shape", ["input_ids"], "length", start=1, end=2)
    init("zero_1", np.array([0], dtype=np.int64))
    node("Slice", [pos, "zero_1", "length", "zero_1"], "emb.pos")  # rows 0..length-1
    node("Add", ["emb.word", "emb.pos"], "emb.sum")
    x = node(
        "LayerNormalization",
        [
            "emb.sum",
            init("emb.ln.g", w["embeddings.LayerNorm.weight"]),
            init("emb.ln.b", w["embeddings.LayerNorm.bias"]),
        ],
        "emb.out",
        axis=-1,
        epsilon=eps,
    )
    for i in range(layers):
        p = f"encoder.layer.{i}"
        a = f"{p}.attention"
        # Q, K and V in one product
        packed = np.concatenate([w[f"{a}.self.{n}.weight"] for n in ("query", "key", "value")])
        packed_b = np.concatenate([w[f"{a}.self.{n}.bias"] for n in ("query", "key", "value")])
        # The attention output is linear in V (each channel a weighted mean of V's same
        # channel): its outliers are divided in V's weights and bias, not by a Mul.
        ctx_smooth = _smoothing(peaks[f"l{i}.proj"]) if precision == "int8" and fold else None
        if ctx_smooth is not None:
            packed = np.concatenate(
                [packed[: 2 * hidden], packed[2 * hidden :] / ctx_smooth[:, None]]
            )
            packed_b = np.concatenate([packed_b[: 2 * hidden], packed_b[2 * hidden :] / ctx_smooth])
        if precision == "int8" and not inputs_out:
            # int8: the input quantised once per tensor, then QAttention (the product and the
            # attention in one node): one node fewer than DynamicQuantizeMatMul, Split and
            # MultiHeadAttention, and 4-6% less CPU per query (module docstring)
            xs, q, scale = smoothed(x, packed, f"l{i}.qkv")
            quantised = [f"l{i}.x8", f"l{i}.x8.s", f"l{i}.x8.z"]
            nodes.append(
                helper.make_node("DynamicQuantizeLinear", [xs], quantised, name=f"l{i}.x8")
            )
            ctx = node(
                "QAttention",
                [
                    quantised[0],
                    q,
                    init(f"l{i}.qkv.b", packed_b),
                    quantised[1],
                    scale,
                    "",  # no mask
                    quantised[2],
                    weight_zero(f"l{i}.qkv", 3 * hidden),
                ],
                f"l{i}.ctx",
                domain=_MS,
                num_heads=heads,
            )
        else:
            # packed QKV into MultiHeadAttention is not implemented on CPU: a Split
            qkv = matmul(x, packed, f"l{i}.qkv", packed_b)
            nodes.append(
                helper.make_node(
                    "Split",
                    [qkv],
                    [f"l{i}.q", f"l{i}.k", f"l{i}.v"],
                    name=f"l{i}.split",
                    axis=-1,
                    num_outputs=3,
                )
            )
            ctx = node(
                "MultiHeadAttention",
                [f"l{i}.q", f"l{i}.k", f"l{i}.v"],
                f"l{i}.ctx",
                domain=_MS,
                num_heads=heads,
            )
        proj = matmul(
            ctx,
            w[f"{a}.output.dense.weight"],
            f"l{i}.proj",
            w[f"{a}.output.dense.bias"],
            divided=ctx_smooth,
        )
        x = add_norm(
            proj,
            x,
            w[f"{a}.output.LayerNorm.weight"],
            w[f"{a}.output.LayerNorm.bias"],
            f"l{i}.attn_out",
        )
        up = matmul(
            x, w[f"{p}.intermediate.dense.weight"], f"l{i}.up", w[f"{p}.intermediate.dense.bias"]
        )
        act = node("Gelu", [up], f"l{i}.gelu", domain=_MS)
        down = matmul(act, w[f"{p}.output.dense.weight"], f"l{i}.down", w[f"{p}.output.dense.bias"])
        x = add_norm(
            down, x, w[f"{p}.output.LayerNorm.weight"], w[f"{p}.output.LayerNorm.bias"], f"l{i}.out"
        )
    # Mean pooling over the tokens (no padding: every token is real), then L2 normalisation.
    node("ReduceMean", [x, init("axis1", np.array([1], dtype=np.int64))], "pooled", keepdims=0)
    node("LpNormalization", ["pooled"], "embedding", axis=-1, p=2)

    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"]),
        ],
        [
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", hidden]),
            *(helper.make_tensor_value_info(p, TensorProto.FLOAT, None) for p in probes),
        ],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(_MS, 1)],
        producer_name="self-learning-memory",
    )
    model.ir_version = 8
    return bytes(model.SerializeToString())
