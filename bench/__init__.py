"""Benchmarks: real work, printed as a table and written as JSON under ``bench/results/``."""
