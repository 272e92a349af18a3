"""Benchmarks (``python3 dev.py bench``; see BENCHMARKS.md). Not collected by pytest."""
