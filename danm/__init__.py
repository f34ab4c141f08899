"""The ``danm`` CNI meta-plugin: the binary the container runtime runs for every pod network."""
