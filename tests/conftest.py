"""Tier marks by folder: tests/unit → unit (no I/O), tests/integration → integration (real PostgreSQL),
tests/gameday → gameday (a fault on a fresh local stack, the runbook's own commands, health ok again).

Fast tier alone: ``.venv/bin/python -m pytest -m unit``.
"""
from pathlib import Path

import pytest

TIERS = {"unit": pytest.mark.unit, "integration": pytest.mark.integration, "infra": pytest.mark.infra,
         "aws": pytest.mark.aws, "gameday": pytest.mark.gameday}


def pytest_collection_modifyitems(items):
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in TIERS:
            item.add_marker(TIERS[tier])


@pytest.fixture
def moto_aws(monkeypatch):
    """In-process moto for every AWS API, with fake credentials and no real endpoint or profile."""
    from moto import mock_aws
    for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        yield
