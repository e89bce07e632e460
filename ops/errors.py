"""The one exception tree every pgops failure belongs to.

Modelled on patroni ``exceptions.py`` and alembic's ``MultipleHeads``: one root, domain subclasses
that carry the data a caller needs, caught only at the task edge (``ops.cli.run_task``) and mapped to
an exit code there. Every message names the object, what happened and the next command to run, and
never contains a password (see :func:`ops.dsn.redact`).
"""
from __future__ import annotations

_UNNAMED = {"\n": "LINE FEED", "\r": "CARRIAGE RETURN", "\t": "TAB", "\x1b": "ESCAPE", "\x00": "NUL"}


def char_name(ch: str) -> str:
    """How a message names one character of a value it does not quote (the value may be a secret):
    ``U+000A (LINE FEED)``, ``U+0025 (PERCENT SIGN)`` — the Unicode name (``unicodedata.name``; control
    characters have none, so the common ones are named here)."""
    import unicodedata
    return f"U+{ord(ch):04X} ({unicodedata.name(ch, '') or _UNNAMED.get(ch, 'a control character')})"


class OpsError(Exception):
    """Root of every expected pgops failure.

    ``exit_code`` is what the task exits with; ``hint`` is the next command to run (may be empty).
    """

    exit_code = 1

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # the one paragraph a user reads
        return f"{self.message} Next: {self.hint}" if self.hint else self.message


class ConfigError(OpsError):
    """Bad option or configuration value; ``problems`` lists every problem found at once."""

    exit_code = 2

    def __init__(self, problems: list[str], hint: str = ""):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems), hint)


class LocalStackError(OpsError):
    """The local stack cannot be brought up, inspected or stopped."""

    exit_code = 3


class PortBusy(LocalStackError):
    """A loopback port the local stack needs is taken by another process."""

    def __init__(self, port: int, node: str, setting: str):
        self.port = port
        self.node = node
        super().__init__(
            f"Port {port} on 127.0.0.1, needed by local node '{node}', is already in use by another process.",
            f"stop that process, or choose other ports with {setting}, then run `invoke local.up`.",
        )


class ConnectError(OpsError):
    """A database cannot be reached; the DSN in the message is always redacted."""

    exit_code = 4


class ConnectionLost(ConnectError):
    """The server went away mid-task (crash, restart, failover, network cut)."""

    def __init__(self, database: str, what: str, error: str):
        self.database, self.what, self.error = database, what, error
        super().__init__(
            f"Database '{database}': the connection to the server was lost during {what} ({error.strip()}). "
            "A transaction in flight was rolled back by the server; a non-transactional migration is recorded "
            "as dirty up to its last committed statement.",
            f"check the server is up (`invoke local.status` for the local stack), then run "
            f"`invoke db.status --db {database}` and `invoke db.migrate --db {database}` (add --resume when it is dirty).")


class MigrationError(OpsError):
    """Base of every migration-engine failure."""

    exit_code = 5


class DiscoveryError(MigrationError):
    """The migration folder is malformed; ``problems`` lists every problem at once."""

    def __init__(self, root: str, problems: list[str]):
        self.root = root
        self.problems = list(problems)
        lines = "\n  - ".join(self.problems)
        super().__init__(
            f"Migrations under {root} are malformed ({len(self.problems)} problem(s)):\n  - {lines}\n",
            "fix the files above, then run `invoke db.status` to check.",
        )


class MigrationFailed(MigrationError):
    """A migration's statement failed; a transactional migration was rolled back whole."""

    def __init__(self, database: str, version: int, name: str, statement: int, line: int,
                 error: str, hint: str = "", folder: str | None = None, file: str = "up.sql"):
        self.database, self.version, self.name = database, version, name
        self.statement, self.line, self.error = statement, line, error
        folder = folder or f"{version}_{name}"
        super().__init__(
            f"Database '{database}': migration {folder} failed at statement {statement} "
            f"({file} line {line}): {error}. The migration was rolled back; the ledger and schema are unchanged.",
            hint or f"fix {folder}/{file}, then run `invoke db.migrate --db {database}`.",
        )


