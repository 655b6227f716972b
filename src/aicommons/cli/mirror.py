"""``aicommons mirror``: pinned mirrors of upstream repos (docs/mirror.md).

A pinned mirror is a pulled-through repo whose every large file of the chosen revisions is kept
here, so that it works with the upstream gone (git clone included). ``sync`` fetches what changed;
the job workers also sync every pinned mirror each ``AICOMMONS_UPSTREAM_SYNC_INTERVAL_HOURS``.
"""

from __future__ import annotations

import json
import sys


def _upstream():
    from aicommons.config import Settings
    from aicommons.hub.hub import Hub

    hub = Hub(Settings.from_env())
    if hub.upstream is None:
        print("error: no upstream hub is configured (set AICOMMONS_UPSTREAM_URL)", file=sys.stderr)
        raise SystemExit(2)
    return hub


def _progress():
    from aicommons.cli.progress import progress_for_terminal

    return progress_for_terminal()


def cmd_mirror_add(args) -> int:
    from aicommons.errors import HubError
    from aicommons.hub.upstream import UpstreamError

    hub = _upstream()
    try:
        repo = hub.upstream.pin(args.type, args.repo, args.revision or None)
        result = hub.upstream.sync(repo, _progress())
    except (HubError, UpstreamError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result) if args.json else
          f"{result['repo']}: pinned {', '.join(result['revisions'])}; {result['fetched']} of {result['files']} "
          "large files fetched")
    return 0


def cmd_mirror_sync(args) -> int:
    from aicommons.errors import HubError
    from aicommons.hub.upstream import UpstreamError

    hub = _upstream()
    results, failed = [], 0
    for repo, mirror in hub.upstream.mirrored():
        if (args.repo and repo.full_id != args.repo) or not mirror.pinned:
            continue
        try:
            results.append(hub.upstream.sync(repo, _progress()))
        except (HubError, UpstreamError) as exc:
            failed += 1
            results.append({"repo": repo.full_id, "error": str(exc)})
    if args.repo and not results:
        print(f"error: {args.repo} is not a pinned mirror (aicommons mirror list)", file=sys.stderr)
        return 1
    for r in results:
        print(json.dumps(r) if args.json else
              (f"{r['repo']}: error: {r['error']}" if "error" in r else f"{r['repo']}: {r['fetched']} files fetched"))
    return 1 if failed else 0


def cmd_mirror_list(args) -> int:
    hub = _upstream()
    rows = [{"repo": repo.full_id, "type": repo.type, "upstream": m.upstream_url, "pinned": m.pinned,
             "revisions": m.revisions, "fetched_at": m.fetched_at.isoformat() + "Z"}
            for repo, m in hub.upstream.mirrored()]
    if args.json:
        print(json.dumps(rows, indent=2))
    for r in rows if not args.json else []:
        pinned = f"pinned {','.join(r['revisions'])}" if r["pinned"] else "pulled through"
        print(f"{r['type']}\t{r['repo']}\t{pinned}\tfrom {r['upstream']}\tfetched {r['fetched_at']}")
    return 0


def cmd_mirror_remove(args) -> int:
    hub = _upstream()
    for repo, _mirror in hub.upstream.mirrored():
        if repo.full_id == args.repo and repo.type == args.type:
            hub.upstream.unpin(repo)
            print(f"{repo.full_id}: no longer pinned (its files stay cached; the GC keeps what repos reference)")
            return 0
    print(f"error: {args.repo} is not a mirrored {args.type}", file=sys.stderr)
    return 1


def cmd_policy_list(args) -> int:
    hub = _upstream()
    rules = hub.upstream.rules()
    if args.json:
        print(json.dumps(rules, indent=2))
        return 0
    for r in rules:
        where = "setting (environment)" if r["source"] == "setting" else "rule"
        print(f"{r['effect']}\t{r['kind']}\t{r['pattern']}\t{where}")
    if not rules:
        print("no rules: every public upstream repo may be pulled through")
    return 0


def _add_rule(args, effect: str) -> int:
    from aicommons.errors import HubError

    hub = _upstream()
    kind = "license" if args.license else "repo"
    try:
        added = hub.upstream.add_rule(effect, kind, args.pattern)
    except HubError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(f"{effect} {kind} {args.pattern.strip().lower()}" + ("" if added else " (already a rule)"))
    return 0


def cmd_policy_allow(args) -> int:
    return _add_rule(args, "allow")


def cmd_policy_block(args) -> int:
    return _add_rule(args, "block")


def cmd_policy_remove(args) -> int:
    hub = _upstream()
    kind = "license" if args.license else "repo"
    if not hub.upstream.remove_rule(kind, args.pattern):
        print(f"error: no {kind} rule {args.pattern!r} (aicommons mirror policy list; settings are changed in "
              "the environment)", file=sys.stderr)
        return 1
    print(f"removed the {kind} rule {args.pattern.strip().lower()}")
    return 0


def add_mirror_commands(sub) -> None:
    mirror = sub.add_parser("mirror", help="pinned mirrors of upstream repos (AICOMMONS_UPSTREAM_URL)")
    msub = mirror.add_subparsers(dest="mirror_command", required=True)
    add = msub.add_parser("add", help="mirror a repo and fetch every large file of its revisions now")
    add.add_argument("repo")
    add.add_argument("--type", choices=("model", "dataset", "space"), default="model")
    add.add_argument("--revision", action="append", help="a branch, tag or commit to keep (repeatable; default main)")
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=cmd_mirror_add)
    sync = msub.add_parser("sync", help="fetch new commits and files of every pinned mirror (or one)")
    sync.add_argument("repo", nargs="?")
    sync.add_argument("--json", action="store_true")
    sync.set_defaults(func=cmd_mirror_sync)
    lst = msub.add_parser("list", help="repos pulled through or pinned")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_mirror_list)
    remove = msub.add_parser("remove", help="stop pinning a repo (it stays as a pulled-through cache)")
    remove.add_argument("repo")
    remove.add_argument("--type", choices=("model", "dataset", "space"), default="model")
    remove.set_defaults(func=cmd_mirror_remove)
    policy = msub.add_parser("policy", help="which upstream repos and licenses may be pulled through")
    psub = policy.add_subparsers(dest="policy_command", required=True)
    plist = psub.add_parser("list", help="the rules, the settings' (AICOMMONS_UPSTREAM_ALLOW...) included")
    plist.add_argument("--json", action="store_true")
    plist.set_defaults(func=cmd_policy_list)
    for name, func, text in (("allow", cmd_policy_allow, "allow only repos matching a glob (or, with --license, "
                                                         "declaring a license); any allow rule restricts to them"),
                             ("block", cmd_policy_block, "never pull or serve repos matching a glob (or declaring "
                                                         "a license, with --license)"),
                             ("remove", cmd_policy_remove, "remove a rule")):
        p = psub.add_parser(name, help=text)
        p.add_argument("pattern", help="a glob over repo ids (org/*, org/name), or a license id with --license")
        p.add_argument("--license", action="store_true", help="the pattern is a license id (mit, apache-2.0...)")
        p.set_defaults(func=func)
