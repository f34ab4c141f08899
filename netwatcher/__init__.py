"""The DANM netwatcher component."""
