"""The all-MiniLM-L6-v2 forward pass as an ONNX graph, built from the packaged safetensors
weights (no torch, no model hub): the same computation as ``local._NumpyMiniLM``, written
with ONNX Runtime's fused BERT operators (``com.microsoft``: ``MultiHeadAttention``,
``SkipLayerNormalization``, ``BiasGelu``; linear layers as 8-bit ``MatMulNBits`` or float32
``MatMul``), then mean pooling and L2 normalisation.

Inputs: ``input_ids`` (int64, batch x length) and ``attention_mask`` (int64, 1 for a token, 0
for padding). Output: ``embedding`` (float32, batch x 384, rows L2-normalised).

:func:`build_model` returns the serialised model (bytes); ``onnx_runtime`` caches it on disk,
keyed by a hash of the weights, :data:`GRAPH_VERSION` and the precision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["GRAPH_VERSION", "build_model"]

# Bump when the graph changes: the on-disk cache key includes it.
GRAPH_VERSION = "3"
_MS = "com.microsoft"
BLOCK = 32


def _blockwise_int8(
    weight: npt.NDArray[np.float32],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """A linear layer's (out, in) weight as ``MatMulNBits`` wants it at 8 bits: per output
    channel, blocks of :data:`BLOCK` inputs, each with its own scale (symmetric, zero point
    128, the operator's default)."""
    out, k = weight.shape
    if k % BLOCK:
        raise ValueError(f"a linear layer has {k} inputs, not a multiple of the block {BLOCK}")
    blocks = weight.reshape(out, k // BLOCK, BLOCK)
    scale = np.abs(blocks).max(axis=2) / np.float32(127.0)
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(blocks / scale[:, :, None]), -127, 127) + 128
    return q.astype(np.uint8), scale.astype(np.float32).reshape(-1)


def build_model(
    weights: dict[str, npt.NDArray[np.float32]], precision: str = "int8", heads: int = 12
) -> bytes:
    """The serialised ONNX model for BERT weights named as in the safetensors file (with or
    without the ``bert.`` prefix; linear weights stored (out, in) as PyTorch does).

    ``int8``: every linear layer is ``MatMulNBits`` at 8 bits, blocks of 32 inputs with a
    scale each, activations quantised per block too (``accuracy_level`` 4): int8 arithmetic
    whose blockwise scales keep the outliers of the GELU outputs (per-tensor dynamic
    quantisation lost cosine 0.01 on short texts). ``fp32``: plain ``MatMul``."""
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

    def matmul(x: str, weight: npt.NDArray[np.float32], out: str) -> str:
        """x @ weight.T for an (out, in) weight, without its bias."""
        if precision == "fp32":
            return node("MatMul", [x, init(f"{out}.w", weight.T)], out)
        n, k = weight.shape
        q, scale = _blockwise_int8(weight)
        return node(
            "MatMulNBits",
            [x, init(f"{out}.q", q), init(f"{out}.s", scale)],
            out,
            domain=_MS,
            K=k,
            N=n,
            bits=8,
            block_size=BLOCK,
            accuracy_level=4,
        )

    # Embeddings: word + position + token type 0, then LayerNorm.
    word = init("word", w["embeddings.word_embeddings.weight"])
    # token type 0 is the same row for every token: fold it into the position table
    pos = init(
        "pos",
        w["embeddings.position_embeddings.weight"]
        + w["embeddings.token_type_embeddings.weight"][0][None, :],
    )
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
    node("Cast", ["attention_mask"], "mask_i32", to=TensorProto.INT32)
    for i in range(layers):
        p = f"encoder.layer.{i}"
        a = f"{p}.attention"
        # Q, K and V in one product, then split (packed QKV is not implemented on CPU)
        packed = np.concatenate([w[f"{a}.self.{n}.weight"] for n in ("query", "key", "value")])
        packed_b = np.concatenate([w[f"{a}.self.{n}.bias"] for n in ("query", "key", "value")])
        qkv = matmul(x, packed, f"l{i}.qkv")
        qkv = node("Add", [qkv, init(f"l{i}.qkv.b", packed_b)], f"l{i}.qkv_b")
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
            [f"l{i}.q", f"l{i}.k", f"l{i}.v", "", "mask_i32"],
            f"l{i}.ctx",
            domain=_MS,
            num_heads=heads,
        )
        proj = matmul(ctx, w[f"{a}.output.dense.weight"], f"l{i}.proj")
        x = node(
            "SkipLayerNormalization",
            [
                proj,
                x,
                init(f"l{i}.ln1.g", w[f"{a}.output.LayerNorm.weight"]),
                init(f"l{i}.ln1.b", w[f"{a}.output.LayerNorm.bias"]),
                init(f"l{i}.proj.b", w[f"{a}.output.dense.bias"]),
            ],
            f"l{i}.attn_out",
            domain=_MS,
            epsilon=eps,
        )
        up = matmul(x, w[f"{p}.intermediate.dense.weight"], f"l{i}.up")
        act = node(
            "BiasGelu",
            [up, init(f"l{i}.up.b", w[f"{p}.intermediate.dense.bias"])],
            f"l{i}.gelu",
            domain=_MS,
        )
        down = matmul(act, w[f"{p}.output.dense.weight"], f"l{i}.down")
        x = node(
            "SkipLayerNormalization",
            [
                down,
                x,
                init(f"l{i}.ln2.g", w[f"{p}.output.LayerNorm.weight"]),
                init(f"l{i}.ln2.b", w[f"{p}.output.LayerNorm.bias"]),
                init(f"l{i}.down.b", w[f"{p}.output.dense.bias"]),
            ],
            f"l{i}.out",
            domain=_MS,
            epsilon=eps,
        )
    # Mean pooling over real tokens, then L2 normalisation.
    node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    init("axis2", np.array([2], dtype=np.int64))
    init("axis1", np.array([1], dtype=np.int64))
    node("Unsqueeze", ["mask_f", "axis2"], "mask3")
    node("Mul", [x, "mask3"], "masked")
    node("ReduceSum", ["masked", "axis1"], "summed", keepdims=0)
    node("ReduceSum", ["mask3", "axis1"], "count", keepdims=0)
    init("tiny", np.array(1e-9, dtype=np.float32))
    node("Max", ["count", "tiny"], "count_safe")
    node("Div", ["summed", "count_safe"], "pooled")
    node("LpNormalization", ["pooled"], "embedding", axis=-1, p=2)

    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "length"]),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", hidden])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(_MS, 1)],
        producer_name="self-learning-memory",
    )
    model.ir_version = 8
    return bytes(model.SerializeToString())
