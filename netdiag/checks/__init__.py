"""Health checks: the checks file (spec), running checks (run), JUnit XML (junit)."""
