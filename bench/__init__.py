"""Benchmark scripts: each prints its figures, the key ones as name=value on its last line."""
