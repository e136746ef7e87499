"""The ``disks`` dataset: one instance per mounted file system.

Space as ``df`` counts it (``free`` is what a normal user can still
write; ``used_pct`` is used / (used + free), so a disk with its reserved
blocks left shows 100 %), and inodes, which run out on their own. A file
system mounted after the collector started gets its instance (and at the
recorder its RRD) on the next sample; one unmounted simply stops being
sent, so its graphs go stale rather than show an error.

Instance names come from the mount point: ``/`` -> ``root``,
``/var/log`` -> ``var_log`` (see :func:`mount_instance`).
"""

import fnmatch
import hashlib
import logging
import os

import psutil

from affair.names import safe_name

log = logging.getLogger(__name__)


def mount_instance(mountpoint):
    """``/`` -> ``root``; ``/var/log`` -> ``var_log``; always a valid instance name."""
    name = safe_name("instance", mountpoint.strip("/"))
    if name is None:
        return "root" if mountpoint.strip("/") == "" else _hashed(mountpoint)
    return name


def _hashed(text):
    return "m" + hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


class DisksProbe:
    name = "disks"
    variables = ("used", "free", "size", "used_pct", "inodes_used", "inodes_free", "inodes_pct")

    def __init__(self, settings=None, partitions=None, statvfs=os.statvfs, isdir=os.path.isdir):
        self.exclude_fstypes = set(settings.exclude_fstypes) if settings else set()
        self.exclude_mounts = tuple(settings.exclude_mounts) if settings else ()
        self.partitions = partitions or (lambda: psutil.disk_partitions(all=False))
        self.statvfs = statvfs
        self.isdir = isdir
        self._failing = set()  # mount points whose statvfs failed, logged once

    @classmethod
    def from_config(cls, collector_config):
        return cls(collector_config.disks)

    def sample(self):
        result = {}
        for partition in self.partitions():
            mountpoint = partition.mountpoint
            if partition.fstype in self.exclude_fstypes or any(
                fnmatch.fnmatchcase(mountpoint, pattern) for pattern in self.exclude_mounts
            ):
                continue
            if not self.isdir(mountpoint):  # a file bind-mounted into a container (/etc/hosts)
                continue
            try:
                stats = self.statvfs(mountpoint)
            except OSError as error:  # a hung or vanished mount: skip it this time
                if mountpoint not in self._failing:
                    self._failing.add(mountpoint)
                    log.warning("disks: cannot stat %s: %s", mountpoint, error)
                continue
            self._failing.discard(mountpoint)
            instance = mount_instance(mountpoint)
            if instance in result:  # two mount points that clean up to the same name
                instance = _hashed(mountpoint)
            result[instance] = disk_values(stats)
        return result


def disk_values(stats):
    """Space and inode figures of one ``os.statvfs`` result, as ``df`` computes them."""
    block = stats.f_frsize or stats.f_bsize
    size = stats.f_blocks * block
    used = (stats.f_blocks - stats.f_bfree) * block
    free = stats.f_bavail * block
    values = {
        "used": float(used),
        "free": float(free),
        "size": float(size),
        "used_pct": 100.0 * used / (used + free) if used + free else None,
    }
    if stats.f_files:  # some file systems (btrfs, NFS) report no inode table
        inodes_used = stats.f_files - stats.f_ffree
        values["inodes_used"] = float(inodes_used)
        values["inodes_free"] = float(stats.f_favail)
        total = inodes_used + stats.f_favail
        values["inodes_pct"] = 100.0 * inodes_used / total if total else None
    else:
        values.update(inodes_used=None, inodes_free=None, inodes_pct=None)
    return values
