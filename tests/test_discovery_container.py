"""Container detection: recorded mountinfo/cgroup texts, fuzzing, and a real container."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netdiag.discovery import container as c
from tests.support.docker_engine import DockerLab, docker

CID = "d70f3aa577a489ece2da15a0687b0076bda639ec477af113cd6bc50423a97de2"
OTHER = "0123456789abcdef" * 4

# Recorded with `docker exec <busybox> cat /proc/self/mountinfo` (dockerd 20.10, vfs driver).
MOUNTINFO_VFS = f"""\
67 44 254:0 /var/lib/docker/vfs/dir/dc80b73224df6f23604b0b8f64de5badfb74cdb5620c53909232dd58b741c9e6 / rw,relatime master:1 - ext4 /dev/vda rw,discard
68 67 0:40 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
73 72 0:29 /docker/{CID} /sys/fs/cgroup/cpu ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,cpu
84 67 254:0 /var/lib/docker/containers/{CID}/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda rw,discard
85 67 254:0 /var/lib/docker/containers/{CID}/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw,discard
86 67 254:0 /var/lib/docker/containers/{CID}/hosts /etc/hosts rw,relatime - ext4 /dev/vda rw,discard
"""

# Docker 24 on overlay2 with cgroup v2 and a private cgroup namespace: cgroup says only 0::/.
MOUNTINFO_OVERLAY = f"""\
612 534 0:52 / / rw,relatime master:290 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/ABC:/var/lib/docker/overlay2/l/DEF,upperdir=/var/lib/docker/overlay2/9f1/diff,workdir=/var/lib/docker/overlay2/9f1/work
613 612 0:56 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
620 612 8:1 /var/lib/docker/containers/{CID}/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/sda1 rw
621 612 8:1 /var/lib/docker/containers/{CID}/hostname /etc/hostname rw,relatime - ext4 /dev/sda1 rw
622 612 8:1 /var/lib/docker/containers/{CID}/hosts /etc/hosts rw,relatime - ext4 /dev/sda1 rw
"""

# Docker Desktop keeps its data root on a separate disk: the source path starts at that root.
MOUNTINFO_DATA_ROOT = f"""\
1 0 0:1 / / rw - overlay overlay rw
2 1 254:1 /docker/containers/{CID}/hostname /etc/hostname rw,relatime - ext4 /dev/vdb1 rw
"""

# A data root with a space in it, octal-escaped by the kernel.
MOUNTINFO_ESCAPED = f"""\
2 1 254:1 /srv/my\\040docker/containers/{CID}/hostname /etc/hostname rw - ext4 /dev/vdb1 rw
"""

# Podman (rootful): /etc/hostname comes from overlay-containers/<id>/userdata.
MOUNTINFO_PODMAN = f"""\
900 800 0:70 /containers/storage/overlay-containers/{CID}/userdata/hostname /etc/hostname rw,nosuid,nodev - tmpfs tmpfs rw
"""

# A plain host, including a bind mount of some other container's file elsewhere.
MOUNTINFO_HOST = f"""\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
90 27 254:0 /var/lib/docker/containers/{OTHER}/hostname /mnt/peek rw - ext4 /dev/vda rw
"""

CGROUP_V1 = (
    "\n".join(
        f"{n}:{ctl}:/docker/{CID}"
        for n, ctl in [(12, "memory"), (11, "cpu,cpuacct"), (1, "name=systemd")]
    )
    + f"\n0::/docker/{CID}\n"
)
CGROUP_V2_SYSTEMD = f"0::/system.slice/docker-{CID}.scope\n"
CGROUP_K8S = f"0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1b2c.slice/cri-containerd-{CID}.scope\n"
CGROUP_V2_PRIVATE = "0::/\n"
CGROUP_HOST = "4:memory:/process_api/bbad7c97b7c52e3046a1b0cd028e969e\n0::/user.slice\n"


@pytest.mark.parametrize(
    "text",
    [MOUNTINFO_VFS, MOUNTINFO_OVERLAY, MOUNTINFO_DATA_ROOT, MOUNTINFO_ESCAPED, MOUNTINFO_PODMAN],
)
def test_id_from_mountinfo(text: str) -> None:
    assert c.id_from_mountinfo(text) == CID


def test_mountinfo_of_a_host_names_no_container() -> None:
    assert c.id_from_mountinfo(MOUNTINFO_HOST) is None
    assert c.id_from_mountinfo("") is None


@pytest.mark.parametrize("text", [CGROUP_V1, CGROUP_V2_SYSTEMD, CGROUP_K8S])
def test_id_from_cgroup(text: str) -> None:
    assert c.id_from_cgroup(text) == CID


@pytest.mark.parametrize("text", [CGROUP_V2_PRIVATE, CGROUP_HOST, "", "garbage"])
def test_cgroup_without_id(text: str) -> None:
    assert c.id_from_cgroup(text) is None


def test_classify_order_and_hostname_rules() -> None:
    got = c.classify(MOUNTINFO_OVERLAY, CGROUP_V2_PRIVATE, "d70f3aa577a4")
    assert (got.in_container, got.id, got.source, got.short_id) == (
        True, CID, "mountinfo", "d70f3aa577a4",
    )  # fmt: skip
    got = c.classify(MOUNTINFO_HOST, CGROUP_V2_SYSTEMD, "web")
    assert (got.in_container, got.id, got.source) == (True, CID, "cgroup")
    # a 12-hex hostname is evidence only next to a marker file
    got = c.classify(MOUNTINFO_HOST, CGROUP_V2_PRIVATE, "d70f3aa577a4", ["/.dockerenv"])
    assert (got.in_container, got.id, got.source) == (True, "d70f3aa577a4", "hostname")
    assert not c.classify(MOUNTINFO_HOST, CGROUP_V2_PRIVATE, "d70f3aa577a4").in_container
    # this very machine: a stray /.dockerenv, a 32-hex cgroup path, hostname "vm"
    got = c.classify(MOUNTINFO_HOST, CGROUP_HOST, "vm", ["/.dockerenv"])
    assert (got.in_container, got.id, got.markers) == (False, None, ["/.dockerenv"])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=500), st.text(max_size=200), st.text(max_size=70))
def test_fuzz_parsers_return_id_or_none(mountinfo: str, cgroup: str, hostname: str) -> None:
    info = c.classify(mountinfo, cgroup, hostname, ["/.dockerenv"])
    assert info.id is None or len(info.id) in (12, 64)


@pytest.mark.slow
@pytest.mark.docker
def test_real_container_id(docker_lab: DockerLab) -> None:
    net = docker_lab.network()
    name = docker_lab.container(net)
    full_id = docker("inspect", "-f", "{{.Id}}", name).stdout.strip()
    inside = docker("exec", name, "cat", "/proc/self/mountinfo").stdout
    cgroup = docker("exec", name, "cat", "/proc/self/cgroup").stdout
    hostname = docker("exec", name, "hostname").stdout.strip()
    got = c.classify(inside, cgroup, hostname)
    assert (got.in_container, got.id, got.source) == (True, full_id, "mountinfo")
    assert c.id_from_hostname(hostname) == full_id[:12]
    # the same answer read from the host through /proc/<pid>
    pid = docker_lab.pid(name)
    got = c.detect(proc=f"/proc/{pid}", root=f"/proc/{pid}/root")
    assert (got.in_container, got.id, got.source) == (True, full_id, "mountinfo")
