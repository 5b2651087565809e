"""Shared test infrastructure: real peers (dockerd, servers, namespaces) started on demand."""
