"""vitfer's version, defined once (pyproject reads it; so do model files and the server)."""

__version__ = "0.1.0"
