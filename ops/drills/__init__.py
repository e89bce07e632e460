"""Restore drills: restore a backup into a throwaway server, check the data itself, measure RTO/RPO,
write a report whatever the outcome, and tear the server down whatever happens."""
