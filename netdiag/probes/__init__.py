"""Protocol probes: one module per protocol behind one ``Probe`` shape (see base.py)."""
