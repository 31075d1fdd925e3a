"""Benchmarks: not part of the test suite (run them by hand, see bench/README.md)."""
