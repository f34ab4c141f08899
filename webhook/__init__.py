"""The DANM webhook component."""
