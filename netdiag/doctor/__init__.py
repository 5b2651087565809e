"""netdiag doctor: a guided diagnosis along the path an app takes to its service.

model.py holds the result types, topology.py the Docker-terms analysis (pure), steps.py the
steps themselves, run.py the order and the stop-at-first-failure rule.
"""