class DirtyDatabase(MigrationError):
    """A non-transactional migration stopped part-way; the database is marked dirty in the ledger."""

    def __init__(self, database: str, version: int, name: str, done: int, total: int,
                 failed: int | None, error: str, invalid_indexes: list[str] | None = None):
        self.database, self.version, self.name = database, version, name
        self.done, self.total, self.failed, self.error = done, total, failed, error
        self.invalid_indexes = list(invalid_indexes or [])
        ran = f"statements 1..{done} of {total} ran and committed" if done else f"none of its {total} statements committed"
        failed_txt = f"; statement {failed} failed: {error}" if failed else f": {error}"
        invalid = (f" INVALID indexes left by a failed CONCURRENTLY build: {', '.join(self.invalid_indexes)}."
                   if self.invalid_indexes else "")
        super().__init__(
            f"Database '{database}' is dirty at non-transactional migration {version}_{name}: {ran}{failed_txt}.{invalid}",
            f"either finish it with `invoke db.migrate --db {database} --resume` (re-runs from statement "
            f"{(failed or done + 1)}, dropping INVALID indexes it rebuilds) or undo it with "
            f"`invoke db.rollback --db {database} --steps 1`.",
        )


class ChecksumDrift(MigrationError):
    """Applied migrations whose up.sql changed on disk since they were applied (Flyway validate)."""

    def __init__(self, database: str, drifted: list[tuple[int, str, str, str]]):
        self.database = database
        self.drifted = drifted  # (version, name, ledger checksum, disk checksum)
        names = ", ".join(f"{v}_{n} (ledger {a[:12]}…, disk {b[:12]}…)" for v, n, a, b in drifted)
        first = drifted[0][0]
        super().__init__(
            f"Database '{database}': applied migration(s) changed on disk since they were applied: {names}.",
            f"restore the original up.sql, or if the change is intended run "
            f"`invoke db.migrate --db {database} --accept-changed {first}`.",
        )


class OutOfOrder(MigrationError):
    """A pending migration is older than the newest applied one."""

    def __init__(self, database: str, pending: list[int], newest_applied: int):
        self.database, self.pending, self.newest_applied = database, pending, newest_applied
        super().__init__(
            f"Database '{database}': pending migration(s) {', '.join(map(str, pending))} are older than the newest "
            f"applied migration {newest_applied}.",
            f"renumber them above {newest_applied}, or run `invoke db.migrate --db {database} --allow-out-of-order`.",
        )


class LockHeld(MigrationError):
    """Another runner holds the database's migration advisory lock past the wait limit."""

    def __init__(self, database: str, waited: float, holder: dict | None):
        self.database, self.waited, self.holder = database, waited, holder
        who = (f"pid {holder.get('pid')}, application_name '{holder.get('application_name')}', "
               f"holding since {holder.get('since')}" if holder else "a session that has since gone")
        super().__init__(
            f"Database '{database}': another migration runner holds the pgops advisory lock ({who}); "
            f"waited {waited:.0f} s.",
            "wait for it to finish and run the command again, or raise --lock-wait.",
        )


class PreflightRefused(MigrationError):
    """Long-running or idle-in-transaction sessions would block the migration's locks."""

    def __init__(self, database: str, blockers: list[dict]):
        self.database, self.blockers = database, blockers
        desc = "; ".join(
            f"pid {b['pid']} ({b['application_name'] or 'no application_name'}, {b['state']}, "
            f"transaction open {b['xact_age_s']:.0f} s)" for b in blockers)
        super().__init__(
            f"Database '{database}': preflight found {len(blockers)} session(s) that would block migration locks: {desc}.",
            "end them with `invoke db.terminate --check long_transaction --yes` (sessions idle in a transaction: "
            "`--check idle_in_transaction`), or rerun with `--preflight wait` / `--preflight skip`.",
        )


