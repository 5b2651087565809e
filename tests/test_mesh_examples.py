"""The mesh's examples and docs agree with the code: metric names, the Grafana dashboard, the
Kubernetes manifest (parsed only: not run here), the commands in the reference."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from netdiag.mesh.metrics import Metrics
from netdiag.mesh.model import UP
from tests.support.mesh_reports import report

ROOT = Path(__file__).resolve().parent.parent


def emitted_names() -> set[str]:
    from prometheus_client.parser import text_string_to_metric_families

    m = Metrics("node1", process=False)
    m.update(report(1, {1: (UP, None)}, targets={"tcp://db:1": "ok"}))
    return {f.name for f in text_string_to_metric_families(m.render().decode())}


def test_every_metric_is_documented_and_the_docs_name_no_other():
    doc = (ROOT / "docs/mesh.md").read_text()
    names = emitted_names()
    assert {n for n in names if n.startswith("netdiag_")} == names
    for name in names:
        assert f"`{name}`" in doc, name
    documented = set(re.findall(r"`(netdiag_[a-z_]+)`", doc))
    assert documented == names


def test_grafana_dashboard_queries_real_metrics():
    dash = json.loads((ROOT / "examples/grafana/netdiag-mesh.json").read_text())
    names = emitted_names() | {"process_resident_memory_bytes"}
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert exprs
    for expr in exprs:
        for used in re.findall(r"\b(netdiag_[a-z_]+|process_[a-z_]+)", expr):
            base = re.sub(r"_(bucket|count|sum)$", "", used)
            assert base in names, f"{used} in {expr}"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def test_kubernetes_manifest_uses_dns_discovery_and_no_api():
    yaml = pytest.importorskip("yaml")
    docs = list(yaml.safe_load_all((ROOT / "examples/kubernetes/netdiag-agent.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"Namespace", "Service", "DaemonSet"}
    svc, ds = kinds["Service"], kinds["DaemonSet"]
    assert svc["spec"]["clusterIP"] == "None"
    pod = ds["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    args = pod["containers"][0]["args"]
    fqdn = f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc.cluster.local"
    assert args[0] == "agent" and args[args.index("--peers") + 1] == fqdn
    assert "NOT TESTED HERE" in (ROOT / "examples/kubernetes/netdiag-agent.yaml").read_text()


def test_reference_and_readme_list_both_commands():
    for page in ("README.md", "docs/reference.md"):
        text = (ROOT / page).read_text()
        assert "netdiag agent" in text or "`agent`" in text, page
        assert "netdiag mesh" in text or "`mesh`" in text, page
        assert "mesh.md" in text, page
