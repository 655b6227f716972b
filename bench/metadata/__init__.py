"""The metadata benchmark of issue 10 (``make bench-metadata``): a hub seeded with many repos, a real
``aicommons serve`` driven by ``wrk`` with 64 connections, on SQLite and on PostgreSQL.

    python -m bench.metadata                      # 100,000 repos, both databases, docs/benchmarks.md
    python -m bench.metadata --repos 200 --seconds 2 --no-docs    # the smoke run a test keeps alive

Modules: ``server`` (a hub process and its database), ``seed`` (repos: the hub's own API for the
template and large repos, bulk clones for the rest), ``load`` (wrk and its Lua script), ``snapshot``
(snapshot_download against nginx), ``report`` (JSON and the docs section), ``run`` (the order of it
all).
"""
