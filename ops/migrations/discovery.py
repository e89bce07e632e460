"""Discovery: ``sql/<database>/migrations/<version>_<slug>/{up,down,verify}.sql`` → ordered migrations.

Order is numeric on the version (an integer, zero-padded or not, or a timestamp such as
``20250112093000``), never lexical. Every problem in the folder is collected and reported at once
(patroni ``config.py`` habit): malformed names, duplicate versions, missing ``up.sql``, unexpected
files, SQL the parser rejects, and a ``verify.sql`` whose statements do not return the
``(check, passed, detail)`` shape.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from pglast import ast

from ..errors import DiscoveryError
from .models import Migration
from .script import Script, ScriptError, parse_script

FOLDER = re.compile(r"^(\d{1,18})_([A-Za-z0-9][A-Za-z0-9_.-]*)$")
DATABASE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
KNOWN_FILES = {"up.sql", "down.sql", "verify.sql"}
IGNORED = {"README.md", "README", ".gitkeep"}


def checksum_of(data: bytes) -> str:
    """sha256 hex digest of a file's exact bytes."""
    return hashlib.sha256(data).hexdigest()


def verify_shape_problems(script: Script) -> list[str]:
    """Problems with a verify script: every statement must be a read-only SELECT/VALUES/WITH
    returning exactly three columns ``(check text, passed boolean, detail text)``."""
    problems = []
    for st in script.statements:
        node = st.node
        if not isinstance(node, ast.SelectStmt):
            problems.append(f"statement {st.index} (line {st.line}) is {st.kind}; verify.sql may only SELECT")
            continue
        while node.op is not None and int(node.op) != 0 and node.larg is not None:  # UNION / INTERSECT / EXCEPT
            node = node.larg
        if node.valuesLists:
            widths = {len(v) for v in node.valuesLists}
            if widths != {3}:
                problems.append(f"statement {st.index} (line {st.line}) returns {sorted(widths)} columns, "
                                f"expected 3 (check, passed, detail)")
            continue
        targets = node.targetList or ()
        if any(isinstance(t.val, ast.ColumnRef) and any(isinstance(f, ast.A_Star) for f in t.val.fields)
               for t in targets):
            problems.append(f"statement {st.index} (line {st.line}) selects *; name the three columns check, passed, detail")
        elif len(targets) != 3:
            problems.append(f"statement {st.index} (line {st.line}) returns {len(targets)} columns, "
                            f"expected 3 (check, passed, detail)")
    return problems


def discover(root: Path) -> list[Migration]:
    """Read every migration under ``root`` (a ``migrations`` folder) in numeric version order.

    A missing ``root`` is an empty chain. Raises :class:`DiscoveryError` listing every problem.
    """
    if not root.is_dir():
        return []
    problems: list[str] = []
    found: dict[int, Migration] = {}
    for entry in sorted(root.iterdir()):
        if entry.name in IGNORED or entry.name.startswith("."):
            continue
        m = FOLDER.match(entry.name)
        if not entry.is_dir() or not m:
            problems.append(f"{entry.name}: not a migration folder named <version>_<slug> "
                            f"(e.g. 0007_add_orders or 20250112093000_add_orders)")
            continue
        version, name = int(m.group(1)), m.group(2)
        if version in found:
            problems.append(f"{entry.name}: duplicate version {version} (also {found[version].folder})")
            continue
        for extra in sorted(p.name for p in entry.iterdir() if p.name not in KNOWN_FILES | IGNORED):
            problems.append(f"{entry.name}/{extra}: unexpected file (expected up.sql, down.sql, verify.sql)")
        up_path = entry / "up.sql"
        if not up_path.is_file():
            problems.append(f"{entry.name}: missing up.sql")
            continue
        scripts: dict[str, Script | None] = {}
        up_bytes = up_path.read_bytes()
        up_sum = checksum_of(up_bytes)
        up_text = ""
        for fname in ("up.sql", "down.sql", "verify.sql"):
            path = entry / fname
            if not path.is_file():
                scripts[fname] = None
                continue
            try:
                # one decoded copy of each file: the statements are offsets into it
                text = (up_bytes if fname == "up.sql" else path.read_bytes()).decode("utf-8")
                if fname == "up.sql":
                    up_text, up_bytes = text, b""
                scripts[fname] = parse_script(text)
            except UnicodeDecodeError:
                problems.append(f"{entry.name}/{fname}: not UTF-8 text")
                scripts[fname] = None
            except ScriptError as exc:
                problems.append(f"{entry.name}/{fname}: {exc}")
                scripts[fname] = None
        verify = scripts["verify.sql"]
        if verify is not None:
            problems.extend(f"{entry.name}/verify.sql: {p}" for p in verify_shape_problems(verify))
        if scripts["up.sql"] is None:
            continue
        found[version] = Migration(version, name, entry, up_text, scripts["up.sql"], up_sum,
                                   scripts["down.sql"], verify)
    if problems:
        raise DiscoveryError(str(root), problems)
    return [found[v] for v in sorted(found)]


def list_databases(sql_root: Path) -> list[str]:
    """Names of the managed databases: every ``<sql_root>/<name>/migrations`` folder, sorted.

    Raises :class:`DiscoveryError` for a folder whose name is not a plain PostgreSQL identifier.
    """
    if not sql_root.is_dir():
        return []
    names, problems = [], []
    for entry in sorted(sql_root.iterdir()):
        if (entry / "migrations").is_dir():
            if DATABASE.match(entry.name):
                names.append(entry.name)
            else:
                problems.append(f"{entry.name}: database folder names must match {DATABASE.pattern}")
    if problems:
        raise DiscoveryError(str(sql_root), problems)
    return names
