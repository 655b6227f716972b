"""Seeding a hub with N repos, quickly but through the hub's real data.

Each hub repo is a bare git repository on disk plus rows in the database, so seeding 100,000 repos
through the API costs about what 100,000 ``create_repo`` + ``create_commit`` calls cost (measured
on every run: ``service_seed``). The benchmark therefore seeds in two steps:

1. Through the hub's own HTTP API with ``huggingface_hub`` (a real server, real commits): one template
   repo per model family (a README with a card, ``config.json`` and a small LFS weights file), a few
   hundred repos made the same way to time that path, the 10,000-file repo and the 1,000-file repo.
2. Bulk clones of the templates: each clone's bare repository is a symlink to its template's (the
   benchmark never writes to a clone; reads take the hub's real path: find the folder, open it with
   libgit2, resolve, walk) and its rows are a copy of the template's, in the ``repos`` table and in every table that points at ``repos.id`` (tags, LFS
   grants, and whatever per-commit data later versions store there), with its own name, owner,
   storage key, download count and dates. Accounts (one per 20 repos) are cloned the same way. The
   tables are read from ``aicommons.db.tables``, so new columns and tables are carried along.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")  # uploads through LFS, as the test suite does
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

FAMILIES = ["llama", "mistral", "qwen", "gemma", "phi", "bert", "roberta", "t5", "whisper", "clip", "vit",
            "falcon", "bloom", "gpt2", "opt", "pythia", "olmo", "deepseek", "yi", "mamba"]
MODIFIERS = ["instruct", "chat", "base", "awq", "gguf", "lora", "finetuned", "distilled", "coder", "math"]
SIZES = ["125m", "350m", "1b", "3b", "7b", "8b", "13b", "34b", "70b"]
PIPELINES = {"bert": "fill-mask", "roberta": "fill-mask", "t5": "text2text-generation",
             "whisper": "automatic-speech-recognition", "clip": "zero-shot-image-classification",
             "vit": "image-classification"}

MIN_REPOS = len(FAMILIES) + 8 + 2  # templates, the timed API repos, the tree and small-files repos
TREE_REPO = "bench/tree-10k"
SMALL_REPO = "bench/small-files"
# Tables that point at repos.id but hold events, not a repo's data: never cloned.
NOT_CLONED = {"repo_redirects", "discussions", "discussion_events", "likes", "access_requests", "file_scans",
              "audit_events", "job_queue", "job_data", "job_schedule", "job_counters"}


@dataclass
class Seeded:
    repos: int = 0
    timings: dict = field(default_factory=dict)  # step -> seconds
    service_seed: dict = field(default_factory=dict)
    sample_ids: list = field(default_factory=list)  # clone ids for model_info
    authors: list = field(default_factory=list)
    tree_files: int = 0
    small_files: dict = field(default_factory=dict)  # path -> bytes


def readme(family: str) -> str:
    pipeline = PIPELINES.get(family, "text-generation")
    return (f"---\nlicense: apache-2.0\nlibrary_name: transformers\npipeline_tag: {pipeline}\n"
            f"tags:\n- {family}\n- benchmark\nlanguage:\n- en\n---\n\n# {family}\n\n"
            f"A {family} checkpoint seeded by bench/metadata. " + "Lorem ipsum dolor sit amet. " * 20 + "\n")


def model_files(family: str) -> dict[str, bytes]:
    config = {"model_type": family, "architectures": [f"{family.capitalize()}ForCausalLM"],
              "hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 1000}
    weights = hashlib.sha256(family.encode()).digest() * 64  # 2 KiB, stored with LFS (*.safetensors)
    return {"README.md": readme(family).encode(), "config.json": json.dumps(config, indent=2).encode(),
            "model.safetensors": weights}


def _commit(api, repo_id: str, files: dict[str, bytes], message: str) -> None:
    from huggingface_hub import CommitOperationAdd

    api.create_commit(repo_id, [CommitOperationAdd(path, data) for path, data in files.items()],
                      commit_message=message)


def _create_model(api, repo_id: str, family: str) -> None:
    api.create_repo(repo_id)
    _commit(api, repo_id, model_files(family), "add model")


def seed_through_api(url: str, token: str, n_service: int, tree_files: int, small_files: int,
                     out: Seeded) -> dict[str, str]:
    """Templates, the timed service-path repos, the tree repo and the small-files repo; returns
    family -> template repo id."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=url, token=token)
    t0 = time.perf_counter()
    templates = {}
    for family in FAMILIES:
        templates[family] = f"bench/template-{family}"
        _create_model(api, templates[family], family)
    out.timings["templates_api_s"] = time.perf_counter() - t0

    # The cost of the real path, measured: create_repo + one commit of three files, 8 clients at once.
    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: _create_model(api, f"bench/service-{i}", FAMILIES[i % len(FAMILIES)]),
                      range(n_service)))
    elapsed = time.perf_counter() - t0
    out.service_seed = {"repos": n_service, "seconds": elapsed, "clients": 8,
                        "repos_per_s": n_service / elapsed if elapsed else None,
                        "what": "create_repo + create_commit(README.md, config.json, model.safetensors via LFS)"}

    t0 = time.perf_counter()
    api.create_repo(TREE_REPO)
    per_dir = 1000
    files = {f"data/part-{i // per_dir:02d}/row-{i:05d}.txt": f"row {i}\n".encode() for i in range(tree_files)}
    _commit(api, TREE_REPO, files, f"add {tree_files} files")
    out.tree_files = tree_files
    out.timings["tree_repo_api_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    rng = random.Random(1)
    api.create_repo(SMALL_REPO)
    small = {f"files/file-{i:04d}.txt": (f"{i}:" + "x" * rng.randrange(512, 4096) + "\n").encode()
             for i in range(small_files)}
    _commit(api, SMALL_REPO, small, f"add {small_files} small files")
    out.small_files = small
    out.timings["small_repo_api_s"] = time.perf_counter() - t0
    out.repos += len(templates) + n_service + 2
    return templates


# --- bulk clones --------------------------------------------------------------------------------

def storage_key(i: int) -> str:
    return hashlib.md5(f"bench-clone-{i}".encode()).hexdigest()  # 32 hex chars, like token_hex(16)


def clone_git(git, template_key: str, key: str) -> None:
    """The clone's repository is a symlink to its template's: the hub finds, opens and reads it
    exactly as a repository of its own. (A first version hard-linked each file: 13 directory entries
    per repo made seeding and, worse, removing 100,000 repos take many minutes on a shared disk.)"""
    dst = git.path(key)
    dst.parent.mkdir(exist_ok=True)
    os.symlink(git.path(template_key), dst, target_is_directory=True)


def clone_repos(database_url: str, git_root: Path, templates: dict[str, str], n: int, out: Seeded,
                batch: int = 5000) -> None:
    """``n`` clones of the templates, named like Hub repos (``user123/mistral-7b-chat-4567``)."""
    from sqlalchemy import insert, select

    from aicommons.db import tables
    from aicommons.db.engine import make_engine
    from aicommons.gitrepo import GitStore

    if n <= 0:
        return
    md = tables.metadata
    repos, accounts = md.tables["repos"], md.tables["accounts"]
    children = [(t, col) for t in md.sorted_tables if t.name not in NOT_CLONED for col in t.columns
                if any(fk.column is repos.c.id for fk in col.foreign_keys)]
    engine = make_engine(database_url)
    git = GitStore(git_root)
    with engine.connect() as conn:
        tmpl = {fam: dict(conn.execute(select(repos).where(repos.c.full_id == rid)).mappings().one())
                for fam, rid in templates.items()}
        tmpl_children = {fam: [(t, col, [dict(r) for r in conn.execute(select(t).where(col == row["id"])).mappings()])
                               for t, col in children] for fam, row in tmpl.items()}
        owner = dict(conn.execute(select(accounts).where(accounts.c.name == "bench")).mappings().one())

    t0 = time.perf_counter()
    n_users = max(1, n // 20)
    owner.pop("id")
    now = datetime(2025, 1, 1)
    users = [{**owner, "name": f"user{u}", "name_lower": f"user{u}", "fullname": f"User {u}",
              "email": f"user{u}@example.org", "created_at": now} for u in range(n_users)]
    with engine.begin() as conn:
        for i in range(0, len(users), batch):
            conn.execute(insert(accounts), users[i:i + batch])
        user_ids = dict(conn.execute(select(accounts.c.name, accounts.c.id).where(accounts.c.name.like("user%"))).all())
    out.timings["clone_accounts_s"] = time.perf_counter() - t0

    rng = random.Random(0)
    start = datetime(2024, 1, 1)
    db_s = git_s = 0.0
    for lo in range(0, n, batch):
        rows, fams = [], []
        for i in range(lo, min(n, lo + batch)):
            fam = rng.choice(FAMILIES)
            ns = f"user{rng.randrange(n_users)}"
            name = f"{fam}-{rng.choice(SIZES)}-{rng.choice(MODIFIERS)}-{i}"
            row = {k: v for k, v in tmpl[fam].items() if k != "id"}
            when = start + timedelta(seconds=i * 60)
            row.update(namespace=ns, name=name, full_id=f"{ns}/{name}", full_id_lower=f"{ns}/{name}".lower(),
                       owner_id=user_ids[ns], storage_key=storage_key(i), downloads=int(rng.paretovariate(1.2)) - 1,
                       likes=rng.randrange(5), created_at=when, last_modified=when)
            rows.append(row)
            fams.append(fam)
        t0 = time.perf_counter()
        for row, fam in zip(rows, fams):
            clone_git(git, tmpl[fam]["storage_key"], row["storage_key"])
        git_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(insert(repos), rows)
            keys = [r["storage_key"] for r in rows]
            ids = dict(conn.execute(select(repos.c.storage_key, repos.c.id).where(repos.c.storage_key.in_(keys))).all())
            for t, col, _ in tmpl_children[fams[0]]:
                child_rows = [{**c, col.name: ids[r["storage_key"]]}
                              for r, fam in zip(rows, fams)
                              for tt, _c, crow in tmpl_children[fam] if tt is t for c in crow]
                if child_rows:
                    conn.execute(insert(t), child_rows)
        db_s += time.perf_counter() - t0
        if len(out.sample_ids) < 1000:
            out.sample_ids += [r["full_id"] for r in rows[: 1000 - len(out.sample_ids)]]
    engine.dispose()
    out.timings["clone_git_s"] = git_s
    out.timings["clone_db_s"] = db_s
    out.repos += n
    out.authors = [f"user{u}" for u in random.Random(2).sample(range(n_users), min(50, n_users))]
