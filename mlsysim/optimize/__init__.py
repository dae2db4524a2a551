"""Searches over configs (batching now; parallelism and placement come with training)."""
