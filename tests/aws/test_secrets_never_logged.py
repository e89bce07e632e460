"""A DEBUG run reading the stack's master secret (moto) never shows the password: not in the log
stream, not on stdout/stderr, not in any file written, not in the repr of the resulting AwsTarget
(issue 9 §4). botocore logs the ``GetSecretValue`` response body at DEBUG, so the run with
``botocore=DEBUG`` proves the redaction filter, not only the quiet default."""
from __future__ import annotations

import io
import json
import logging

import boto3
import pytest

from ops.settings import from_options
from ops.targets import AwsClients, AwsTarget
from ops.logs import QUIET_LOGGERS, configure_logging
from ops.secrets import forget_secrets

PASSWORD = "M@ster:pa ss/w0rd'\"\\=&x9"


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, {n: logging.getLogger(n).level for n in QUIET_LOGGERS})
    forget_secrets()  # the password must be caught by the rules, not because an earlier test registered it
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for n, lvl in saved[2].items():
        logging.getLogger(n).setLevel(lvl)
    forget_secrets()


def _stack(rds_network):
    sm = boto3.client("secretsmanager")
    arn = sm.create_secret(Name="pgops-dev-master",
                           SecretString=json.dumps({"username": "pgops_admin", "password": PASSWORD}))["ARN"]
    outputs = {"primary_id": rds_network.primary, "primary_endpoint": "pgops-dev-primary.x.rds.amazonaws.com",
               "primary_port": 5432, "replica_ids": [], "replica_endpoints": ["r1.x.rds.amazonaws.com"],
               "master_secret_arn": arn, "region": "eu-west-1", "backup_repository": "s3://b/pgops"}
    return outputs, AwsClients(boto3.client("rds"), sm)


def _leaks(text: str) -> bool:
    from urllib.parse import quote
    return any(form in text for form in (PASSWORD, json.dumps(PASSWORD)[1:-1], quote(PASSWORD, safe=""), "pa ss/w0rd"))


@pytest.mark.parametrize("spec", ["DEBUG", "DEBUG,botocore=DEBUG,urllib3=DEBUG"])
def test_debug_run_logs_and_output_never_show_the_master_password(rds_network, restore_logging, capfd, tmp_path,
                                                                   monkeypatch, spec):
    monkeypatch.chdir(tmp_path)
    outputs, clients = _stack(rds_network)
    stream = io.StringIO()
    configure_logging(spec, stream=stream)
    configure_logging(spec)  # and the default stream (stderr), replacing the first handler
    configure_logging(spec, stream=stream)
    env = AwsTarget.from_outputs(from_options({}, stack="dev"), "dev", outputs, clients, sslrootcert="/ca.pem")
    logging.getLogger("ops.test").debug("primary params %s, env %r", env.primary, env)
    logged = stream.getvalue()
    out, err = capfd.readouterr()
    files = "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())
    if "botocore=DEBUG" in spec:  # the body was logged (so a leak would have been seen) and redacted
        assert "SecretString" in logged and "Response body" in logged
    else:
        assert "Response body" not in logged  # botocore stays at WARNING unless named
    for where, text in (("log stream", logged), ("stdout", out), ("stderr", err), ("files", files)):
        assert not _leaks(text), f"master password in {where}"
    assert logged.count("ops.test") == 1


def test_target_repr_never_shows_the_master_password(rds_network, restore_logging):
    outputs, clients = _stack(rds_network)
    env = AwsTarget.from_outputs(from_options({}, stack="dev"), "dev", outputs, clients)
    rendered = [repr(env), str(env), repr(env.primary), repr(env.replicas), f"{env.primary}",
                json.dumps(env.primary, default=str)]
    assert not any(_leaks(r) for r in rendered)
