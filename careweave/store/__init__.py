"""Storage: the Store interface (base.py), the shared versioning rules (writes.py), SQL backends."""
