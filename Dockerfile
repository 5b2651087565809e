# netdiag: network diagnostics for container networks.
#   docker build -t netdiag .
#   docker run --rm --network todo-app netdiag dig mysql
# BASE_IMAGE is any Debian-like image with python3 and venv; tests here build FROM a local one.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
# PIP_CERT_FILE: a CA bundle in the build context for a TLS-intercepting proxy (build stage only).
ARG PIP_CERT_FILE=
WORKDIR /src
COPY . .
RUN set -eu; \
    if [ -n "$PIP_CERT_FILE" ]; then export PIP_CERT="/src/$PIP_CERT_FILE"; fi; \
    python3 -m venv /opt/netdiag; \
    /opt/netdiag/bin/pip install --no-cache-dir --disable-pip-version-check --no-compile . ; \
    /opt/netdiag/bin/pip uninstall -y -q pip setuptools 2>/dev/null || true; \
    find /opt/netdiag -name '__pycache__' -prune -exec rm -rf {} + ; \
    find /opt/netdiag -path '*/tests/*' -prune -exec rm -rf {} + ; \
    # scapy is 24 MB; netdiag imports only scapy.arch.linux and scapy.layers.l2 (the ARP sweep,
    # docs/install.md lists the modules that loads) and scapy.layers.inet (path's raw probes,
    # which pulls in inet6). Its other layers, contrib, modules and tools are loaded only by
    # scapy.all/load_layer/load_contrib, which netdiag never calls.
    scapy=$(/opt/netdiag/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/scapy; \
    rm -rf "$scapy/contrib" "$scapy/tools" "$scapy/modules" "$scapy/asn1" "$scapy/cbor"; \
    find "$scapy/layers" -mindepth 1 -maxdepth 1 ! -name __init__.py ! -name l2.py ! -name inet.py ! -name inet6.py -exec rm -rf {} + ; \
    /opt/netdiag/bin/python -c 'import netdiag.discovery.arp as s; s.arp_request_template("02:00:00:00:00:01", "10.0.0.1")'; \
    /opt/netdiag/bin/python -c 'import netdiag.path.probers as p; p._scapy().IP()'; \
    find /opt/netdiag -name '__pycache__' -prune -exec rm -rf {} + ; \
    /opt/netdiag/bin/python -m compileall -q -j 0 /opt/netdiag >/dev/null

FROM ${BASE_IMAGE}
COPY --from=build /opt/netdiag /opt/netdiag
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin netdiag
ENV PATH=/opt/netdiag/bin:$PATH PYTHONDONTWRITEBYTECODE=1
# Non-root by default: dig, probe, check, wait, doctor and scan's TCP + ping-socket sweep need no
# privilege. An ARP sweep (MACs, firewalled peers) needs root with NET_RAW, which Docker grants
# by default: --user 0. Reading a mounted Docker socket needs its group: --group-add GID.
# Without NET_RAW scan sweeps by TCP and ICMP ping sockets (its JSON notes say why); see
# docs/install.md.
USER netdiag
ENTRYPOINT ["netdiag"]
CMD ["self"]
