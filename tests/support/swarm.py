"""A real three-node Docker Swarm on one machine, for the mesh and path tests.

Layout (every name starts with the run's prefix P, default ``ndsw<hash of the work tree>-``, so
two work trees on one machine get two labs; ``NETDIAG_SWARM_PREFIX`` overrides it):

  ``Plab``          a namespace holding bridge ``br0`` (no address: a plain L2 segment)
  ``PnodeN``        N = 1..3, one namespace per Docker host: ``eth0`` = 10.99.0.N/24, the other
                    end of its veth (``vN``) a port of ``br0``; no default route, so nothing a
                    node does can leave the lab
  dockerd per node  started as ``ip netns exec PnodeN unshare -u -m sh -c "hostname nodeN;
                    mount cgroups; exec dockerd ..."`` with its own --data-root
                    (/var/tmp/P/nodeN), --exec-root, socket, pid file (/run/P/...),
                    --cgroup-parent /PnodeN, --storage-driver overlay2 (vfs where overlayfs
                    is missing; see default_storage) and --dns 10.99.0.254 (a lab address
                    nobody holds: a name Docker does not know times out in the lab)
  swarm             ``swarm init`` on node1 (manager, --advertise-addr 10.99.0.1), node2 and
                    node3 join as workers; the netdiag image is ``docker save``d from the
                    machine's dockerd once (cached by image id) and ``docker load``ed into
                    each node once per run

``Swarm.start()`` brings it up (11-18 s measured with overlay2, 25-35 s with vfs, nearly all of
it ``docker load``), ``Swarm.stop()`` tears it down by pid
file, namespace and cgroup name, and ``start()`` first removes what a crashed run with the same
prefix left behind. Tests get one per session through the ``swarm`` fixture in
tests/conftest.py (its timings go to tests/artifacts/swarm-timings.json).

Environment: ``NETDIAG_IMAGE`` (the netdiag image, built by scripts/build-images),
``NETDIAG_SWARM_PREFIX``, ``NETDIAG_SWARM_STORAGE`` (overlay2 or vfs), ``NETDIAG_SWARM_KEEP=1``
(while working on tests: reuse a Swarm left up and leave it up; ``Swarm().stop()`` removes it).

API for tests (``node`` is 1, "node1" or a Node):
  ``docker(node, *args)``, ``manager_docker(*args)``  the docker CLI against a node's daemon
  ``exec_in_node_ns(node, argv)``, ``ns_argv``        a host program inside a node's namespace
                                                      (iptables, chromium, python -m netdiag)
  ``exec_in_container_ns(node, ctr, argv)``           a host program (ping, tracepath) in a
                                                      container's network namespace (nsenter)
  ``http_get(node, url)``, ``browse(node, url, png)``  HTTP / headless Chromium from a node
  ``image``, ``load_image(name, nodes)``              the netdiag image (loaded); any other
  ``create_overlay(name)``, ``deploy_stack(name, file, env)``, ``rm_stack``, ``rm_service``,
  ``tasks(service)``, ``wait_tasks(service, n)``, ``container_of(service, node)``,
  ``container_pid``, ``ready_nodes()``.

Faults, as context managers that undo themselves:
  ``cut_vxlan(node)``       ``iptables -I INPUT -p udp --dport 4789 -j DROP`` in the node's
                            namespace: cross-node overlay traffic to and from it dies (the
                            sender's packets are dropped on arrival, replies never leave),
                            same-node traffic and the Swarm control plane (2377/tcp, 7946) live.
  ``mtu_black_hole(node, mtu=1400)``
                            an overlay MTU black hole that really stalls TCP: the node's
                            ``eth0`` gets MTU 1400 while the rest of the L2 segment keeps 1500
                            (a classic host misconfiguration: Docker's overlay stays at 1450
                            whatever the host's MTU), and every node's ``eth0`` has its
                            segmentation offloads off (``ethtool -K eth0 tso off gso off ...``).
                            A full-size overlay packet (1450) makes a 1500-byte VXLAN frame; a
                            veth hands a frame to its peer only if it fits that end's MTU (+ 4
                            bytes of VLAN slack) and drops the rest silently: no ICMP
                            "fragmentation needed", since nothing routes. Measured here: from a
                            container on another node to one on this node, DF packets of up to
                            ``black_hole_limit(mtu)`` = 1354 bytes pass, 1355-1450 vanish (ping
                            -M do: 100% loss, no "message too long"); a 4 MB HTTP download from
                            another node's task stalls after the handshake while a short
                            request/response works. The other direction passes: this node's
                            VXLAN frames exceed its own MTU and are fragmented by it (Docker's
                            VXLAN does not set DF). This kernel drops at the MTU even with
                            offloads on; ENVIRONMENT.md saw GSO super-packets slip through a
                            smaller bridge port, hence offloads off, which makes the senders cut
                            frames to size whatever the kernel. The node's own underlay TCP
                            (2377, 7946) keeps working (its 1400 route MTU gives a matching
                            MSS): all nodes stay Ready.

Names: ``tasks.<service>`` and service names resolve inside containers through the node's
embedded DNS; a host program run in a container's namespace (``exec_in_container_ns``) sees the
host's /etc/resolv.conf, so give it addresses. Published ports (mode=host) answer at
127.0.0.1:PORT inside a node's namespace (``http_get``, ``browse``, ``exec_in_node_ns``) and at
10.99.0.N:PORT from the other nodes. No IPVS in this kernel: a service's virtual IP does not
answer, use ``endpoint_mode: dnsrr`` or ``tasks.<service>``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAB_NET = "10.99.0"  # inside the lab namespace only: never seen by the root namespace
LAB_DNS = f"{LAB_NET}.254"  # nobody holds it
NODE_COUNT = 3
CGROUP_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")
IMAGE_CACHE = Path(os.environ.get("NETDIAG_IMAGE_CACHE", "/var/cache/netdiag-images")) / "swarm"
SYSTEM_CONTAINERD = Path("/run/containerd/containerd.sock")
OFFLOADS = ("tso", "gso", "gro", "tx-udp_tnl-segmentation", "tx-udp_tnl-csum-segmentation")
BIG_FILE = 4_000_000  # bytes: far more than one TCP window, so a black hole must bite
# Run inside a task container: fetch URLs, one JSON line per URL (a stall ends at the timeout:
# no byte for that long, which a 4 MB transfer between namespaces never needs when healthy).
FETCH_SCRIPT = """
import json, sys, time, urllib.request
for url in sys.argv[2:]:
    t = time.monotonic()
    try:
        body = urllib.request.urlopen(url, timeout=float(sys.argv[1])).read()
        r = {"url": url, "ok": True, "len": len(body), "text": body[:40].decode(errors="replace")}
    except Exception as e:
        r = {"url": url, "ok": False, "error": str(e)}
    r["seconds"] = round(time.monotonic() - t, 3)
    print(json.dumps(r))