class RollbackRefused(MigrationError):
    """A rollback cannot go ahead (no down.sql, nothing to roll back, bad target)."""


class VerifyFailed(MigrationError):
    """One or more verify.sql checks returned passed = false; ``results`` holds every row."""

    def __init__(self, database: str, failed: list[tuple[str, str, str]], results: list | None = None):
        self.database, self.failed, self.results = database, failed, results or []
        names = "; ".join(f"{m}: {c} ({d})" for m, c, d in failed)
        super().__init__(
            f"Database '{database}': {len(failed)} verify check(s) failed: {names}.",
            f"inspect with `invoke db.verify --db {database}`; to undo the newest migration run "
            f"`invoke db.rollback --db {database} --steps 1`.",
        )


class LintFailed(MigrationError):
    """``--strict`` and lint found problems in pending migrations."""


class MigrationFailedUnlocated(MigrationFailed):
    """A transactional migration failed and was rolled back whole, but replaying its statements one
    by one (in a transaction that is always rolled back) did not fail, so no one statement is to
    blame: a deferred constraint checked at COMMIT, the ledger write, a lock or serialization
    conflict that has since cleared. ``statement`` and ``line`` are None."""

    def __init__(self, database: str, version: int, name: str, error: str, hint: str = "",
                 folder: str | None = None, file: str = "up.sql"):
        self.database, self.version, self.name = database, version, name
        self.statement, self.line, self.error = None, None, error
        folder = folder or f"{version}_{name}"
        MigrationError.__init__(
            self,
            f"Database '{database}': migration {folder} ({file}) failed: {error}. Replaying its statements "
            "one by one did not fail, so the failure cannot be located to one statement (a deferred "
            "constraint checked at COMMIT, the ledger write, or a lock or serialization conflict that has "
            "since cleared). The migration was rolled back; the ledger and schema are unchanged.",
            hint or f"run `invoke db.migrate --db {database}` again; if it fails the same way, look in "
                    f"{folder}/{file} for DEFERRABLE constraints and in `invoke db.status --db {database}` for the ledger.",
        )


class RetentionRefused(OpsError):
    """A prune would break a safety floor (more than half deleted, an empty listing, a clock in the future)."""

    exit_code = 6


class FutureBackup(RetentionRefused):
    """A backup's created_at lies in the future beyond :data:`tolerance`; never forceable."""

    def __init__(self, database: str, backups, now, tolerance):
        self.database = database
        self.backup_ids = [b.id for b in backups]
        where = f" of database '{database}'" if database else ""
        names = ", ".join(f"{b.id} (created_at {b.created_at.isoformat()})" for b in backups)
        super().__init__(
            f"Prune{where} stopped: backup(s) {names} claim a creation time after now "
            f"({now.isoformat()}) by more than {tolerance}; ordering by created_at cannot be trusted, "
            "so nothing of this database was deleted.",
            "fix the clock of the host that took it, check the manifest with `invoke backup.show ID`, "
            "then rerun `invoke backup.prune`.")


class EmptyRepository(RetentionRefused):
    """Prune found nothing at all (no manifest, no object) for the database(s) asked for: most
    likely a mistyped or empty repository URL. Never forceable (restic#4619)."""

    def __init__(self, url: str, databases: list[str]):
        self.url, self.databases = url, list(databases)
        what = (f"database(s) {', '.join(repr(d) for d in databases)}" if databases else "any database")
        super().__init__(f"The repository {url} holds no backups of {what}; refusing to prune an empty listing "
                         "(a mistyped repository URL looks exactly like this).",
                         f"check the URL with `invoke backup.list --repository {url}`.")


