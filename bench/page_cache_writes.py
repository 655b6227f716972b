"""What writing new bytes into a new file costs, by write size (docs/benchmarks.md, "Pull-through
mirror", session 9): the page cache's cost of new memory, with no network and no hub.

Writes ``BENCH_WRITES_MIB`` (256) MiB from one reused 4 MiB buffer into a new file, for each write
size, ``BENCH_WRITES_ROUNDS`` (4) times with the order rotated, and prints the medians of wall time
and of this process's system CPU. On a virtual machine that hands free memory back to its host, the
sizes that land in large page-cache folios can cost ten times the others. Files go under
``BENCH_WRITES_DIR`` (a temporary folder by default) and are removed.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import tempfile
import time

MiB = 1024 * 1024
SIZES = (16 * 1024, 32 * 1024, 64 * 1024, 256 * 1024, 4 * MiB)


def system_seconds() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def write_new(path: str, buffer: memoryview, total: int, piece: int) -> tuple[float, float]:
    """(wall, system CPU) seconds to write ``total`` bytes into a new file in ``piece``-byte writes."""
    sys0, start = system_seconds(), time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for _ in range(total // len(buffer)):
            for i in range(0, len(buffer), piece):
                os.write(fd, buffer[i:i + piece])
    finally:
        os.close(fd)
    return time.perf_counter() - start, system_seconds() - sys0


def main() -> None:
    total = int(os.environ.get("BENCH_WRITES_MIB", "256")) * MiB
    rounds = int(os.environ.get("BENCH_WRITES_ROUNDS", "4"))
    folder = tempfile.mkdtemp(prefix="bench-writes-", dir=os.environ.get("BENCH_WRITES_DIR"))
    buffer = memoryview(os.urandom(4 * MiB))
    results: dict[int, list[tuple[float, float]]] = {size: [] for size in SIZES}
    print(f"load {' '.join(open('/proc/loadavg').read().split()[:3])}")
    try:
        for r in range(rounds):
            for size in SIZES[r % len(SIZES):] + SIZES[:r % len(SIZES)]:
                results[size].append(write_new(os.path.join(folder, f"{size}-{r}"), buffer, total, size))
        for size, runs in results.items():
            print(f"{size // 1024:5d} KiB writes: wall {statistics.median(w for w, _ in runs):.3f} s, "
                  f"system CPU {statistics.median(s for _, s in runs):.3f} s (median of {len(runs)})")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"load {' '.join(open('/proc/loadavg').read().split()[:3])}")


if __name__ == "__main__":
    main()
