"""Test data that lives in the repository; tests read nothing outside the checkout."""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent

NNCF_RESNET18_GOLDEN = DATA_DIR / "nncf_golden" / "resnet18.json"
"""NNCF 2.19's traced graph and quantizer setup for ResNet-18 (see ``nncf_golden/README.md``)."""
