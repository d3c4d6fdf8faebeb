"""careweave benchmarks: `python -m bench --help` (or `make bench`)."""
