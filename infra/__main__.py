"""Pulumi entry point (Pulumi.yaml: main: infra/): read typed config, build the stack."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pulumi  # noqa: E402

from infra.config import CONFIG_KEYS, ConfigInvalid, parse_config  # noqa: E402
from infra.program import build  # noqa: E402

_cfg = pulumi.Config("pgops")
try:
    raw = {f"pgops:{k}": v for k in CONFIG_KEYS if (v := _cfg.get_object(k)) is not None}
    config = parse_config(pulumi.get_stack(), raw, pulumi.Config("aws").get("region"))
except ConfigInvalid as exc:
    raise pulumi.RunError(str(exc)) from None
build(config, _cfg.require_secret("masterPassword"))
