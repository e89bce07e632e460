"""GDPR export (Art. 15 access, Art. 20 portability) and erasure (Art. 17): :mod:`.graph` is the pure
ownership graph, :mod:`.engine` reads the catalog, exports and erases."""
