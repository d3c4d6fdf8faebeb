"""The MPI service: golden Person records, links, matching from the change log, \$match, review.

The pure matching rules are in :mod:`careweave.mpi`; this package stores and serves them.
"""
