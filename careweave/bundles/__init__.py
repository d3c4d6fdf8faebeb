"""Batch and transaction Bundles: parsing, ordering and reference rewriting (pure)."""
