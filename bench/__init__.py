"""Benchmarks. Each module has ``run() -> str`` returning a Markdown section; ``bench/run_all.py`` runs them all."""
