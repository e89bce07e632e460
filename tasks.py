"""Invoke's entry point: composes the task collections of each area. No logic lives here.

    invoke deploy | preview | health | local.{up,status,down} | db.{status,plan,migrate,rollback,verify,new,lint,baseline,seed}
    | backup.{create,list,show,verify,restore,prune} | drill.{run,history} | runbook.{list,check}
    | failover.{switchover,promote,rejoin}
"""
from invoke import Collection

from ops.tasks import backup, db, deploy, drill, failover, health, local, runbook

ns = Collection(deploy.deploy, deploy.preview, health.health, local.ns, db.ns, backup.ns, drill.ns, runbook.ns, failover.ns)
