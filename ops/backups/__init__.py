"""Backups: a repository (``file://`` or ``s3://``) behind one small interface, logical and physical
backups streamed into it with a manifest written last, verification, restore, and prune under the
retention verdict of :mod:`ops.retention`."""
