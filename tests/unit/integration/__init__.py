"""Unit tests of the integration tooling."""