class PruneIncomplete(RetentionRefused):
    """Prune of some databases was refused or failed; the others were pruned. ``reports`` holds the
    databases that went through (``PruneReport``), ``failures`` maps each other database to its error."""

    def __init__(self, url: str, reports: list, failures: dict):
        self.url, self.reports, self.failures = url, list(reports), dict(failures)
        done = ", ".join(r.database for r in reports) or "none"
        why = " ".join(f"[{d}] {e}" for d, e in failures.items())
        super().__init__(f"Prune of {len(failures)} database(s) in {url} stopped: {why} "
                         f"The other databases were pruned: {done}.",
                         "fix each database named above, then rerun `invoke backup.prune`.")


class BackupError(OpsError):
    """Base of backup, repository, verify and restore failures."""

    exit_code = 7


class RepositoryError(BackupError):
    """The backup repository cannot be read or written (bad URL, permissions, a cut connection)."""


class BackupFailed(BackupError):
    """A backup could not be taken; the partial object was removed (no manifest, no backup)."""


class VerifyMismatch(BackupError):
    """A backup object does not match its manifest (size, sha256) or pg_restore cannot read it."""


class RestoreRefused(BackupError):
    """A restore would be unsafe (the stack's own server, a non-empty target, a physical backup)."""


class DrillAborted(OpsError):
    """A restore drill could not be started or finished (not a failed check: see DrillFailed)."""

    exit_code = 8


class ConfirmationRequired(ConfigError):
    """A destructive plan was not confirmed: no terminal to ask on and no ``--yes``. Nothing changed."""

    def __init__(self, what: str, rerun: str):
        self.what = what
        super().__init__([f"{what}: refusing to apply without a confirmation (no terminal to ask on and no --yes); "
                          "nothing was changed"], f"review the plan above, then run `{rerun}`.")


class DestructiveHeld(ConfigError):
    """Migrations that destroy data were held back under the advisory lock because the confirmed plan did
    not show them (they appeared after it was read). ``held``: (database, {"version", "name", "reasons"})."""

    def __init__(self, held: list[tuple[str, dict]], rerun: str):
        self.held = held
        what = "; ".join(f"database '{d}': {h['version']}_{h['name']} ({', '.join(h['reasons'])})" for d, h in held)
        super().__init__([f"{what}: held back, not applied: it destroys data and was not in the plan that was "
                          "confirmed; the migrations before it were applied"],
                         f"review the plan, then run `{rerun}`.")


class PlanAborted(OpsError):
    """The user answered no at the confirmation prompt. Nothing changed."""

    exit_code = 1

    def __init__(self, what: str):
        super().__init__(f"{what}: not confirmed; nothing was changed.")


class StackNotFound(ConfigError):
    """``--stack NAME`` names no ``Pulumi.<NAME>.yaml`` in the project."""

    def __init__(self, stack: str, known: list[str]):
        self.stack, self.known = stack, list(known)
        super().__init__([f"stack '{stack}' does not exist (no Pulumi.{stack}.yaml in the project)"],
                         f"choose one of: local, {', '.join(self.known) or '(no AWS stacks configured)'}; "
                         "a new AWS stack starts from a copy of Pulumi.dev.yaml.")


class PulumiMissing(OpsError):
    """The ``pulumi`` CLI the Automation API drives is not installed."""

    exit_code = 9

    def __init__(self, stack: str):
        super().__init__(
            f"Stack '{stack}' is an AWS stack managed by Pulumi, and the `pulumi` CLI is not installed on this "
            "machine (the Automation API drives it).",
            "install it with `curl -fsSL https://get.pulumi.com | sh` (or `brew install pulumi`), run "
            "`pulumi login` (or `pulumi login --local`), then rerun the command.")


class DrillFailed(OpsError):
    """One or more restore drills failed a check or could not restore; the reports say which."""

    exit_code = 8

    def __init__(self, reports):
        why = "; ".join(f"{r.database} from {r.backup_id}: " + (r.error or ", ".join(
            c.name for c in r.checks if not c.passed)) for r in reports)
        super().__init__(f"Restore drill failed: {why}.",
                         "read the report (`invoke drill.history`), then take a fresh backup with "
                         "`invoke backup.create` and drill it again.")


