"""``infra/__main__.py`` itself, with config exactly as the Pulumi CLI hands it to a Python program
(issue 9 §5): ``PULUMI_CONFIG`` is a JSON object mapping ``"project:key"`` to a *string* — plain
strings as they are, numbers and bools as their text, lists as JSON text — and the secret keys are
listed in ``PULUMI_CONFIG_SECRET_KEYS`` (see ``pulumi.runtime.config.get_config``). Before the fix
the entry point called ``get_object`` on every key and died on ``pgops:environment: dev``."""
from __future__ import annotations

import json
import runpy
from pathlib import Path

import pulumi
import pytest
import yaml

from tests.infra.test_stack import PASSWORD, Recorder

REPO = Path(__file__).resolve().parents[2]
ENTRY = REPO / "infra" / "__main__.py"


def cli_config(stack: str) -> dict[str, str]:
    """``Pulumi.<stack>.yaml``'s config serialized the way the CLI passes it to the language host."""
    def as_cli_string(v) -> str:
        if isinstance(v, str):
            return v
        if isinstance(v, bool):
            return "true" if v else "false"
        return json.dumps(v, separators=(",", ":"))  # numbers as their text, lists/objects as JSON
    raw = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {k: as_cli_string(v) for k, v in raw.items()}


def run_entry_point(monkeypatch, stack: str, config: dict[str, str]) -> Recorder:
    rec = Recorder()
    pulumi.runtime.set_mocks(rec, project="pgops", stack=stack, preview=False)
    pulumi.runtime.set_all_config({}, [])  # nothing set in-process: the program reads the CLI's variables
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(config))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["pgops:masterPassword"]))

    @pulumi.runtime.test
    def run():
        runpy.run_path(str(ENTRY), run_name="__main__")
    run()
    return rec


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_entry_point_builds_the_stack_from_cli_config(monkeypatch, stack):
    config = {**cli_config(stack), "pgops:masterPassword": PASSWORD}
    assert config["pgops:environment"] == stack and config["pgops:subnetIds"].startswith('["')
    rec = run_entry_point(monkeypatch, stack, config)
    primary = rec.named("aws:rds/instance:Instance", "pg-primary")
    replicas = [s for t, n, s in rec.resources if t == "aws:rds/instance:Instance" and n != "pg-primary"]
    raw = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"]
    assert primary["instanceClass"] == raw["pgops:instanceClass"]
    assert primary["allocatedStorage"] == raw["pgops:allocatedStorageGb"]
    assert primary["multiAz"] is raw["pgops:multiAz"]
    assert primary["backupRetentionPeriod"] == raw["pgops:backupRetentionDays"]
    assert len([r for r in replicas if r.get("replicateSourceDb")]) == raw["pgops:replicaCount"]
    assert rec.of("aws:s3/bucket:Bucket") and rec.of("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert PASSWORD not in json.dumps([s for t, _, s in rec.resources if t != "aws:rds/instance:Instance"
                                       and t != "aws:secretsmanager/secretVersion:SecretVersion"], default=str)


@pytest.mark.parametrize("bad, expected", [
    ({"pgops:subnetIds": "subnet-a"}, "pgops:subnetIds must be a list"),
    ({"pgops:multiAz": "flase"}, "pgops:multiAz must be true or false"),
    ({"pgops:allocatedStorageGb": "twenty"}, "pgops:allocatedStorageGb must be a number"),
    ({"pgops:environment": "staging", "pgops:backupRetentionDays": "3"},
     "pgops:environment must be dev or prod"),
])
def test_entry_point_reports_every_config_error(monkeypatch, bad, expected):
    config = {**cli_config("dev"), "pgops:masterPassword": PASSWORD, **bad}
    with pytest.raises(pulumi.RunError) as info:
        run_entry_point(monkeypatch, "dev", config)
    assert expected in str(info.value)
    if "pgops:backupRetentionDays" in bad:
        assert "pgops:backupRetentionDays must be at least 7" in str(info.value)  # all at once


def test_entry_point_without_the_master_password_names_the_key(monkeypatch):
    with pytest.raises(Exception) as info:
        run_entry_point(monkeypatch, "dev", cli_config("dev"))
    assert "pgops:masterPassword" in str(info.value)
