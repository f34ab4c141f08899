"""``make demo``: the README's multi-domain Service discovery scenario, for real, on this machine.

``python -m integration.demo up`` starts tests/kubeapi as the API server, registers the webhook,
applies the CRDs and the ``example/svcwatcher_demo`` networks with kubectl, runs netwatcher and
svcwatcher, wires Pods (network namespaces) with the ``danm`` binary as a runtime would, sends
traffic to every Service endpoint and tears everything down. ``down`` cleans up after an
interrupted run. Layout:

* ``scenario``: the story as plain data (which Pods, which networks, what each Service must
  list, which Pod talks to which endpoint) and the summary table: pure, unit-tested;
* ``host``: network namespaces, links and child processes of the demo, and the leftover sweep;
* ``steps``: the numbered steps, each one function;
* ``probe``: the ping / TCP client and the TCP server that run inside the Pod namespaces.
"""
