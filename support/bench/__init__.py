"""Benchmarks of the tester itself (make bench)."""
