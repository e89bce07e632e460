"""Pulumi entry point (Pulumi.yaml: main: infra/): read typed config, build the stack.

The CLI passes every config value as a string (plain strings as they are, numbers and bools as
text, lists as JSON text), so each key is read with ``Config.get`` and decoded by
:func:`infra.config.parse_cli_config` — never ``get_object`` (``dev`` is not JSON)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pulumi  # noqa: E402

from infra.config import CONFIG_KEYS, ConfigInvalid, parse_cli_config  # noqa: E402
from infra.program import build  # noqa: E402

_cfg = pulumi.Config("pgops")
try:
    strings = {f"pgops:{k}": v for k in CONFIG_KEYS if (v := _cfg.get(k)) is not None}
    config = parse_cli_config(pulumi.get_stack(), strings, pulumi.Config("aws").get("region"))
except ConfigInvalid as exc:
    raise pulumi.RunError(str(exc)) from None
build(config, _cfg.require_secret("masterPassword"))
