"""Retrieval-quality benchmark: a labelled corpus of agent episodes and paraphrased queries,
hit@1, MRR, recall@10 and nDCG@10 per retrieval mode (``python -m benchmarks.retrieval_quality``).
"""
