"""Invoke's entry point: the task tree composed in ``ops.tasks.root``. No logic lives here.

    invoke deploy | preview | health | local.{up,status,down} | db.{status,plan,migrate,rollback,verify,new,lint,baseline,seed,
    terminate,drop-slot,reindex-invalid}
    | backup.{create,list,show,verify,restore,prune} | drill.{run,history} | runbook.{list,check}
    | cutover.{prepare,status,run,verify,rollback,finish}
    | failover.{switchover,promote,rejoin}
"""
from ops.tasks import root

ns = root()
