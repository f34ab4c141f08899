"""The one place the suite's version lives; every binary reports it with --version."""

__version__ = "0.1.0"
