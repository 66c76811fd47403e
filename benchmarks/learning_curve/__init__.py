"""Learning-payoff benchmark: a seeded simulated agent with and without a memory, success rate per
window of 10 episodes (``python -m benchmarks.learning_curve``).
"""
