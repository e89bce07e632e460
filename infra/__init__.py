"""The Pulumi program: one ComponentResource per module (database, backup_store, alarms,
dashboard); ``program.build`` wires them from ``config.StackConfig``; ``__main__`` reads the stack's
config. ``policy/`` is the policy pack."""
