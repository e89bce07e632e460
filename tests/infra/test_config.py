"""Typed stack config: both stack files parse; every error is reported at once."""
from pathlib import Path

import pytest
import yaml

from infra.config import ConfigInvalid, parse_config

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_files_parse(stack):
    cfg = parse_config(stack, yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"])
    assert cfg.deletion_protection and cfg.backup_retention_days >= 7
    assert (cfg.multi_az, cfg.replica_count, bool(cfg.cross_region)) == ((False, 1, False) if stack == "dev" else (True, 2, True))


def test_every_problem_at_once():
    with pytest.raises(ConfigInvalid) as info:
        parse_config("prod", {"aws:region": "eu-west-1", "pgops:environment": "prod", "pgops:deletionProtection": False,
                              "pgops:backupRetentionDays": 3, "pgops:allowedCidrs": ["0.0.0.0/0"],
                              "pgops:replicaCount": 9, "pgops:allocatedStorageGb": 200, "pgops:maxAllocatedStorageGb": 100,
                              "pgops:instanceClass": "db.x2iedn.24xlarge"})
    text = "\n".join(info.value.problems)
    for needle in ("vpcId is required", "subnetIds is required", "backupRetentionDays must be at least 7",
                   "deletionProtection cannot be false in prod", "0.0.0.0/0", "replicaCount must be 0..5",
                   "maxAllocatedStorageGb must be at least", "vcpus is required", "memoryGb is required"):
        assert needle in text, needle


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_managed_database_is_watched_on_aws(stack):
    """The backup-age and drill-age alarms are made per database in `pgops:databases`: every folder
    under sql/ that deploy manages must be there, or its backups could stop unnoticed on AWS."""
    from ops.migrations.discovery import list_databases
    doc = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())
    assert set(doc["config"]["pgops:databases"]) == set(list_databases(REPO / "sql"))
