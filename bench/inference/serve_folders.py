"""Serve local model folders through the inference routes, in its own process (for benchmarks):

    python -m bench.inference.serve_folders --port 8123 acme/tiny-llama=/path/to/llama ...

Its own process so the load generator and the server do not share one interpreter's GIL, as real
clients and servers do not. Settings come from AICOMMONS_INFERENCE_* as in production.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from aicommons.errors import RepoNotFound
from aicommons.inference import build_inference_service, inference_routes
from aicommons.inference.source import ResolvedModel, split_model_ref


class FolderSource:
    def __init__(self, folders: dict[str, Path]):
        self.folders = folders

    def resolve(self, model: str, principal) -> ResolvedModel:
        repo_id, _ = split_model_ref(model)
        if repo_id not in self.folders:
            raise RepoNotFound(f"Repository {repo_id} not found")
        commit = hashlib.sha1(str(self.folders[repo_id]).encode()).hexdigest()
        return ResolvedModel(repo_id, commit, self.folders[repo_id], {})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("models", nargs="+", help="repo_id=folder")
    args = parser.parse_args()
    folders = {k: Path(v) for k, v in (m.split("=", 1) for m in args.models)}
    service = build_inference_service(None, FolderSource(folders))
    app = Starlette(routes=inference_routes(service))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
