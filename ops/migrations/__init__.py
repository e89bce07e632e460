"""Migration engine: plain SQL ``up.sql`` / ``down.sql`` / ``verify.sql`` per version folder.

Pure core: :mod:`.discovery` (files → ordered migrations), :mod:`.script` (pglast parse, statement
split, transaction mode), :mod:`.plan` (ledger vs disk → what to do), :mod:`.lint` (parse-tree rules).
I/O edge: :mod:`.ledger` (``pgops`` schema), :mod:`.locking` (advisory lock, preflight),
:mod:`.runner` (migrate / rollback / verify / baseline).
"""
