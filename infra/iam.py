"""IAM documents the stack's components share."""
from __future__ import annotations

import json


def assume_role_policy(service: str) -> str:
    """The trust policy that lets the AWS service principal ``service`` (e.g.
    ``ecs-tasks.amazonaws.com``) assume a role: IAM User Guide, "Creating a role for an AWS service"."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})