class CutoverError(OpsError):
    """Base of blue/green cutover failures: a refusal before the switch, a preparation or switchover
    that failed or timed out, a rollback that cannot be lossless. Blue is still the primary unless the
    message says otherwise."""

    exit_code = 10


class CutoverRefused(CutoverError):
    """A guard refused ``what`` before anything changed. ``guards`` holds every failed guard as
    ``{"name", "passed", "detail"}``."""

    def __init__(self, what: str, guards: list[dict], hint: str):
        self.what = what
        self.guards = [dict(g) for g in guards]
        why = "; ".join(f"{g['name']}: {g['detail']}" for g in self.guards)
        super().__init__(f"{what} refused before anything changed ({why}).", hint)


class DeploymentFailed(CutoverError):
    """A blue/green deployment is in a state it cannot be switched from (``INVALID_CONFIGURATION``,
    a failed task, an undocumented failure status); ``status``/``details``/``tasks`` are AWS's."""

    def __init__(self, deployment: str, status: str, details: str, tasks: list[dict], hint: str):
        self.deployment, self.status, self.details, self.tasks = deployment, status, details, list(tasks)
        failed = ", ".join(f"{t.get('Name')} {t.get('Status')}" for t in self.tasks
                           if t.get("Status") != "COMPLETED")
        super().__init__(
            f"Blue/green deployment {deployment} is {status}"
            + (f" ({details})" if details else "") + (f"; tasks not completed: {failed}" if failed else "")
            + ". It cannot be switched over; blue is still the primary and nothing was switched.", hint)


class CutoverTimeout(CutoverError):
    """Waiting for ``what`` took longer than ``waited_s`` seconds; ``state`` is the last one seen."""

    def __init__(self, what: str, waited_s: float, state: str, hint: str):
        self.what, self.waited_s, self.state = what, waited_s, state
        super().__init__(f"Timed out after {waited_s:.0f} s waiting for {what} (last seen: {state}).", hint)


class SwitchoverFailed(CutoverError):
    """A switchover was started and did not complete; AWS rolls a failed switchover back, so blue is
    still the primary."""

    def __init__(self, deployment: str, status: str, details: str, hint: str):
        self.deployment, self.status, self.details = deployment, status, details
        super().__init__(
            f"Switchover of blue/green deployment {deployment} did not complete: status {status}"
            + (f" ({details})" if details else "")
            + ". AWS rolls a failed switchover back, so blue is still the primary and takes writes.", hint)


class RollbackUnavailable(CutoverError):
    """A rollback that would not be lossless, refused (an RDS switchover cannot be reversed)."""

class CutoverUnverified(CutoverError):
    """A switch completed (the new side is primary) but its verification found a difference, or a
    verification run did: a script must tell this apart from a refusal, so it has its own exit code."""

    exit_code = 15


class CutoverAborted(CutoverError):
    """A switch went over its budget or failed midway: every step was undone, the pooler resumed,
    and the side that was primary still is. ``report`` holds the timed steps."""

    def __init__(self, message: str, hint: str, report: dict):
        self.report = report
        super().__init__(message, hint)


class RemedyError(OpsError):
    """A remedy task (``db.terminate``, ``db.drop-slot``, ``db.reindex-invalid``) refused, or its fix failed:
    an active or unknown slot, a REINDEX PostgreSQL rejected. ``obj`` names what it was about."""

    exit_code = 1

    def __init__(self, obj: str, message: str, hint: str):
        self.obj = obj
        super().__init__(message, hint)


class FailoverError(OpsError):
    """Base of switchover, promote and rejoin failures (``invoke failover.*``)."""

    exit_code = 11


class FailoverRefused(FailoverError):
    """A guard refused a switchover, promote or rejoin before anything changed. ``reasons`` lists
    every guard that failed, at once (Patroni's switchover checks: candidate streaming, lag within
    ``maximum_lag_on_failover``, same timeline)."""

    def __init__(self, what: str, reasons: list[str], hint: str):
        self.what, self.reasons = what, list(reasons)
        super().__init__(f"{what} refused: {'; '.join(self.reasons)}. Nothing was changed.", hint)


