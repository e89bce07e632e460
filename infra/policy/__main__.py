"""pgops policy pack: `pulumi preview --policy-pack infra/policy` enforces every rule as mandatory."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pulumi_policy import EnforcementLevel, PolicyPack, ResourceValidationPolicy  # noqa: E402

from infra.policy.rules import RULES  # noqa: E402

PolicyPack(
    name="pgops",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[ResourceValidationPolicy(name=r.name, description=r.description, validate=r.validate) for r in RULES],
)
