"""Run every benchmark and write docs/benchmarks.md.

Usage: ``make bench`` (or ``.venv/bin/python bench/run_all.py [--only trace,forward]``).
With ``--only``, the chosen sections replace their namesakes in the existing file and the
other sections are kept.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODULES = ["trace", "forward", "create", "explorer", "accuracy", "mixed_precision", "pruning"]
HEADER = """# Benchmarks

Produced by `make bench` (`.venv/bin/python bench/run_all.py`) on {date}, {machine}, torch {torch},
2 threads. Absolute times on these shared machines are noisy; the ratios in each section were measured
within one run and are the figures to compare (`--only trace,forward` refreshes just those sections).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default="", help="comma-separated subset of " + ",".join(MODULES))
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    import torch

    chosen = [m for m in MODULES if not args.only or m in args.only.split(",")]
    sections = []
    for name in chosen:
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"running bench_{name} ...", flush=True)
        section = module.run()
        print(section, flush=True)
        sections.append(section)
    header = HEADER.format(
        date=datetime.date.today().isoformat(),
        machine=f"{platform.machine()} {os.cpu_count()} cores",
        torch=torch.__version__,
    )
    out = Path(args.output)
    if args.only and out.exists():
        sections = _merged(_sections(out.read_text()), sections)
    text = header + "\n" + "\n\n".join(sections) + "\n"
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".bench-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, out)
    print(f"wrote {out}")


def _sections(text: str) -> list[str]:
    """The ``## `` sections of a benchmarks page (the header before the first one is dropped)."""
    parts = ("\n" + text).split("\n## ")[1:]
    return ["## " + part.strip("\n") for part in parts]


def _merged(old: list[str], new: list[str]) -> list[str]:
    """``old`` with each section of ``new`` in place of the one with the same heading (or appended)."""
    fresh = {section.splitlines()[0]: section for section in new}
    merged = [fresh.pop(section.splitlines()[0], section) for section in old]
    return merged + list(fresh.values())


if __name__ == "__main__":
    main()
