"""Benchmarking: resolve targets, run each in an isolated worker, build the report."""
