"""The processes a service starts when not told (shared/cores.py): the cores this process may use,
its CPU affinity and its control group's CPU quota rounded up, at most 4, at least 1. Each case
lays out the cgroup files a kernel would show, in tmp_path."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.cores import MAX_CORES, usable_cores
from shared.settings import Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cpus(monkeypatch: pytest.MonkeyPatch):
    """Pins this process to `n` CPUs, as far as shared.cores can tell."""

    def pin(n: int) -> None:
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(n)))

    return pin


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def cores(tmp_path: Path, proc_cgroup: str) -> int:
    write(tmp_path / "proc-self-cgroup", proc_cgroup)
    return usable_cores(root=tmp_path / "cgroup", proc_cgroup=tmp_path / "proc-self-cgroup")


def test_a_cgroup_v2_quota_is_rounded_up(tmp_path: Path, cpus) -> None:
    cpus(8)
    write(tmp_path / "cgroup/cpu.max", "150000 100000\n")  # compose's cpus: "1.5"
    assert cores(tmp_path, "0::/\n") == 2


def test_without_a_quota_the_affinity_counts_up_to_four(tmp_path: Path, cpus) -> None:
    write(tmp_path / "cgroup/cpu.max", "max 100000\n")
    cpus(3)
    assert cores(tmp_path, "0::/\n") == 3
    cpus(64)
    assert cores(tmp_path, "0::/\n") == MAX_CORES == 4


def test_fewer_pinned_cpus_than_the_quota_allows_win(tmp_path: Path, cpus) -> None:
    cpus(1)  # docker run --cpuset-cpus=0
    write(tmp_path / "cgroup/cpu.max", "400000 100000\n")
    assert cores(tmp_path, "0::/\n") == 1


def test_a_parent_groups_quota_binds_its_children(tmp_path: Path, cpus) -> None:
    cpus(16)
    write(tmp_path / "cgroup/system.slice/cpu.max", "200000 100000\n")
    write(tmp_path / "cgroup/system.slice/realty.service/cpu.max", "max 100000\n")
    assert cores(tmp_path, "0::/system.slice/realty.service\n") == 2


def test_a_cgroup_v1_container_reads_its_own_group_at_the_mount(tmp_path: Path, cpus) -> None:
    """Docker on cgroup v1 names the host's path (/docker/<id>) but mounts the container's own
    group at /sys/fs/cgroup/cpu,cpuacct."""
    cpus(8)
    write(tmp_path / "cgroup/cpu,cpuacct/cpu.cfs_quota_us", "300000\n")
    write(tmp_path / "cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n")
    write(tmp_path / "cgroup/memory/cpu.cfs_quota_us", "100000\n")  # not the cpu controller's
    proc = "12:memory:/docker/0123abcd\n4:cpu,cpuacct:/docker/0123abcd\n0::/docker/0123abcd\n"
    assert cores(tmp_path, proc) == 3


def test_a_cgroup_v1_quota_of_minus_one_is_no_quota(tmp_path: Path, cpus) -> None:
    cpus(2)
    write(tmp_path / "cgroup/cpu/cpu.cfs_quota_us", "-1\n")
    write(tmp_path / "cgroup/cpu/cpu.cfs_period_us", "100000\n")
    assert cores(tmp_path, "1:cpu:/\n2:cpuacct:/\n") == 2


def test_a_fraction_of_a_core_still_gets_one_process(tmp_path: Path, cpus) -> None:
    cpus(8)
    write(tmp_path / "cgroup/cpu.max", "10000 100000\n")
    assert cores(tmp_path, "0::/\n") == 1


def test_no_cgroup_information_leaves_the_affinity(tmp_path: Path, cpus) -> None:
    cpus(2)
    assert usable_cores(root=tmp_path / "none", proc_cgroup=tmp_path / "none" / "cgroup") == 2


def test_files_a_kernel_would_not_write_are_read_as_no_quota(tmp_path: Path, cpus) -> None:
    """Settings() counts the cores: a surprise in /sys or /proc must not stop a service."""
    cpus(2)
    write(tmp_path / "cgroup/cpu.max", "garbage\n")
    assert cores(tmp_path, "0::/\n") == 2
    write(tmp_path / "cgroup/cpu.max", "100000 0\n")
    assert cores(tmp_path, "0::/\n") == 2
    write(tmp_path / "cgroup/cpu.max", "100000 100000\n")
    assert cores(tmp_path, "not a cgroup line\n0::/\n") == 1
    assert cores(tmp_path, "") == 1  # nothing listed: the mount's root, its quota


def test_without_sched_getaffinity_the_machines_count_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """macOS and Windows have no CPU affinity call."""
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert usable_cores(root=tmp_path / "none", proc_cgroup=tmp_path / "none" / "cgroup") == 3


def test_the_module_prints_the_count_for_the_makefile() -> None:
    """`python3 -m shared.cores`: the system Python, before the virtualenv exists (-S: no
    site-packages, so an import beyond the standard library fails here)."""
    printed = subprocess.run(
        [sys.executable, "-S", "-m", "shared.cores"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed == f"{usable_cores()}\n"


def test_a_workers_concurrency_defaults_to_the_usable_cores(
    monkeypatch: pytest.MonkeyPatch, cpus
) -> None:
    """Unset, or empty as compose passes an unset WORKER_CONCURRENCY: the cores; set: that."""
    cpus(3)
    monkeypatch.delenv("REALTY_WORKER_CONCURRENCY", raising=False)
    assert Settings().worker_concurrency == usable_cores() > 0
    monkeypatch.setenv("REALTY_WORKER_CONCURRENCY", "")
    assert Settings().worker_concurrency == usable_cores()
    monkeypatch.setenv("REALTY_WORKER_CONCURRENCY", "7")
    assert Settings().worker_concurrency == 7
