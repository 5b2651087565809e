"""The doctor's steps, in the order the app's traffic takes them. Each fills in one Step.

A step sets ``status`` (pass, warn, fail, skip) with a one-line summary and, on failure, the
concrete fix in Docker terms. Every network step is bounded by the per-step timeout and the
global deadline. Secrets are read with netdiag.secrets and never written into a Step.
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from netdiag.deadline import Deadline
from netdiag.discovery import neighbours
from netdiag.doctor.model import FAIL, PASS, SKIP, WARN, Step
from netdiag.errors import NetdiagError
from netdiag.probes.base import ProbeFailure
from netdiag.probes.settings import MySQLLogin, ProbeFlags, ProbeOptions, mysql_login, options_for
from netdiag.records import replace
from netdiag.status import Status
from netdiag.targets import Target


@dataclass
class Context:
    """What the steps learn and pass on: resolver, addresses, Docker view."""

    target: Target
    timeout: float
    deadline: Deadline
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    flags: ProbeFlags = field(default_factory=ProbeFlags)  # --user, --table, ...
    conf: Any = None
    addresses: list[str] = field(default_factory=list)
    own_container: str | None = None
    own_networks: list[str] = field(default_factory=list)
    holder: Any = None  # topology.Holder of the service, when Docker told us
    identity: Any = None  # netdiag.discovery.docker.Identity, once the API was asked
    _view: Any = None
    _similar: Any = None

    @property
    def step_timeout(self) -> float:
        return max(0.001, self.deadline.timeout(self.timeout))

    def docker_view(self) -> Any:
        """The Docker API's view (DockerView or Unavailable), read once; sets ``identity``."""
        if self._view is None:
            from netdiag.discovery import docker as docker_layer

            # the API is local and may be busy: each request gets at least 3 s (deadline kept)
            self._view = docker_layer.load(
                self.environ,
                timeout=max(0.001, self.deadline.timeout(max(self.timeout, 3.0))),
                deadline=self.deadline.end,
            )
            self.identity = docker_layer.identify_self(
                self._view, docker_layer.LocalEvidence.gather()
            )
        return self._view

    def similar_names(self) -> list[Any]:
        """Names on the network that look like a typo of the target's (similar.Candidate):
        from the API when it answers, else the names scan sees (inside a container only)."""
        if self._similar is None:
            from netdiag.discovery import docker as docker_layer
            from netdiag.doctor import similar

            view = self.docker_view()
            if isinstance(view, docker_layer.DockerView):
                found = similar.candidates_from_view(view, self.identity.networks)
            elif self.identity.in_container and self.conf and self.conf.is_docker_embedded:
                # a container on a user-defined network: its subnets are container networks
                from netdiag.discovery.scan import seen_names

                budget = min(2.0, self.deadline.remaining() / 3)
                names = seen_names(time.monotonic() + budget, self.timeout, self.conf)
                found = [similar.Candidate(n, None, None) for n in names]
            else:
                found = []
            self._similar = similar.closest(self.target.host, found)
        return self._similar

    @property
    def service(self) -> str:
        if self.holder:
            return self.holder.container
        return "CONTAINER" if self.target.host_is_ip else self.target.host

    @property
    def address(self) -> str | None:
        return self.addresses[0] if self.addresses else None


# --- 1. resolver configuration ----------------------------------------------------------------


def resolver(ctx: Context, step: Step) -> None:
    from netdiag.dns import resolvconf

    try:
        conf = resolvconf.load(dict(ctx.environ))
    except NetdiagError as exc:
        step.status, step.summary = FAIL, str(exc)
        step.fix = "the container's /etc/resolv.conf must be readable (Docker writes it)"
        return
    ctx.conf = conf
    step.facts = conf.to_dict()
    servers = ", ".join(step.facts["nameservers"])
    search = " ".join(conf.search) or "none"
    step.summary = f"nameserver {servers}; ndots {conf.ndots}; search {search}"
    step.status = PASS
    if conf.is_docker_embedded:
        step.summary += " (Docker's embedded DNS)"
    elif conf.overridden:
        step.notes.append("nameservers overridden by NETDIAG_RESOLVER")
    else:
        step.status = WARN
        step.notes.append(
            "the resolver is not Docker's embedded DNS 127.0.0.11: not a container on a "
            "user-defined network (on the default bridge, container names do not resolve: "
            "docker network create todo-app, then run both containers with --network todo-app)"
        )
    host = ctx.target.host
    if conf.search and host.count(".") < conf.ndots and not ctx.target.host_is_ip:
        step.notes.append(
            f"{host} has fewer than ndots:{conf.ndots} dots: the search domains "
            f"({search}) are tried first, which costs a round trip each"
        )


# --- 2. the name ------------------------------------------------------------------------------


def name(ctx: Context, step: Step) -> None:
    from netdiag.dns.lookup import LookupFailure, resolve

    host = ctx.target.host
    if ctx.target.host_is_ip:
        ctx.addresses = [host]
        step.status, step.summary = PASS, f"{host} is an address: nothing to resolve"
        return
    try:
        found = resolve(host, ctx.conf, timeout=ctx.step_timeout)
    except LookupFailure as fail:
        step.status = FAIL
        step.facts["dns_error"] = fail.kind
        step.summary = fail.detail
        if fail.kind in ("nxdomain", "no_reply", "no_data"):
            step.fix = (
                f"no container that shares a network with us answers to {host}: run the "
                f"service on this network with --network-alias {host} (or docker network "
                f"connect --alias {host} NETWORK CONTAINER)"
            )
            guess = ctx.similar_names()
            if guess:
                step.facts["did_you_mean"] = [g.name for g in guess]
                step.summary += f"; did you mean {guess[0].name}?"
                step.fix = (
                    f"did you mean {guess[0].name} ({guess[0].where()})? Use that name (e.g. "
                    f"MYSQL_HOST={guess[0].name}); if {host} is right: " + step.fix
                )
            if fail.kind == "no_reply" and not (ctx.conf and ctx.conf.is_docker_embedded):
                step.fix += "; or the resolver is down"
        else:
            step.fix = "the resolver answered with an error: check the DNS server it names"
        return
    ctx.addresses = found.addresses
    step.facts = {"addresses": found.addresses, "source": found.source, "qname": found.qname}
    step.summary = f"{host} -> {', '.join(found.addresses)} (from {found.source})"
    step.status = PASS
    if len(found.addresses) > 1:
        step.status = WARN
        step.notes.append(
            f"{host} resolves to {len(found.addresses)} addresses: if they are different "
            "containers, the app reaches either one at random"
        )


# --- 3. Docker topology -------------------------------------------------------------------------


def docker(ctx: Context, step: Step) -> None:
    """Which container holds the name, is it running, do we share a network (GET only)."""
    from netdiag.discovery import docker as docker_layer
    from netdiag.doctor import topology

    view = ctx.docker_view()
    identity = ctx.identity
    step.facts["identity"] = identity.to_dict()
    if isinstance(view, docker_layer.Unavailable):
        step.status, step.summary = SKIP, f"Docker API not available: {view.note}"
        return
    own = identity.name
    if identity.container is not None:
        ctx.own_container = own
        ctx.own_networks = identity.networks
        step.facts["own_container"] = own
        step.facts["own_networks"] = ctx.own_networks
    step.notes += identity.notes
    host = ctx.target.host
    if ctx.target.host_is_ip:
        holders = topology.holders_of_address(host, view.containers)
    else:
        holders = topology.holders_of(host, view.containers)
    step.facts["holders"] = [h.to_dict() for h in holders]
    if not holders and (ctx.addresses or ctx.target.host_is_ip):
        step.status = SKIP if ctx.target.host_is_ip else WARN
        where = ", ".join(ctx.addresses)
        step.summary = f"no container holds {host} ({where}): not a container the daemon runs"
        return
    similar = ctx.similar_names() if not holders else []
    verdict = topology.analyse(
        ctx.target.host, holders, own, ctx.own_networks, similar, identity.throwaway
    )
    step.status = PASS if verdict.ok else FAIL
    step.summary, step.fix = verdict.summary, verdict.fix
    step.notes += list(verdict.notes)
    running = [h for h in holders if h.state == "running"]
    shared = [h for h in running if h.network in ctx.own_networks] or running
    if shared:
        ctx.holder = shared[0]


# --- 4. route and neighbour -------------------------------------------------------------------


def route(ctx: Context, step: Step) -> None:
    from netdiag.discovery import local
    from netdiag.doctor import topology

    address = ctx.address
    if address is None:
        step.status, step.summary = SKIP, "no address to route to"
        return
    ip = ipaddress.ip_address(address)
    if ip.is_loopback:
        step.status, step.summary = PASS, f"{address} is loopback"
        return
    snap = local.snapshot()
    if address in snap.addresses():
        step.status, step.summary = PASS, f"{address} is one of our own addresses"
        return
    best = None
    for r in snap.routes:
        if r.type != "unicast":
            continue
        try:
            net = ipaddress.ip_network(r.destination, strict=False)
        except ValueError:
            continue
        if net.version == ip.version and ip in net and (best is None or net.prefixlen > best[0]):
            best = (net.prefixlen, r)
    if best is None:
        step.status = FAIL
        step.summary = f"no route to {address}: we have no interface on its network"
        net = ctx.holder.network if ctx.holder else "NETWORK"
        if ctx.identity is not None and ctx.identity.throwaway:
            step.fix = topology.throwaway_fix(ctx.target.host, [net])
        else:
            step.fix = f"docker network connect {net} {ctx.own_container or 'THIS_CONTAINER'}"
        return
    r = best[1]
    step.facts["route"] = r.to_dict()
    if r.gateway:
        step.status = WARN
        step.summary = f"{address} via gateway {r.gateway} dev {r.device} (not on-link)"
        step.notes.append(
            "containers on a shared network talk directly, not through a gateway: "
            "this address is on no network we are attached to"
        )
        return
    step.status, step.summary = PASS, f"{address} is on-link via {r.device}"
    entry = neighbours.lookup(address)
    if entry:
        step.facts["neighbour"] = {"flags": entry.flags, "mac": entry.mac, "device": entry.device}
        if not entry.complete:
            step.status = WARN
            step.notes.append(
                f"neighbour {address} is incomplete: nobody answered ARP (the container "
                "stopped, or the address is stale)"
            )
        else:
            step.summary += f", neighbour {entry.mac}"


# --- 5. TCP connect ---------------------------------------------------------------------------


def share(failing: int, total: int) -> str:
    """``half``, ``a third``, ``all``: the part of the app's connections that will fail."""
    if failing == total:
        return "all"
    words = {(1, 2): "half", (1, 3): "a third", (2, 3): "two thirds", (1, 4): "a quarter"}
    return words.get((failing, total), f"{round(100 * failing / total)}%")


def _holders_word(ctx: Context) -> str:
    return ctx.target.host if not ctx.target.host_is_ip else str(ctx.address)


def connect(ctx: Context, step: Step) -> None:
    """TCP connect to the address; to every address when the name has several holders (the
    app's connections spread over them all)."""
    if len(ctx.addresses) < 2 or ctx.target.port is None:
        _connect_one(ctx, step)
        return
    from concurrent.futures import ThreadPoolExecutor

    def one(address: str) -> Step:
        sub = Step("connect", "TCP connect")
        sub_ctx = Context(**{**vars(ctx), "addresses": [address]})
        _connect_one(sub_ctx, sub)
        return sub

    with ThreadPoolExecutor(max_workers=min(8, len(ctx.addresses))) as pool:
        results = list(pool.map(one, ctx.addresses))
    bad = [(a, r) for a, r in zip(ctx.addresses, results, strict=True) if r.status == FAIL]
    step.facts["holders"] = {a: r.summary for a, r in zip(ctx.addresses, results, strict=True)}
    if not bad:
        step.status = PASS
        step.summary = f"connected to all {len(results)} holders of {_holders_word(ctx)}"
        return
    n, k = len(results), len(bad)
    step.status = FAIL
    step.summary = (
        f"{k} of {n} holders of {_holders_word(ctx)} refuse or drop port {ctx.target.port}: "
        f"about {share(k, n)} of the app's connections will fail"
    )
    step.notes += [r.summary for _, r in bad]
    step.fix = bad[0][1].fix
    # the good holders first: the later steps check one that answers
    ctx.addresses = [a for a, r in zip(ctx.addresses, results, strict=True) if r.status != FAIL]
    ctx.addresses += [a for a, _ in bad]