"""


def serve_files_command(port: int) -> str:
    """``sh -c`` text for a task of the netdiag image: serve /node (the task's node name, from
    $NODE) and /big (``BIG_FILE`` random bytes) with python -m http.server on ``port``."""
    return (
        "mkdir -p /tmp/w && cd /tmp/w && echo $NODE > node && "
        f"head -c {BIG_FILE} /dev/urandom > big && exec python3 -m http.server {port}"
    )


def default_prefix() -> str:
    """``NETDIAG_SWARM_PREFIX`` or ``ndsw`` + 4 hex digits of this work tree's path + ``-``."""
    env = os.environ.get("NETDIAG_SWARM_PREFIX")
    if env:
        return env
    return "ndsw" + hashlib.sha1(str(REPO).encode()).hexdigest()[:4] + "-"


def default_storage() -> str:
    """``NETDIAG_SWARM_STORAGE``, else overlay2 when the kernel has overlayfs, else vfs.

    ENVIRONMENT.md's recipe uses vfs; overlay2 works the same here (each daemon mounts in its
    own mount namespace) and is what makes 30 replicas affordable: measured on this 2-core
    machine, 30 agent containers took 130 s to start with vfs (a 200 MB copy each) and 15 s
    with overlay2; bring-up 28-35 s against 14 s (image load)."""
    env = os.environ.get("NETDIAG_SWARM_STORAGE")
    if env:
        return env
    try:
        has_overlay = "\toverlay" in Path("/proc/filesystems").read_text()
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "vfs"
    # the file system under /var/tmp (the data roots): overlayfs cannot stack on itself
    under = max(
        (m for m in mounts if len(m) > 2 and ("/var/tmp/".startswith(m[1].rstrip("/") + "/"))),
        key=lambda m: len(m[1]),
        default=None,
    )
    backing_ok = under is not None and under[2] in ("ext4", "xfs", "btrfs", "tmpfs")
    return "overlay2" if has_overlay and backing_ok else "vfs"


