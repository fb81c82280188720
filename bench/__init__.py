"""`make bench`: the service's speed measured against the direct path, in one run on loopback.

See docs/performance.md (written by it) and `python -m bench --help`.
"""