def _connect_one(ctx: Context, step: Step) -> None:
    from netdiag.probes.base import connect as tcp_connect

    address, port = ctx.address, ctx.target.port
    if address is None or port is None:
        step.status, step.summary = SKIP, "no address or port"
        return
    start = time.monotonic()
    try:
        sock = tcp_connect(address, port, ctx.step_timeout)
    except ProbeFailure as fail:
        step.status, step.summary = FAIL, f"{address}:{port}: {fail.status}: {fail.detail}"
        step.facts["status"] = str(fail.status)
        svc = ctx.service
        if fail.status is Status.REFUSED:
            step.fix = (
                f"nothing listens on port {port} of {svc}: is the server up and listening on "
                f"0.0.0.0 (not 127.0.0.1) inside its container? docker logs {svc}"
            )
        elif fail.status is Status.TIMEOUT:
            entry = neighbours.lookup(address)
            if entry and not entry.complete:
                step.notes.append(f"nobody answers ARP for {address} (neighbour incomplete)")
                step.fix = (
                    f"no container has {address} any more: the name points at a stopped or "
                    f"removed container (docker ps -a; docker start {svc})"
                )
            else:
                step.fix = (
                    f"no answer from {address}:{port}: the packets are dropped (a firewall "
                    f"rule, or no live container has this address any more: docker ps -a)"
                )
        else:
            step.fix = f"{address} is unreachable from here: docker network connect NETWORK THIS"
        return
    sock.close()
    ms = (time.monotonic() - start) * 1000
    step.status, step.summary = PASS, f"connected to {address}:{port} in {ms:.1f} ms"


# --- 5b. path MTU -------------------------------------------------------------------------------

MTU_STATUS = {"ok": PASS, "lower": WARN, "black_hole": FAIL, "unknown": SKIP, "local": SKIP}


def mtu(ctx: Context, step: Step) -> None:
    """One don't-fragment probe of the interface MTU to the address (netdiag.path.check); if
    it is lost, the full path MTU search: a black hole fails with the fix in Docker terms."""
    from netdiag.path.check import check_mtu

    if ctx.address is None:
        step.status, step.summary = SKIP, "no address to measure the path to"
        return
    network = ctx.holder.network if ctx.holder else None
    found = check_mtu(ctx.address, Deadline(ctx.step_timeout), network=network)
    step.facts = found.to_dict()
    step.status = MTU_STATUS[found.status]
    step.summary, step.fix = found.verdict(), found.fix()
    if found.report is None and found.first is not None:
        step.summary += f" ({found.how})"
    elif found.report is not None:
        step.notes.append(
            f"{found.probes} probes ({found.how}): the hops, then the path MTU search"
        )
    if found.status == "lower":
        step.notes.append(
            f"com.docker.network.driver.mtu={found.pmtu} on the network would spare TCP the "
            "round trip it takes to learn this"
        )


# --- 6. protocol greeting ---------------------------------------------------------------------

MYSQL_FIXES = {
    1130: "create the user for the app's host: CREATE USER 'USER'@'%' ... (the mysql image "
    "does this for MYSQL_USER/MYSQL_PASSWORD on first start); with --skip-name-resolve off the "
    "host is the client's container name on the network",
    1129: "too many aborted connections from this host: mariadb-admin flush-hosts (and find "
    "what keeps connecting without logging in)",
    1040: "the server is at max_connections: close idle connections or raise max_connections",
}


