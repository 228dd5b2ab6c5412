"""Resident memory of this process, for the benches that measure growth over many cycles (not the peak)."""

from __future__ import annotations

import os


def rss_kb() -> int:
    """Resident set size now, in KB (Linux: /proc/self/statm)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024
