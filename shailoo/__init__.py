"""Shailoo's command line and the end-to-end demo; the parts live in their own packages."""

__version__ = "0.1.0"