def _probe(ctx: Context, options: ProbeOptions) -> Any:
    """The target's probe at the resolved address, within the step's time; a Finding."""
    from netdiag.probes.engine import probe_class

    probe = probe_class(ctx.target.scheme)(ctx.target, options)
    assert ctx.address is not None and ctx.target.port is not None
    return probe.check(ctx.address, ctx.target.port, ctx.step_timeout)


def greeting(ctx: Context, step: Step) -> None:
    """The protocol's greeting from the address; from every holder when there are several."""
    from netdiag.probes.engine import probe_class

    if len(ctx.addresses) < 2 or not probe_class(ctx.target.scheme).speaks:
        _greeting_one(ctx, step)
        return
    from concurrent.futures import ThreadPoolExecutor

    from netdiag.probes.identify.mismatch import EXPECTED_NAMES

    def one(address: str) -> Step:
        sub = Step("greeting", "protocol greeting")
        _greeting_one(Context(**{**vars(ctx), "addresses": [address]}), sub)
        return sub

    with ThreadPoolExecutor(max_workers=min(8, len(ctx.addresses))) as pool:
        results = list(pool.map(one, ctx.addresses))
    pairs = list(zip(ctx.addresses, results, strict=True))
    step.facts["holders"] = {a: r.summary for a, r in pairs}
    bad = [(a, r) for a, r in pairs if r.status == FAIL]
    if not bad:
        first = results[0]
        step.status, step.facts = first.status, {**first.facts, "holders": step.facts["holders"]}
        step.summary = f"all {len(results)} holders answer: {first.summary}"
        return
    n, k = len(results), len(bad)
    what = EXPECTED_NAMES.get(ctx.target.scheme, ctx.target.scheme)
    verb = "has" if k == 1 else "have"
    step.status = FAIL
    step.summary = (
        f"{k} of {n} holders of {_holders_word(ctx)} {verb} no {what} server: "
        f"about {share(k, n)} of the app's connections will fail"
    )
    step.notes += [f"{a}: {r.summary}" for a, r in bad]
    step.fix = (
        f"only one container should hold the name {_holders_word(ctx)}: remove the alias "
        "from the others (docker network disconnect NETWORK CONTAINER, then connect it again "
        "without --alias)"
        if k < n
        else bad[0][1].fix
    )
    ctx.addresses = [a for a, r in pairs if r.status != FAIL] + [a for a, _ in bad]


def _greeting_one(ctx: Context, step: Step) -> None:
    from netdiag.probes.engine import probe_class

    scheme = ctx.target.scheme
    if not probe_class(scheme).speaks:
        step.status, step.summary = SKIP, f"{scheme}:// has no protocol to check"
        return
    if scheme == "mysql":  # the server alone first: credentials are the next step
        options = ProbeOptions(timeout=ctx.step_timeout, mysql=MySQLLogin())
    else:
        options = options_for(ctx.target, ctx.flags, ctx.step_timeout, environ=ctx.environ)
    try:
        found = _probe(ctx, options)
    except ProbeFailure as fail:
        step.status, step.summary = FAIL, f"{fail.status}: {fail.detail}"
        step.facts = {"status": str(fail.status), **fail.facts}
        code = fail.facts.get("error_code")
        # the probe names what answers instead ("3306 speaks HTTP/1.0 (...), not MySQL"):
        # identify.instead, the same for probe, check, wait and doctor
        if fail.status is Status.PROTOCOL_MISMATCH:
            step.fix = (
                f"port {ctx.target.port} of {ctx.service} is not {scheme}: check the port "
                "and that the alias points at the right container"
            )
        elif code in MYSQL_FIXES:
            step.fix = MYSQL_FIXES[code]
        elif fail.status is Status.TIMEOUT:
            step.fix = f"the server accepts but does not answer: docker logs {ctx.service}"
        else:
            step.fix = f"docker logs {ctx.service}"
        return
    keep = ("version", "flavor", "auth_plugin")
    step.facts = {k: v for k, v in found.facts.items() if k in keep}
    step.status, step.summary = PASS, found.summary