def netdiag_image() -> str:
    """The netdiag image the tests run (built by scripts/build-images under this tag)."""
    from tests.support.tutorial import NETDIAG_IMAGE

    return NETDIAG_IMAGE


def _run(
    argv: Sequence[str],
    check: bool = True,
    timeout: float = 120,
    input: str | bytes | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    text = not isinstance(input, bytes)
    r = subprocess.run(
        list(argv),
        capture_output=True,
        text=text,
        timeout=timeout,
        input=input,
        env=env,
    )
    if check and r.returncode != 0:
        raise subprocess.CalledProcessError(r.returncode, list(argv), r.stdout, r.stderr)
    return r


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run(["ip", *args], check=check, timeout=30)


@dataclass(frozen=True)
class Node:
    """One Docker host of the lab."""

    index: int
    hostname: str  # what `docker node ls` shows and {{.Node.Hostname}} gives: node1...
    ns: str  # its network namespace
    addr: str  # its underlay address on the lab bridge
    sock: str  # unix:///run/P/N.sock
    data_root: Path
    exec_root: Path
    pidfile: Path
    log: Path
    cgroup_parent: str


@dataclass
class Swarm:
    """Three dockerd hosts in namespaces on one bridge, joined into one Swarm (see module doc)."""

    prefix: str = field(default_factory=default_prefix)
    image: str = field(default_factory=netdiag_image)
    count: int = NODE_COUNT
    storage: str = field(default_factory=lambda: default_storage())
    bringup_seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.run_dir = Path("/run") / self.prefix.rstrip("-")
        self.data_dir = Path("/var/tmp") / self.prefix.rstrip("-")
        self.lab_ns = f"{self.prefix}lab"
        self.nodes = [self._node(i) for i in range(1, self.count + 1)]
        self._loaded: set[tuple[str, str]] = set()
        self._load_lock = threading.Lock()
        self._lock_file: object | None = None

    def _node(self, i: int) -> Node:
        return Node(
            index=i,
            hostname=f"node{i}",
            ns=f"{self.prefix}node{i}",
            addr=f"{LAB_NET}.{i}",
            sock=f"unix://{self.run_dir}/{i}.sock",
            data_root=self.data_dir / f"node{i}",
            exec_root=self.run_dir / f"e{i}",
            pidfile=self.run_dir / f"{i}.pid",
            log=self.run_dir / f"dockerd{i}.log",
            cgroup_parent=f"/{self.prefix}node{i}",
        )

    # --- addressing -------------------------------------------------------------------------

    def node(self, which: int | str | Node) -> Node:
        """A node by index (1-based), hostname ("node2") or itself."""
        if isinstance(which, Node):
            return which
        if isinstance(which, int):
            return self.nodes[which - 1]
        for n in self.nodes:
            if which in (n.hostname, n.ns):
                return n
        raise KeyError(which)

    @property
    def manager(self) -> Node:
        return self.nodes[0]

    # --- commands -----------------------------------------------------------------------------

    def docker(
        self,
        node: int | str | Node,
        *args: str,
        check: bool = True,
        timeout: float = 120,
        input: str | bytes | None = None,
    ) -> subprocess.CompletedProcess:
        """The docker CLI against one node's daemon."""
        return _run(["docker", "-H", self.node(node).sock, *args], check, timeout, input)

    def manager_docker(self, *args: str, **kw: object) -> subprocess.CompletedProcess:
        """The docker CLI against the manager (services, stacks, nodes)."""
        return self.docker(self.manager, *args, **kw)  # type: ignore[arg-type]

    def ns_argv(self, node: int | str | Node, argv: Sequence[str]) -> list[str]:
        """``argv`` prefixed so that it runs inside the node's network namespace."""
        return ["ip", "netns", "exec", self.node(node).ns, *argv]

    def exec_in_node_ns(
        self,
        node: int | str | Node,
        argv: Sequence[str],
        check: bool = True,
        timeout: float = 120,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess:
        """Run a host program inside the node's network namespace (its loopback, its iptables)."""
        return _run(self.ns_argv(node, argv), check=check, timeout=timeout, env=env)

    def container_pid(self, node: int | str | Node, container: str) -> int:
        """The host pid of a container's main process on that node."""
        return int(self.docker(node, "inspect", "-f", "{{.State.Pid}}", container).stdout)

    def container_ns_argv(
        self, node: int | str | Node, container: str, argv: Sequence[str]
    ) -> list[str]:
        """``argv`` prefixed so that a host program (ping, tracepath, python with netdiag) runs
        in the container's network namespace only: its interfaces and routes, the host's files
        (so give it addresses, or NETDIAG_RESOLV_CONF, never the host's resolver)."""
        return ["nsenter", "-t", str(self.container_pid(node, container)), "-n", *argv]

    def exec_in_container_ns(
        self,
        node: int | str | Node,
        container: str,
        argv: Sequence[str],
        check: bool = True,
        timeout: float = 120,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess:
        """Run a host program in a container's network namespace (see container_ns_argv)."""
        return _run(self.container_ns_argv(node, container, argv), check, timeout, env=env)

    def http_get(self, node: int | str | Node, url: str, timeout: float = 10.0) -> bytes:
        """GET ``url`` from inside the node's namespace (e.g. ``http://127.0.0.1:PORT/`` for a
        published port) in a thread of this process; no proxy. Raises OSError/HTTPError."""
        import urllib.request

        from tests.support.netns_lab import in_netns

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        def get() -> bytes:
            with opener.open(url, timeout=timeout) as r:
                return r.read()

        return in_netns(self.node(node).ns, get)

    def browse(
        self,
        node: int | str | Node,
        url: str,
        screenshot: Path | None = None,
        settle_ms: int = 3000,
        window: str = "1000,700",
    ) -> str:
        """Load ``url`` in Debian's headless chromium inside the node's namespace; return the
        DOM after ``settle_ms`` of (virtual) time, so page scripts ran; optionally save a PNG."""
        with tempfile.TemporaryDirectory(prefix=f"{self.prefix}chromium-") as profile:
            base = [
                "chromium", "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--no-first-run", "--no-proxy-server",
                "--disable-extensions", "--disable-sync", "--metrics-recording-only",
                f"--user-data-dir={profile}", f"--window-size={window}",
            ]  # fmt: skip
            dom = self.exec_in_node_ns(
                node, [*base, f"--virtual-time-budget={settle_ms}", "--dump-dom", url], timeout=90
            ).stdout
            if screenshot is not None:
                self.exec_in_node_ns(
                    node,
                    [
                        *base,
                        f"--virtual-time-budget={settle_ms}",
                        f"--screenshot={screenshot}",
                        url,
                    ],
                    timeout=90,
                )
        return dom

    # --- bring-up ----------------------------------------------------------------------------

    def start(self) -> Swarm:
        """Build the lab, start the daemons, form the Swarm, load the image; idempotent failure:
        on any error everything made so far is removed before the error propagates."""
        t0 = time.monotonic()
        self._take_lock()
        try:
            self._remove_leftovers()
            self._step("lab", self._build_lab)
            self._step("daemons", self._start_daemons)
            loader = threading.Thread(target=self._load_netdiag_image_guarded)
            loader.start()
            self._step("swarm", self._form_swarm)
            t = time.monotonic()
            loader.join()
            self.timings["image_wait"] = round(time.monotonic() - t, 1)
            if self._loader_error:
                raise self._loader_error
        except BaseException:
            self.stop()
            raise
        self.bringup_seconds = round(time.monotonic() - t0, 1)
        print(
            f"swarm: 3-node Swarm up in {self.bringup_seconds}s {self.timings}",
            file=sys.stderr,
        )
        return self

    def attach(self) -> bool:
        """Use a Swarm of this prefix that is already up (left by NETDIAG_SWARM_KEEP=1): True
        when every node answers and is Ready; the image is loaded again only where missing."""
        try:
            if self.ready_nodes() != {n.hostname for n in self.nodes}:
                return False
        except (subprocess.SubprocessError, OSError):
            return False
        self._take_lock()
        for n in self.nodes:
            if self.docker(n, "image", "inspect", self.image, check=False).returncode == 0:
                self._loaded.add((self.image, n.hostname))
        self.load_image(self.image)
        return True

    def _step(self, name: str, fn: object) -> None:
        t = time.monotonic()
        fn()  # type: ignore[operator]
        self.timings[name] = round(time.monotonic() - t, 1)

    def _take_lock(self) -> None:
        self.run_dir.parent.mkdir(parents=True, exist_ok=True)
        lock = open(f"{self.run_dir}.lock", "w")  # noqa: SIM115 - held for the Swarm's life
        deadline = time.monotonic() + 600
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"another run holds {self.run_dir}.lock (prefix {self.prefix})"
                    ) from None
                time.sleep(2)
        self._lock_file = lock

    def _build_lab(self) -> None:
        _ip("netns", "add", self.lab_ns)
        lab = ["-n", self.lab_ns]
        _ip(*lab, "link", "set", "lo", "up")
        _ip(*lab, "link", "add", "br0", "type", "bridge")
        _ip(*lab, "link", "set", "br0", "up")
        for n in self.nodes:
            _ip("netns", "add", n.ns)
            port = f"v{n.index}"
            _ip(*lab, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", n.ns)
            _ip(*lab, "link", "set", port, "master", "br0", "up")
            _ip("-n", n.ns, "addr", "add", f"{n.addr}/24", "dev", "eth0")
            _ip("-n", n.ns, "link", "set", "eth0", "up")
            _ip("-n", n.ns, "link", "set", "lo", "up")

    def _daemon_script(self, n: Node) -> str:
        mounts = " && ".join(
            f"mkdir -p /sys/fs/cgroup/{c} && mount -t cgroup -o {c} cgroup /sys/fs/cgroup/{c}"
            for c in CGROUP_CONTROLLERS
        )
        config = self.run_dir / f"daemon{n.index}.json"
        config.write_text("{}\n")
        dockerd = [
            "dockerd",
            f"--config-file={config}",
            f"--data-root={n.data_root}",
            f"--exec-root={n.exec_root}",
            f"--host={n.sock}",
            f"--pidfile={n.pidfile}",
            f"--storage-driver={self.storage}",
            f"--cgroup-parent={n.cgroup_parent}",
            f"--dns={LAB_DNS}",
            "--shutdown-timeout=2",
            "--log-level=warn",
        ]
        pre = ""
        if SYSTEM_CONTAINERD.exists():
            # dockerd would use the machine's containerd (in another namespace); give it its own
            sock = n.exec_root / "ctrd.sock"
            pre = (
                f"containerd --root {n.data_root}/containerd --state {n.exec_root}/containerd "
                f"--address {sock} >>{n.log} 2>&1 & "
            )
            dockerd.append(f"--containerd={sock}")
        return (
            f"set -e; hostname {n.hostname}; "
            "mount -t tmpfs tmpfs /sys/fs/cgroup && "
            f"{mounts} && mkdir -p /sys/fs/cgroup/systemd && "
            "mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd; "
            f"{pre}exec {' '.join(dockerd)}"
        )

    def _start_daemons(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for n in self.nodes:
            n.data_root.mkdir(parents=True, exist_ok=True)
            n.exec_root.mkdir(parents=True, exist_ok=True)
            with open(n.log, "ab") as log:
                subprocess.Popen(
                    [
                        *self.ns_argv(n, ["unshare", "-u", "-m", "sh", "-c"]),
                        self._daemon_script(n),
                    ],
                    stdout=log,
                    stderr=log,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
        deadline = time.monotonic() + 90
        waiting = list(self.nodes)
        while waiting:
            waiting = [
                n
                for n in waiting
                if self.docker(n, "info", "--format", "{{.ID}}", check=False, timeout=20).returncode
            ]
            if waiting and time.monotonic() > deadline:
                logs = "; ".join(f"{n.hostname}: {self._tail(n.log)}" for n in waiting)
                raise RuntimeError(f"dockerd did not come up: {logs}")
            if waiting:
                time.sleep(0.5)

    @staticmethod
    def _tail(path: Path, lines: int = 5) -> str:
        try:
            return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _form_swarm(self) -> None:
        m = self.manager
        self.docker(
            m,
            "swarm", "init",
            "--advertise-addr", m.addr,
            "--listen-addr", f"{m.addr}:2377",
            "--task-history-limit", "1",
        )  # fmt: skip
        token = self.docker(m, "swarm", "join-token", "-q", "worker").stdout.strip()
        for n in self.nodes[1:]:
            self.docker(
                n,
                "swarm", "join",
                "--token", token,
                "--advertise-addr", n.addr,
                "--listen-addr", f"{n.addr}:2377",
                f"{m.addr}:2377",
            )  # fmt: skip
        self.wait(lambda: self.ready_nodes() == {n.hostname for n in self.nodes}, 60, "nodes")

    def ready_nodes(self) -> set[str]:
        """Hostnames of the nodes the manager lists as Ready."""
        out = self.manager_docker("node", "ls", "--format", "{{.Hostname}} {{.Status}}").stdout
        return {line.split()[0] for line in out.splitlines() if line.endswith(" Ready")}

    # --- images ------------------------------------------------------------------------------

    _loader_error: BaseException | None = None

    def _load_netdiag_image_guarded(self) -> None:
        t = time.monotonic()
        try:
            self.load_image(self.image)
        except BaseException as exc:
            self._loader_error = exc
        self.timings["image_load"] = round(time.monotonic() - t, 1)

    def load_image(self, image: str, nodes: Sequence[int | str | Node] | None = None) -> None:
        """``docker load`` a local image of the machine's dockerd into nodes (all by default),
        once per run per node; the ``docker save`` tar is cached on disk by image id."""
        targets = [self.node(n) for n in (nodes or self.nodes)]
        with self._load_lock:
            todo = [n for n in targets if (image, n.hostname) not in self._loaded]
            if not todo:
                return
            tar = self._saved(image)
            image_id = _run(["docker", "image", "inspect", "-f", "{{.Id}}", image]).stdout.strip()
            errors: list[str] = []

            def load(n: Node) -> None:
                with open(tar, "rb") as f:
                    r = subprocess.run(
                        ["docker", "-H", n.sock, "load", "-q"],
                        stdin=f,
                        capture_output=True,
                        timeout=600,
                    )
                if r.returncode:
                    errors.append(f"{n.hostname}: {r.stderr.decode(errors='replace').strip()}")
                    return
                # the cached tar carries the tag it was saved under (another tag of the same
                # image id may have made it): name the loaded image as asked
                r = subprocess.run(
                    ["docker", "-H", n.sock, "tag", image_id, image],
                    capture_output=True,
                    timeout=60,
                )
                if r.returncode:
                    errors.append(f"{n.hostname}: {r.stderr.decode(errors='replace').strip()}")

            threads = [threading.Thread(target=load, args=(n,)) for n in todo]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                raise RuntimeError(f"docker load {image}: {'; '.join(errors)}")
            self._loaded.update((image, n.hostname) for n in todo)

    @staticmethod
    def _saved(image: str) -> Path:
        image_id = _run(["docker", "image", "inspect", "-f", "{{.Id}}", image]).stdout.strip()
        IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
        tar = IMAGE_CACHE / (image_id.replace("sha256:", "")[:24] + ".tar")
        if not tar.exists():
            for old in IMAGE_CACHE.glob("*.tar"):  # a tar nobody used for a day: an old build
                if time.time() - old.stat().st_atime > 86400:
                    old.unlink(missing_ok=True)
            fd, tmp = tempfile.mkstemp(dir=IMAGE_CACHE, suffix=".part")
            os.close(fd)
            try:
                _run(["docker", "save", "-o", tmp, image], timeout=600)
                os.replace(tmp, tar)
            finally:
                Path(tmp).unlink(missing_ok=True)
        os.utime(tar)
        return tar

    # --- services and stacks -------------------------------------------------------------------

    def create_overlay(self, name: str, *extra: str) -> str:
        """An attachable overlay network (removed with the Swarm, or by ``rm_network``)."""
        self.manager_docker("network", "create", "-d", "overlay", "--attachable", *extra, name)
        return name

    def rm_network(self, name: str) -> None:
        self.manager_docker("network", "rm", name, check=False)

    def deploy_stack(self, name: str, compose_file: str | Path, env: dict[str, str] | None = None):
        """``docker stack deploy`` against the manager, with ``env`` for ${VAR} substitution.
        Images are local: no registry lookup (``--resolve-image never``)."""
        full_env = {**os.environ, **(env or {})}
        return _run(
            [
                "docker", "-H", self.manager.sock,
                "stack", "deploy", "--resolve-image", "never", "-c", str(compose_file), name,
            ],
            env=full_env,
            timeout=120,
        )  # fmt: skip

    def rm_stack(self, name: str, wait: float = 60) -> None:
        """Remove a stack and wait until its services and networks are gone."""
        self.manager_docker("stack", "rm", name, check=False)

        def gone() -> bool:
            label = f"label=com.docker.stack.namespace={name}"
            services = self.manager_docker("service", "ls", "-q", "--filter", label).stdout
            nets = self.manager_docker("network", "ls", "-q", "--filter", label).stdout
            return not services.strip() and not nets.strip()

        self.wait(gone, wait, f"stack {name} removal", raise_on_timeout=False)

    def tasks(self, service: str) -> list[dict]:
        """The service's tasks whose desired state is running (``docker service ps`` rows as
        dicts: Node, CurrentState, Error...); [] when there is no such service."""
        r = self.manager_docker(
            "service", "ps", service, "--no-trunc",
            "--filter", "desired-state=running",
            "--format", "{{json .}}",
            check=False,
        )  # fmt: skip
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def rm_service(self, service: str, wait: float = 60) -> None:
        """Remove a service and wait until its containers are gone from every node."""
        self.manager_docker("service", "rm", service, check=False)
        label = f"label=com.docker.swarm.service.name={service}"

        def gone() -> bool:
            return not any(
                self.docker(n, "ps", "-aq", "--filter", label, check=False).stdout.strip()
                for n in self.nodes
            )

        self.wait(gone, wait, f"removal of {service}", raise_on_timeout=False)

    def wait_tasks(self, service: str, count: int, timeout: float = 120) -> list[dict]:
        """Wait until ``count`` tasks of the service run; return them."""
        box: list[list[dict]] = [[]]

        def running() -> bool:
            box[0] = [t for t in self.tasks(service) if t["CurrentState"].startswith("Running")]
            return len(box[0]) >= count

        self.wait(running, timeout, f"{count} running tasks of {service}")
        return box[0]

    def container_of(self, service: str, node: int | str | Node) -> str:
        """The id of the service's running container on that node."""
        out = self.docker(
            node, "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={service}"
        ).stdout.split()
        if not out:
            raise LookupError(f"no container of {service} on {self.node(node).hostname}")
        return out[0]

    def overlay_ip(self, node: int | str | Node, container: str, network: str) -> str:
        """The container's address on the overlay ``network``."""
        fmt = f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}'
        return self.docker(node, "inspect", "-f", fmt, container).stdout.strip()

    def fetch(
        self, node: int | str | Node, container: str, *urls: str, timeout: float = 5
    ) -> list[dict]:
        """GET each URL from inside ``container`` (FETCH_SCRIPT): one dict per URL."""
        r = self.docker(node, "exec", container, "python3", "-c", FETCH_SCRIPT, str(timeout),
                        *urls, timeout=60 + 10 * len(urls))  # fmt: skip
        return [json.loads(line) for line in r.stdout.splitlines()]

    def wait(self, cond: object, timeout: float, what: str, raise_on_timeout: bool = True) -> bool:
        """Poll ``cond()`` every half second until true or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            if cond():  # type: ignore[operator]
                return True
            if time.monotonic() > deadline:
                if raise_on_timeout:
                    raise TimeoutError(f"swarm: no {what} within {timeout}s")
                return False
            time.sleep(0.5)

    # --- faults ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def cut_vxlan(self, node: int | str | Node) -> Iterator[None]:
        """Drop VXLAN (4789/udp) arriving at the node, until the block ends."""
        rule = ["INPUT", "-p", "udp", "--dport", "4789", "-j", "DROP"]
        self.exec_in_node_ns(node, ["iptables", "-I", *rule])
        try:
            yield
        finally:
            self.exec_in_node_ns(node, ["iptables", "-D", *rule], check=False)

    def set_offloads(self, on: bool) -> None:
        """Segmentation/receive offloads of every node's underlay interface on or off."""
        for n in self.nodes:
            args: list[str] = []
            for feature in OFFLOADS:
                args += [feature, "on" if on else "off"]
            self.exec_in_node_ns(n, ["ethtool", "-K", "eth0", *args], check=False)

    @staticmethod
    def black_hole_limit(mtu: int = 1400) -> int:
        """The largest overlay (inner) packet that still reaches the node under
        ``mtu_black_hole(node, mtu)``: the veth's MTU + 4 bytes of slack - 50 of VXLAN."""
        return mtu + 4 - 50

    @contextlib.contextmanager
    def mtu_black_hole(self, node: int | str | Node, mtu: int = 1400) -> Iterator[None]:
        """Overlay frames bigger than ``mtu`` to the node vanish without ICMP (module doc)."""
        n = self.node(node)
        self.set_offloads(False)
        _ip("-n", n.ns, "link", "set", "eth0", "mtu", str(mtu))
        try:
            yield
        finally:
            _ip("-n", n.ns, "link", "set", "eth0", "mtu", "1500", check=False)
            self.set_offloads(True)

    # --- teardown ------------------------------------------------------------------------------

    def release(self) -> None:
        """Let go of the lock and leave the Swarm running."""
        if self._lock_file is not None:
            self._lock_file.close()  # type: ignore[attr-defined]
            self._lock_file = None

    def stop(self) -> None:
        """Kill the daemons by pid file, every process left in the nodes' namespaces and
        cgroups, delete the namespaces, cgroups and directories: everything by its name."""
        try:
            self._remove_leftovers()
        finally:
            self.release()

    def _remove_leftovers(self) -> None:
        t = time.monotonic()
        # 1. dockerd by pid file: SIGTERM stops its containers and containerd (2 s grace each)
        daemons = []
        for n in self.nodes:
            pid = _read_pid(n.pidfile)
            if pid and _is_dockerd(pid):
                _signal(pid, signal.SIGTERM)
                daemons.append(pid)
        _wait_gone(daemons, 20)
        for pid in daemons:
            _signal(pid, signal.SIGKILL)
        # 2. whatever is left: processes in the nodes' namespaces (containerd, shims, proxies)
        #    and in the nodes' cgroups (container processes live in namespaces of their own)
        for _ in range(3):
            pids = set()
            for n in self.nodes:
                pids |= _netns_pids(n.ns) | _cgroup_pids(n.cgroup_parent)
            pids.discard(os.getpid())
            if not pids:
                break
            for pid in pids:
                _signal(pid, signal.SIGKILL)
            _wait_gone(list(pids), 10)
        for n in self.nodes:
            _remove_cgroups(n.cgroup_parent)
        for ns in [*(n.ns for n in self.nodes), self.lab_ns]:
            if Path("/run/netns", ns).exists():
                _ip("netns", "del", ns, check=False)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self._remove_data_dir()
        self._loaded.clear()
        self.timings["teardown"] = round(time.monotonic() - t, 1)

    def _remove_data_dir(self) -> None:
        """Rename the data roots (GBs of vfs copies) aside and delete them in the background:
        the next run can start at once, and it removes any trash a killed run left."""
        parent = self.data_dir.parent
        stem = self.data_dir.name
        if self.data_dir.exists():
            with contextlib.suppress(OSError):
                self.data_dir.rename(parent / f"{stem}.trash-{os.getpid()}-{time.time_ns()}")
        trash = sorted(str(p) for p in parent.glob(f"{stem}.trash-*"))
        if trash:
            subprocess.Popen(
                ["rm", "-rf", "--one-file-system", *trash],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_dockerd(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "dockerd"
    except OSError:
        return False


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{p}").exists() and not _zombie(p) for p in pids):
            return
        time.sleep(0.2)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _netns_pids(ns: str) -> set[int]:
    if not Path("/run/netns", ns).exists():
        return set()
    r = _ip("netns", "pids", ns, check=False)
    return {int(p) for p in r.stdout.split() if p.isdigit()}


def _cgroup_pids(parent: str) -> set[int]:
    root = Path("/sys/fs/cgroup/pids") / parent.lstrip("/")
    pids: set[int] = set()
    if root.is_dir():
        for procs in root.rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                pids |= {int(p) for p in procs.read_text().split()}
    return pids


def _remove_cgroups(parent: str) -> None:
    for c in (*CGROUP_CONTROLLERS, "systemd"):
        root = Path("/sys/fs/cgroup") / c / parent.lstrip("/")
        if not root.is_dir():
            continue
        for d in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                d.rmdir()
        with contextlib.suppress(OSError):
            root.rmdir()


@contextlib.contextmanager
def running_swarm(keep: bool = False, **kw: object) -> Iterator[Swarm]:
    """A started Swarm, stopped on exit even when the body fails. With ``keep`` (for working on
    tests: NETDIAG_SWARM_KEEP=1) a Swarm left up by an earlier run is reused and this one is
    left up; ``Swarm().stop()`` or a run without keep removes it."""
    s = Swarm(**kw)  # type: ignore[arg-type]
    if not (keep and s.attach()):
        s.start()
    try:
        yield s
    finally:
        if keep:
            s.release()
        else:
            s.stop()
