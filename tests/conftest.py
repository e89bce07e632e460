"""Tier marks by folder: tests/unit → unit (no I/O), tests/integration → integration (real PostgreSQL).

Fast tier alone: ``.venv/bin/python -m pytest -m unit``.
"""
from pathlib import Path

import pytest

TIERS = {"unit": pytest.mark.unit, "integration": pytest.mark.integration, "infra": pytest.mark.infra,
         "aws": pytest.mark.aws}


def pytest_collection_modifyitems(items):
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in TIERS:
            item.add_marker(TIERS[tier])
