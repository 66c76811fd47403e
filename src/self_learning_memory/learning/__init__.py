"""Learning from a completed episode: reward, reflection, pattern and heuristic extraction,
the merge of a new pattern into its aggregate, and the durable learning queue. Computes what
changes; the stores only write it."""
