"""The cluster view: ``netdiag agent`` probes its peers every round, ``netdiag mesh`` reads the matrix.

Built on ``probes/``, ``dns/`` and ``discovery/`` (never the other way round):

- ``model``      one round of one agent as dataclasses (its JSON is /api/v1/local)
- ``udp_echo``   the UDP echo the agents answer and send, wire format as pure functions
- ``pinger``     TCP connect + HTTP /ping + UDP echo to every peer at once, in one thread
- ``round``      one agent's round: DNS, peers (stale ones kept), targets; peer memory
- ``identity``   node name, task address, container id
- ``gather``     fetch agents' JSON over HTTP, bounded in size and time
- ``matrix``     the N x N matrix from agents' reports (pure), its JSON (/api/v1/mesh)
- ``culprit``    findings from a matrix (pure): the shared node, DNS disagreement, targets
- ``render``     the matrix as text for a 100-column terminal
- ``metrics``    Prometheus exposition (imports prometheus_client; agent only)
- ``page``       the HTML heatmap
- ``server``     the agent's read-only HTTP server
- ``agent``      the agent: rounds on a jittered interval, the server, shutdown
"""
