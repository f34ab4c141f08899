"""Code shared by the five DANM binaries: API models, IPAM, rules and thin I/O adapters."""
