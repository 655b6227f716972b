"""Run ``async def`` tests without an asyncio pytest plugin (none is a project dependency)."""

import asyncio
import functools


def run_async(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper
