"""The Xet file mapping (db/xet.py): recorded once, and gone with its LFS object."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert

from aicommons.db.engine import make_engine, upgrade_schema
from aicommons.db.tables import lfs_objects
from aicommons.db.xet import XetFileRow, XetFileStore

NOW = datetime(2026, 1, 2, 3, 4, 5)


def test_mapping_is_recorded_once_and_follows_its_lfs_object(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    upgrade_schema(engine)
    store = XetFileStore(engine)
    oid = "a" * 64
    with engine.begin() as conn:
        conn.execute(insert(lfs_objects).values(oid=oid, size=10, created_at=NOW))
    store.record("f" * 64, oid, 10, "s" * 64, NOW)
    store.record("f" * 64, oid, 10, "t" * 64, NOW)  # a later shard describing the same file
    assert store.get("f" * 64) == XetFileRow("f" * 64, oid, 10, "s" * 64)
    assert store.for_oid(oid) == [XetFileRow("f" * 64, oid, 10, "s" * 64)]
    with engine.begin() as conn:  # blob GC drops the object row: the mapping goes with it
        conn.execute(delete(lfs_objects).where(lfs_objects.c.oid == oid))
    assert store.get("f" * 64) is None
    engine.dispose()


def test_xet_hashes_are_looked_up_in_bulk(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    upgrade_schema(engine)
    store = XetFileStore(engine)
    oids = [f"{i:064x}" for i in range(1500)]  # more than one IN list
    with engine.begin() as conn:
        conn.execute(insert(lfs_objects), [{"oid": oid, "size": 1, "created_at": NOW} for oid in oids])
    for i, oid in enumerate(oids[::2]):
        store.record(f"{i:063x}f", oid, 1, "s" * 64, NOW)
    store.record("e" * 64, oids[0], 1, "s" * 64, datetime(2027, 1, 1))  # a later hash of the same object
    found = store.hashes_for_oids(oids + ["nothing"])
    assert set(found) == set(oids[::2]) and found[oids[0]] == f"{0:063x}f"
    assert store.hashes_for_oids([]) == {}
    engine.dispose()
