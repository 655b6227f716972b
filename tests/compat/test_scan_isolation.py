"""The live hub scans hostile uploads in limited worker processes: its own memory stays flat
while a scan worker chews on a pickle opcode flood and a decompression bomb, and each ends as a
finding or an ``error`` (issue 9: finding 6, finding 16, "bounded everything")."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from huggingface_hub import CommitOperationAdd

from .test_scans import wait_for_scans


def memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def scan_workers_of(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return [c for c in children if b"aicommons.scanning.worker" in Path(f"/proc/{c}/cmdline").read_bytes()]


def opcode_flood() -> bytes:
    return b"\x80\x02" + b"cos\nsystem\n" * 2_000_000 + b"."  # 22 MB of one GLOBAL opcode


def long_name_bomb() -> bytes:
    """~0.5 MB of tar.gz that decompresses to 500 MB of pax headers (long member names)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        for i in range(2000):
            archive.addfile(tarfile.TarInfo(f"{i:05d}" + "n" * (256 * 1024)), io.BytesIO(b""))
    return buffer.getvalue()


def test_server_memory_stays_flat_while_hostile_files_are_scanned(api, repo_id, live_hub):
    pid = live_hub.process.pid
    flood, bomb = opcode_flood(), long_name_bomb()
    assert len(bomb) < 2 << 20
    before = memory_kib(pid)
    api.create_commit(repo_id, [CommitOperationAdd("flood.pkl", flood), CommitOperationAdd("names.tar.gz", bomb)],
                      commit_message="hostile")
    status = wait_for_scans(api, repo_id, timeout=240)
    after = memory_kib(pid)
    assert status["scansDone"], status

    issues = {f["path"]: f["level"] for f in status["filesWithIssues"]}
    assert issues["flood.pkl"] == "unsafe"  # os.system, found once
    assert issues["names.tar.gz"] in ("unsafe", "error")  # a bomb, or a metadata limit
    assert scan_workers_of(pid), "the scans ran in the server process"
    # Peak resident memory of the server grew by less than 60 MiB (in-process, the flood alone
    # took ~600 MB and the tar.gz ~1.3 GB).
    grown = (after["VmHWM"] - before["VmHWM"]) / 1024
    assert grown < 60, f"server peak RSS grew {grown:.0f} MiB ({before} -> {after})"
