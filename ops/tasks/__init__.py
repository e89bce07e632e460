"""The Invoke tasks, one module per area (local, deploy, db, backup, drill, health, runbook,
cutover, failover), each with its presenter and its own ``Collection``; :func:`root` composes them
— ``tasks.py`` at the project root and ``runbook.check`` both use it, so no list is kept twice."""
from __future__ import annotations


def root():
    """The whole task tree: what ``invoke --list`` shows."""
    from invoke import Collection

    from . import backup, cutover, db, deploy, drill, failover, health, local, runbook
    root = Collection(deploy.deploy, deploy.preview, health.health, local.ns, db.ns, backup.ns, drill.ns,
                      runbook.ns, cutover.ns, failover.ns)
    from . import gdpr, schedule
    root.add_collection(gdpr.ns)
    root.add_collection(schedule.ns)
    from .. import cli
    cli.register_task_options({name: frozenset(n for arg in root[name].get_arguments() for n in arg.names)
                               for name in root.task_names})
    return root
