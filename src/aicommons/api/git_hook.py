"""The pre-receive hook of every hub repo, run by git while a push is still in quarantine.

``api/git_http.py`` runs ``git http-backend`` with ``core.hooksPath`` set to a folder the server
manages, whose ``pre-receive`` script execs ``python -m aicommons.api.git_hook``. The bridge passes
what the hook needs in the environment (this module is a process entry point, like the CLI, so it
reads it): the server's settings as ``AICOMMONS_*`` variables, so ``Settings.from_env()`` here
opens the same database and blob store; ``AICOMMONS_PUSH_REPO_ID``, the repo being pushed to; and
``AICOMMONS_PUSH_PLAN``, where to leave the checked plan for the server; and, for a pusher who may
not write to the repo, ``AICOMMONS_PUSH_CONTRIBUTOR``, their principal's key (the push may then only
update their own open pull requests, and bring back nothing a rewrite removed: the hook tells the
check which objects the repo held before the push, outside the quarantine). A pusher cannot set
environment variables, so none of this can be forged from the client side.

Exit status 0 lets git move the refs; anything else makes git refuse every ref and delete the
quarantined objects. What this writes to stderr reaches the pusher as ``remote:`` lines.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def run(stdin_text: str) -> int:
    from aicommons.config import Settings
    from aicommons.errors import HubError
    from aicommons.gitrepo.loose import open_repository
    from aicommons.hub.hub import Hub
    from aicommons.hub.push import PushService, parse_updates

    plan_path = Path(os.environ["AICOMMONS_PUSH_PLAN"])
    git_dir = Path(os.environ.get("GIT_DIR", ".")).resolve()
    hub = Hub(Settings.from_env(), migrate=False)
    try:
        repo = hub.repos.by_id(int(os.environ["AICOMMONS_PUSH_REPO_ID"]))
        if repo is None or hub.git.path(repo.storage_key).resolve() != git_dir:
            print("error: this repository no longer exists on the hub", file=sys.stderr)
            return 1
        git_repo = open_repository(git_dir)
        before = open_repository(git_dir)  # the store as it was before this push (no quarantine)
        quarantine = os.environ.get("GIT_QUARANTINE_PATH")
        if quarantine:  # libgit2 ignores git's object-directory variables: add the pushed objects
            git_repo.odb.add_disk_alternate(quarantine)
        contributor = None
        key = os.environ.get("AICOMMONS_PUSH_CONTRIBUTOR")
        if key:  # not a writer (api/git_http.py): rebuilt as it stands now, as signed links are
            contributor = hub.accounts.principal_for_key(key)
            if contributor is None:
                print("error: push rejected: the token or account of this push is no longer valid", file=sys.stderr)
                return 1
        try:
            plan = PushService.of(hub).check(repo, git_repo, parse_updates(stdin_text), contributor,
                                             existed=lambda oid: oid in before.odb)
        except HubError as exc:
            print(f"error: push rejected: {exc.message}", file=sys.stderr)
            return 1
        _write_atomically(plan_path, plan.to_json())
        return 0
    finally:
        hub.close()


def main() -> int:
    stdin_text = sys.stdin.read()
    try:
        return run(stdin_text)
    except Exception:  # noqa: BLE001 - refuse the push, and leave the details to the server's log
        try:
            error_path = Path(os.environ["AICOMMONS_PUSH_PLAN"] + ".error")
            _write_atomically(error_path, traceback.format_exc())
        except (KeyError, OSError):
            pass
        print("error: the hub could not check this push (internal error); nothing was changed",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
