"""Pure decision rules of DANM: naming, validation, tenancy. Data in, data out, no I/O."""
