"""A real dockerd for the tests: started once when missing, plus a tiny local image.

No registry is reachable here, so images are made locally: ``netdiag-test-busybox:1`` is
Debian's static busybox imported as a one-file image (about a second to build).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

DOCKERD_LOG = Path("/tmp/netdiag-dockerd.log")
LOCK = Path("/tmp/netdiag-dockerd.lock")
BUSYBOX_IMAGE = "netdiag-test-busybox:1"
REPO = Path(__file__).resolve().parents[2]
PREFIX = "ndtest"  # every docker object the tests create is named ndtest-...


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=check, timeout=timeout
    )


def engine_up() -> bool:
    try:
        return (
            docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=10).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def ensure_dockerd(wait: float = 90) -> None:
    """Start dockerd (vfs storage) unless one answers; safe to call from parallel processes."""
    if engine_up():
        return
    if not shutil.which("dockerd"):
        raise RuntimeError("dockerd is not installed (apt-get install docker.io)")
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if engine_up():
            return
        log = open(DOCKERD_LOG, "ab")  # noqa: SIM115 - handed to the daemon
        subprocess.Popen(
            ["dockerd", "--storage-driver=vfs"],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        end = time.monotonic() + wait
        while time.monotonic() < end:
            if engine_up():
                return
            time.sleep(0.5)
    raise RuntimeError(f"dockerd did not come up within {wait}s; see {DOCKERD_LOG}")


def ensure_busybox_image() -> str:
    """A local image holding only /bin/busybox and its applet links; built once."""
    if docker("image", "inspect", BUSYBOX_IMAGE, check=False).returncode == 0:
        return BUSYBOX_IMAGE
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(busybox):
        raise RuntimeError("busybox is not installed (apt-get install busybox-static)")
    with tempfile.TemporaryDirectory() as root:
        rootfs = Path(root)
        for d in ("bin", "etc", "tmp", "proc", "sys", "dev"):
            (rootfs / d).mkdir()
        shutil.copy2(busybox, rootfs / "bin/busybox")
        applets = subprocess.run([busybox, "--list"], capture_output=True, text=True).stdout
        for applet in applets.split():
            link = rootfs / "bin" / applet
            if not link.exists():
                link.symlink_to("busybox")
        (rootfs / "etc/passwd").write_text("root:x:0:0:root:/:/bin/sh\n")
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            ["docker", "import", "-c", 'CMD ["/bin/sh"]', "-", BUSYBOX_IMAGE],
            stdin=tar.stdout,
            check=True,
            capture_output=True,
        )
        tar.wait()
    return BUSYBOX_IMAGE


def host_python_mounts() -> list[str]:
    """docker run flags that let a busybox container run this very interpreter read-only."""
    flags = ["-v", "/usr:/usr:ro", "-v", "/usr/lib:/lib:ro"]
    if Path("/usr/lib64").is_dir():
        flags += ["-v", "/usr/lib64:/lib64:ro"]
    for prefix in sorted({sys.base_prefix, sys.prefix}):
        if not prefix.startswith("/usr/") and prefix != "/usr":
            flags += ["-v", f"{prefix}:{prefix}:ro"]
    return [*flags, "-v", f"{REPO}:/src:ro", "-e", "PYTHONPATH=/src", "-w", "/src"]


def unique(kind: str) -> str:
    """A name for a docker object this test run owns: ndtest-<kind>-<random>."""
    return f"{PREFIX}-{kind}-{uuid.uuid4().hex[:8]}"


class DockerLab:
    """Creates networks and containers by name and removes exactly those on cleanup."""

    def __init__(self) -> None:
        self.containers: list[str] = []
        self.networks: list[str] = []
        self.image = ensure_busybox_image()

    def network(self, internal: bool = True, subnet: str | None = None) -> str:
        name = unique("net")
        args = ["network", "create"]
        if internal:
            args.append("--internal")
        if subnet:
            args += ["--subnet", subnet]
        docker(*args, name)
        self.networks.append(name)
        return name

    def container(
        self,
        network: str,
        aliases: tuple[str, ...] = (),
        command: tuple[str, ...] = ("sleep", "3600"),
        name: str | None = None,
        extra: tuple[str, ...] = (),
    ) -> str:
        name = name or unique("ctr")
        args = ["run", "-d", "--name", name, "--network", network]
        for alias in aliases:
            args += ["--network-alias", alias]
        docker(*args, *extra, self.image, *command)
        self.containers.append(name)
        return name

    def ip(self, container: str, network: str) -> str:
        fmt = f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}'
        return docker("inspect", "-f", fmt, container).stdout.strip()

    def pid(self, container: str) -> int:
        return int(docker("inspect", "-f", "{{.State.Pid}}", container).stdout.strip())

    def cleanup(self) -> None:
        if self.containers:
            docker("rm", "-f", *self.containers, check=False)
        for net in self.networks:
            docker("network", "rm", net, check=False)
        self.containers.clear()
        self.networks.clear()
