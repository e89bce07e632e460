"""The local stack: a primary and N streaming replicas on loopback ports, one state directory.

``layout`` is the pure part (ports, directories, slot names); ``cluster`` starts and stops real
servers with initdb / pg_ctl / pg_basebackup, as the unprivileged ``postgres`` user when run as root.
"""
