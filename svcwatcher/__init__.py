"""The DANM svcwatcher component."""
