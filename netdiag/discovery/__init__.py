"""Discovery: who is on the attached networks (Docker API, local interfaces, sweeps)."""
