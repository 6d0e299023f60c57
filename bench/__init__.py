"""Benchmarks: each module has ``run() -> str`` returning a Markdown section.

``bench/run_all.py`` runs them all and writes docs/benchmarks.md.
"""
