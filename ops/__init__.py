"""pgops: PostgreSQL on AWS, provisioned and operated as code.

The library every Invoke task calls. Each capability keeps a pure core (no I/O, ``now`` passed in)
and a thin I/O edge; see ``../shared/DESIGN.md``.
"""
__version__ = "0.1.0"
