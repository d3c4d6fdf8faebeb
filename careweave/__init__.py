"""careweave: an open-source backbone for health and care interoperability."""

__version__ = "0.1.0"

__all__ = ["__version__"]
