"""Benchmarks: each measures streamer against its baselines in the same process and reports ratios."""
