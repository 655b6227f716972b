"""Where one call's time goes: cProfile over N sequential requests through the real ASGI app, in
one thread (the blocking handlers run inline instead of on the thread pool, so the profile sees
them), on a fresh hub with 50 small repos.

    python -m bench.metadata.profile_call "/api/models/alice/m{i}" 500 tottime
    python -m bench.metadata.profile_call "/alice/m{i}/resolve/main/README.md" 500 cumulative
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path


def main(path: str, n: int = 300, sort: str = "cumulative") -> None:
    os.environ["AICOMMONS_DATA_DIR"] = str(Path(tempfile.mkdtemp()))
    for name in ("API", "ANON_API", "RESOLVER", "ANON_RESOLVER"):
        os.environ[f"AICOMMONS_{name}_REQUESTS_PER_MINUTE"] = "0"
    os.environ["AICOMMONS_LOG_LEVEL"] = "warning"
    import anyio.to_thread
    import httpx

    from aicommons.app import create_app
    from aicommons.config import Settings
    from aicommons.hub.commits import AddFile, CommitRequest
    from aicommons.hub.hub import Hub

    settings = Settings.from_env()
    hub = Hub(settings)
    principal = hub.accounts.principal_for_account(hub.accounts.create_user("alice"))
    readme = b"---\nlicense: mit\nlibrary_name: transformers\ntags:\n- demo\n---\n# m\n"
    for i in range(50):
        repo, _ = hub.repos.create(principal, "model", f"m{i}", None, False)
        hub.commits.commit(repo, principal, "main", CommitRequest("add", operations=(
            AddFile("README.md", readme), AddFile("config.json", b"{}"))))

    async def inline(fn, *args, **kwargs):
        return fn(*args)

    anyio.to_thread.run_sync = inline  # handlers in this thread, where the profiler looks
    app = create_app(settings, hub)

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
            for i in range(50):  # warm-up
                (await client.get(path.format(i=i))).raise_for_status()
            profile = cProfile.Profile()
            t0 = time.perf_counter()
            profile.enable()
            for i in range(n):
                await client.get(path.format(i=i % 50))
            profile.disable()
            print(f"{path}: {(time.perf_counter() - t0) / n * 1000:.2f} ms a request (profiled)")
            pstats.Stats(profile).sort_stats(sort).print_stats(35)

    asyncio.run(run())
    hub.close()


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) if a.isdigit() else a for a in sys.argv[2:]))
