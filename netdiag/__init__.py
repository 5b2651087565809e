"""netdiag: network diagnostics for container networks."""

__version__ = "0.1.0"
