"""Statistically honest analysis of numeric series (extra ``analysis``).

Nothing here is imported by ``import self_learning_memory``: callers import
``self_learning_memory.analysis.statistical`` explicitly, which pulls in scipy and ruptures.
``validation`` depends only on the standard library.
"""
