"""The ``fakeipam`` CNI IPAM plugin: hands delegates the addresses DANM already reserved."""
