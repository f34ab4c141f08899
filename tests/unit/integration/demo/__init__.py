"""Unit tests of ``integration.demo``: the scenario data and the probe maths."""
