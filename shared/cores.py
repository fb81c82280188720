"""How many processes a service starts when it is not told: the cores it may use, at most 4.

`make run` and the compose containers start one API process and one model process per usable
core, the layout measured fastest (docs/performance.md); above 4, measure first (MAX_CORES).
Usable means what the kernel lets this process have, not what the machine has: the CPUs it may
run on (`os.sched_getaffinity`: taskset, `docker run --cpuset-cpus`) and the CPU time its
control group may take, rounded up (the cgroup v2 `cpu.max` or v1 `cpu.cfs_quota_us` quota:
compose's `cpus:` limit, systemd's CPUQuota). `os.cpu_count()` sees neither: a container held
to 2 cores on a 64-core host would start 64 processes that queue for those 2.

Standard library only, so that `python3 -m shared.cores` (the Makefile) runs before the
virtualenv exists.
"""

import math
import os
from pathlib import Path, PurePosixPath

MAX_CORES = 4
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def usable_cores(
    cap: int = MAX_CORES, root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP
) -> int:
    # Linux only; elsewhere (a developer's macOS) the machine's count is the best there is.
    affinity = getattr(os, "sched_getaffinity", None)
    cores = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
    quota = cpu_quota(root, proc_cgroup)
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, min(cores, cap))


def cpu_quota(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The tightest CPU quota, in cores, from this process's group up to the root (a parent's
    quota binds its children too); None where no level has one."""
    quotas = [q for d in group_dirs(root, proc_cgroup) if (q := quota_in(d)) is not None]
    return min(quotas, default=None)


def group_dirs(root: Path, proc_cgroup: Path) -> list[Path]:
    """This process's cgroup v2 group (`0::/path`) or v1 cpu group (`N:cpu,cpuacct:/path`) and
    each of its parents, as directories under the mount. In a container the mount's root is the
    container's own group, while the path may be the host's (`/docker/<id>`, not mounted): the
    walk up reaches the root all the same; a directory that does not exist holds no quota."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return [root]
    dirs: list[Path] = []
    for line in lines:
        if line.count(":") < 2:  # not a cgroup line: no quota read from it
            continue
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            base = root
        elif "cpu" in controllers.split(","):
            base = root / controllers
        else:
            continue
        parts = PurePosixPath(path).parts[1:]
        dirs += [base.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]
    return dirs or [root]


def quota_in(group: Path) -> float | None:
    """cgroup v2 `cpu.max` ("150000 100000", or "max 100000": none) or v1 `cpu.cfs_quota_us`
    over `cpu.cfs_period_us` (-1: none)."""
    try:
        quota, period = (group / "cpu.max").read_text().split()
    except OSError:
        try:
            quota = (group / "cpu.cfs_quota_us").read_text().strip()
            period = (group / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    except ValueError:  # not "QUOTA PERIOD": read as no quota rather than refuse to start
        return None
    if quota in ("max", "-1"):
        return None
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None


if __name__ == "__main__":
    print(usable_cores())
