"""The master patient index: identifiers, matching and identities (see docs for the design).

``careweave.mpi.nhs_number`` is pure and dependency-free: NHS number checks, ranges and test-range
generation.
"""