# --- 7. credentials and 8. database/table -------------------------------------------------------


def _app_login(ctx: Context, step: Step) -> MySQLLogin | None:
    """The app's login (flags, URL, MYSQL_* and _FILE twins); None with ``step`` filled when
    there is none or its secret cannot be read."""
    try:
        login = mysql_login(ctx.target, ctx.flags, ctx.environ)
    except NetdiagError as exc:
        step.status, step.summary = FAIL, str(exc)
        step.fix = (
            "mount the secret where MYSQL_PASSWORD_FILE (or --password-file) points (compose: "
            "secrets: + MYSQL_PASSWORD_FILE=/run/secrets/NAME), readable by the app's user"
        )
        return None
    if not login.user:
        step.status = SKIP
        step.summary = (
            "no user: MYSQL_USER is not set (nor MYSQL_USER_FILE, --user or mysql://USER@): "
            "credentials not checked"
        )
        return None
    return login


def _login(ctx: Context, step: Step, login: MySQLLogin) -> bool:
    """Log in with ``login``; fills ``step``; True when it worked."""
    user, source = login.user, login.password_from
    step.facts = {"user": user, "password_from": source}
    options = ProbeOptions(timeout=ctx.step_timeout, mysql=login)
    try:
        _probe(ctx, options)
    except ProbeFailure as fail:
        step.status, step.summary = FAIL, f"{fail.status}: {fail.detail}"
        code = fail.facts.get("error_code")
        step.facts["error_code"] = code
        database, table = login.database, login.table
        if code == 1045 and not login.password:
            step.fix = (
                f"no password was configured for {user}: give the app's password the way the "
                f"app gets it ({login.password_wanted_from}; compose: secrets: + "
                "MYSQL_PASSWORD_FILE=/run/secrets/NAME), or --password-file"
            )
        elif code == 1045:
            step.fix = (
                f"the server refuses {user} with this password: compare {source} with the "
                "mysql container's MYSQL_USER/MYSQL_PASSWORD (they apply only on the first "
                "start of an empty volume; an old volume keeps the old password)"
            )
        elif code == 1049:
            step.fix = (
                f"create the database: set MYSQL_DATABASE={database} on the mysql container "
                f"(first start of an empty volume) or CREATE DATABASE {database}"
            )
        elif code == 1044:
            step.fix = f"GRANT ALL ON {database}.* TO '{user}'@'%'"
        elif code == 1146:
            step.fix = (
                f"the table {table} does not exist in {database}: the app creates its tables "
                "at start; check its logs"
            )
        elif code in MYSQL_FIXES:
            step.fix = MYSQL_FIXES[code]
        else:
            step.fix = f"docker logs {ctx.service}"
        return False
    step.status = PASS
    return True


def credentials(ctx: Context, step: Step) -> None:
    if ctx.target.scheme != "mysql":
        step.status, step.summary = SKIP, "credentials are checked for mysql:// only"
        return
    login = _app_login(ctx, step)
    if login and _login(ctx, step, replace(login, database=None, table=None)):
        source = login.password_from or "no password"
        step.summary = f"logged in as {login.user} ({source})"


def database(ctx: Context, step: Step) -> None:
    if ctx.target.scheme != "mysql":
        step.status, step.summary = SKIP, "databases are checked for mysql:// only"
        return
    login = _app_login(ctx, step)
    if login is None:
        return
    if not login.database:
        step.status = SKIP
        step.summary = (
            "no database: MYSQL_DB is not set (nor MYSQL_DB_FILE, --database or "
            "mysql://HOST/DB): no database to check"
        )
        return
    if _login(ctx, step, login):
        step.facts["database"] = login.database
        where = f"database {login.database}" + (f", table {login.table}" if login.table else "")
        step.summary = f"{where} exist"
