"""Keyword-spotting evaluation: events from score streams, DET curves, operating points (numpy only, no torch)."""