class FailoverFailed(FailoverError):
    """A failover step failed after changes began. ``step`` names it; the task edge appends what its
    unwinding did (pooler resumed, old primary restarted) to the message."""

    def __init__(self, step: str, error: str, hint: str):
        self.step, self.error = step, error
        super().__init__(f"{step} failed: {error}.", hint)



class PartitionError(OpsError):
    """Partition maintenance (``invoke db.partitions``) refused or a step failed; every step is one
    transaction (or one autocommit statement), so nothing is half-applied."""

    exit_code = 12


class PartitionLockTimeout(PartitionError):
    """A partition step kept hitting ``lock_timeout`` (SQLSTATE 55P03) through all its retries: the
    application's locks won every time, and the step changed nothing."""

    def __init__(self, what: str, lock_timeout_s: float, attempts: int):
        self.what, self.lock_timeout_s, self.attempts = what, lock_timeout_s, attempts
        super().__init__(f"{what}: lock_timeout ({lock_timeout_s:g} s) reached on each of {attempts} attempt(s); "
                         "the step was rolled back and the steps before it stay applied.",
                         "find the session holding the lock with `invoke health` (blocked_queries, long_transaction), "
                         "then rerun `invoke db.partitions --apply` (or raise --lock-timeout / --retries).")


class GdprError(OpsError):
    """A GDPR export or erasure (``invoke gdpr.*``) refused or failed; an erasure runs in one transaction,
    so a failed one changed nothing. ``user_id`` names the data subject."""

    exit_code = 12

    def __init__(self, user_id: str, message: str, hint: str):
        self.user_id = user_id
        super().__init__(message, hint)


class GdprConcurrentWriter(GdprError):
    """An erasure gave up because a concurrent session kept ``table`` (where rows of the subject live)
    locked against it through every attempt: a writer's ROW EXCLUSIVE (or stronger) lock against the
    erasure's SHARE ROW EXCLUSIVE one, or, with ``rows=True``, row locks on the subject's rows — each
    attempt waited ``lock_timeout_s`` (SQLSTATE 55P03) or lost a deadlock (40P01). The transaction was
    rolled back: nothing was erased. ``holders`` describes the sessions seen holding such locks;
    ``command`` is the exact command to run again."""

    def __init__(self, user_id: str, database: str, table: str, attempts: int, lock_timeout_s: float,
                 holders: list[str], command: str, rows: bool = False):
        self.database, self.table, self.attempts, self.lock_timeout_s = database, table, attempts, lock_timeout_s
        self.holders, self.command = list(holders), command
        what = (f"a concurrent session kept rows of user {user_id} in {table} locked" if rows else
                f"a concurrent writer kept inserting rows for user {user_id} into {table} (or held {table} "
                "locked for writing)")
        who = "; ".join(self.holders) or "it had finished by the time the locks were listed"
        super().__init__(user_id, f"Erasure of user {user_id} from database '{database}' gave up: {what} through "
                         f"{attempts} attempt(s) of lock_timeout {lock_timeout_s:g} s (held by: {who}). The "
                         "transaction was rolled back, nothing was erased.",
                         f"stop the writer or retry: `{command}`.")


class GdprWrittenAfterErasure(GdprError):
    """An erasure committed (everything of the subject present at the commit was erased, verified inside
    its transaction while the tables were locked against writers), but the export right after the
    commit finds rows of the subject written since: a writer still writes for the erased user.
    ``rows`` maps ``schema.table`` → rows found."""

    def __init__(self, user_id: str, database: str, rows: dict[str, int], command: str):
        self.database, self.rows, self.command = database, dict(rows), command
        found = ", ".join(f"{t}: {n}" for t, n in sorted(self.rows.items()))
        super().__init__(user_id, f"User {user_id} was erased from database '{database}' (committed and verified "
                         f"inside the erasure's transaction), but {sum(self.rows.values())} row(s) for the user were "
                         f"written after the commit ({found}): a concurrent writer is still writing rows for the "
                         "erased user.",
                         f"stop the writer (the application still acts for this user), then erase those rows: `{command}`.")


class TlsRequired(OpsError):
    """A connection to an AWS stack would not use TLS (``sslmode`` other than require, verify-ca or
    verify-full): refused before connecting. Seed 001 asks for SSL in production; the stack's parameter
    group forces it server-side too (``rds.force_ssl``)."""

    exit_code = 12

    def __init__(self, stack: str, node: str, sslmode: str):
        self.stack, self.node, self.sslmode = stack, node, sslmode
        super().__init__(f"Stack '{stack}': the connection to {node} would use sslmode={sslmode or 'unset'}, "
                         "which does not guarantee TLS; refused before connecting.",
                         "use sslmode=verify-full with the RDS CA bundle (the default: unset PGSSLMODE, set "
                         "PGOPS_RDS_CA_BUNDLE), then rerun the command.")
class TransferError(OpsError):
    """Base of online data transfer and validation failures (``db.transfer``, ``db.validate``, the
    validation gate of a contract migration)."""

    exit_code = 14


class TransferSpecError(TransferError):
    """A transfer declaration (``sql/<db>/transfer.toml``) is malformed; ``problems`` lists every one."""

    def __init__(self, path: str, problems: list[str]):
        self.path, self.problems = path, list(problems)
        super().__init__(f"Transfer declaration {path} is malformed ({len(self.problems)} problem(s)): "
                         + "; ".join(self.problems) + ".",
                         "fix the file, then run `invoke db.transfer --db DATABASE --dry-run` to check it.")


class TransferFailed(TransferError):
    """A transfer batch failed with something other than a row the v2 constraints reject (those are
    quarantined); what committed before stays, and ``--resume`` goes on from the high-water mark."""

    def __init__(self, database: str, mapping: str, error: str):
        self.database, self.mapping, self.error = database, mapping, error
        super().__init__(f"Database '{database}': transfer of mapping '{mapping}' failed: {error}. Batches that "
                         "committed before it stay, with their high-water mark.",
                         f"fix the cause, then run `invoke db.transfer --db {database} --resume`.")


class TransferSourceMissing(TransferError):
    """Legacy tables a transfer reads are missing although the contract migration is not applied."""

    def __init__(self, database: str, tables: list[str], task: str):
        self.database, self.tables = database, tables
        super().__init__(f"Database '{database}': {task} needs the legacy table(s) {', '.join(tables)}, which do not "
                         "exist, and the contract migration that drops them is not in the ledger; nothing was changed.",
                         f"check the database with `invoke db.status --db {database}`; restore the tables from the "
                         f"newest backup (`invoke backup.list --db {database}`) if they were dropped by hand.")


class ValidationFailed(TransferError):
    """``db.validate`` found a mapping whose counts or column checksums differ between legacy and v2;
    ``failures`` holds ``(mapping, columns, detail)`` for each. The result is recorded in the ledger."""

    def __init__(self, database: str, failures: list[tuple[str, list[str], str]]):
        self.database, self.failures = database, list(failures)
        what = "; ".join(f"mapping '{m}'" + (f" column(s) {', '.join(cols)}" if cols else "") + f": {d}"
                         for m, cols, d in self.failures)
        super().__init__(f"Database '{database}': validation failed for {len(self.failures)} mapping(s): {what}. "
                         "The contract migration stays gated.",
                         f"inspect the rows, run `invoke db.transfer --db {database}` to copy them again, "
                         f"then `invoke db.validate --db {database}`.")


class ValidationGateClosed(TransferError):
    """A contract migration (``-- pgops:gate=validation``) was asked for explicitly (``--to``) while
    its gate is closed; nothing was applied past the migration before it."""

    def __init__(self, database: str, migration: str, reason: str):
        self.database, self.migration, self.reason = database, migration, reason
        super().__init__(f"Database '{database}': contract migration {migration} is refused: {reason}.",
                         f"after a passing validation run `invoke db.migrate --db {database}` again "
                         f"(or `invoke db.status --db {database}` to see what waits).")


#: Exit status of every task — the README's exit-code table is generated from (and tested against) this.
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (0, "ok"),
    (1, "other expected failure (unknown backup id, a plan not confirmed at the prompt, a remedy refused or failed)"),
    (2, "bad option or configuration, or a destructive plan without a terminal and without `--yes` "
        "(nothing changed)"),
    (3, "local stack"),
    (4, "cannot connect"),
    (5, "migration (failed, dirty, drift, out of order, lock held, preflight, verify failed)"),
    (6, "retention refused"),
    (7, "backup, repository, verify or restore"),
    (8, "restore drill failed"),
    (9, "`pulumi` CLI missing for an AWS stack"),
    (10, "cutover refused, aborted, failed or timed out (the old side is still the primary unless the message says otherwise)"),
    (11, "failover refused by a guard (nothing changed) or a failover step failed (the message says what was "
         "unwound and the next command)"),
    (12, "partition maintenance, GDPR export or erasure refused or failed (each step is one transaction: nothing "
         "half-applied), or a non-TLS connection to an AWS stack refused"),
    (13, "scheduled job failed, timed out or already running (`schedule.run`; the message names the job and the step)"),
    (14, "data transfer failed, validation failed, or a contract migration refused by its validation gate "
         "(`db.transfer`, `db.validate`, `db.migrate --to`)"),
    (15, "cutover switched (the new side is primary) but its verification found a difference "
         "(`cutover.run`, `cutover.rollback`, `cutover.verify`): roll back or investigate"),
    (130, "interrupted (Ctrl-C, SIGTERM, SIGHUP)"),
)


class ScheduleError(OpsError):
    """A scheduled job (``invoke schedule.run NAME``) failed, timed out or found itself already running."""

    exit_code = 13


class JobFailed(ScheduleError):
    """A step of a scheduled job exited non-zero or ran past the job's timeout; later steps did not run."""

    def __init__(self, job: str, step: str, exit_code: int | None, seconds: float, timed_out: bool = False):
        self.job, self.step, self.step_exit_code, self.seconds, self.timed_out = job, step, exit_code, seconds, timed_out
        what = (f"ran past the job's timeout and was stopped after {seconds:.0f} s" if timed_out
                else f"exited {exit_code} after {seconds:.1f} s")
        super().__init__(f"Scheduled job '{job}': step `{step}` {what}; the job's later steps did not run.",
                         f"read the step's output above, fix the cause, then run `invoke schedule.run {job}` "
                         "(runbooks/scheduled-job-failed.md).")


class JobAlreadyRunning(ScheduleError):
    """Another run of the same job holds its lock: runs never overlap."""

    def __init__(self, job: str, lock: str):
        self.job, self.lock = job, lock
        super().__init__(f"Scheduled job '{job}' is already running (lock {lock} is held); this run did nothing.",
                         f"wait for it to finish (`invoke schedule.show` lists the job's timeout), then run "
                         f"`invoke schedule.run {job}` if it is still needed.")


class CopyFailed(BackupError):
    """``backup.copy``: an object's copy does not hash to its manifest's sha256 (the manifest is not copied,
    so the copy does not exist to any task)."""

    def __init__(self, backup_id: str, destination: str, expected: str, found: str):
        self.backup_id, self.destination, self.expected, self.found = backup_id, destination, expected, found
        super().__init__(f"Backup {backup_id}: its copy in {destination} hashes to {found[:16]}…, not the manifest's "
                         f"{expected[:16]}…; the manifest was not copied, so the copy does not exist.",
                         f"check the source with `invoke backup.verify {backup_id}`, then rerun `invoke backup.copy`.")
