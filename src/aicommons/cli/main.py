"""``aicommons``: run the hub and administer accounts.

Kept import-light: ``aicommons --help`` must not import the server, the database or torch; each
command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import os
import sys

from aicommons.cli.values import positive_int


def _hub():
    from aicommons.app import reserved_route_names
    from aicommons.config import Settings
    from aicommons.hub.hub import Hub

    hub = Hub(Settings.from_env())
    hub.names.reserve(reserved_route_names())  # the names the app routes, as the server knows them
    return hub


def cmd_serve(args) -> int:
    import uvicorn

    from aicommons.app import create_app
    from aicommons.config import Settings

    settings = Settings.from_env(host=args.host, port=args.port)
    settings.check_can_serve()
    app = create_app(settings)
    setup_token = app.state.hub.first_run.token()
    if setup_token:  # no site admin yet: the one-time link that makes the first one
        print(f"No administrator yet: create one at {app.state.hub.mail.link('/setup', token=setup_token)}", flush=True)
    from aicommons.storage.staging import keep_freed_memory, sweep_stale

    sweep_stale(settings.tmp_dir)  # partial uploads of a previous run that was killed
    keep_freed_memory()  # request bodies reuse freed memory instead of new pages (issue 21)
    workers = None
    if settings.job_workers > 0:  # background jobs run in-process unless a separate worker is used
        workers = app.state.hub.jobs.start_workers(settings.job_workers)
    try:
        from aicommons.api.access_log import log_config
        from aicommons.api.zerocopy_server import ZeroCopyHttpToolsProtocol

        # httptools with the zero-copy extension: file downloads are moved by the kernel (sendfile)
        uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                    # Forwarded headers only from the configured proxies (never from Space apps)
                    proxy_headers=bool(settings.trusted_proxies), forwarded_allow_ips=settings.trusted_proxies or None,
                    timeout_keep_alive=30, log_config=log_config(),
                    http=ZeroCopyHttpToolsProtocol)
    finally:
        if workers is not None:
            workers.stop(graceful=True)
    return 0


def cmd_user_create(args) -> int:
    hub = _hub()
    account = hub.accounts.create_user(args.name, fullname=args.fullname or "", email=args.email,
                                       password=args.password, is_admin=args.admin)
    hub.audit.record_cli("user create" + (" --admin" if args.admin else ""), account.name)
    print(f"created user {account.name}")
    return 0


def cmd_user_set_password(args) -> int:
    hub = _hub()
    password = args.password
    if password is None and not args.remove:
        import getpass

        password = getpass.getpass("new password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    user = hub.accounts.set_password(args.name, None if args.remove else password)
    hub.audit.record_cli("user set-password" + (" --remove" if args.remove else ""), user.name)
    print(f"{'removed the password of' if args.remove else 'set a new password for'} {user.name}; "
          "their web sessions have ended")
    return 0


def cmd_user_sign_out(args) -> int:
    hub = _hub()
    user = hub.accounts.require(args.name, kind="user")
    ended = hub.accounts.end_sessions(user.id)
    hub.audit.record_cli("user sign-out", user.name)
    print(f"ended {ended} web session(s) of {user.name}")
    return 0


def cmd_user_lock(args) -> int:
    hub = _hub()
    revoked, ended = hub.accounts.lock(args.name)
    hub.audit.record_cli("user lock", args.name)
    print(f"locked {args.name}: password removed, {revoked} token(s) revoked, {ended} web session(s) ended")
    return 0


def cmd_user_suspend(args) -> int:
    hub = _hub()
    user = hub.accounts.suspend(args.name)
    hub.audit.record_cli("user suspend", user.name)
    bound = hub.settings.token_cache_seconds
    print(f"suspended {user.name}: web sessions ended; tokens and passwords refused "
          f"(a running server stops honouring a token it checked moments ago within {bound:g} s)")
    return 0


def cmd_user_unsuspend(args) -> int:
    hub = _hub()
    user = hub.accounts.unsuspend(args.name)
    hub.audit.record_cli("user unsuspend", user.name)
    print(f"unsuspended {user.name}: their password and tokens work again")
    return 0


def cmd_user_delete(args) -> int:
    from aicommons.hub.account_deletion import DELETE, repo_key

    hub = _hub()
    plan = hub.account_deletion.plan(args.name)
    target = DELETE if args.delete_repos else args.transfer_repos_to
    if plan.repos and target is None:
        names = ", ".join(f"{r.full_id} ({r.type})" for r in plan.repos)
        print(f"error: {plan.user.name} owns repos: {names}. Pass --delete-repos, or --transfer-repos-to ORG "
              f"(an organization where they are an admin: {', '.join(plan.admin_orgs) or 'none'})", file=sys.stderr)
        return 1
    hub.account_deletion.delete(plan.user.name, {repo_key(r): target for r in plan.repos},
                                reason="deleted by an admin (aicommons user delete)")
    hub.audit.record_cli("user delete" + (f" --transfer-repos-to {target}" if plan.repos and target != DELETE
                                          else " --delete-repos" if plan.repos else ""), plan.user.name)
    print(f"deleted {plan.user.name}: {len(plan.repos)} repo(s) {'deleted' if target == DELETE else 'transferred'}, "
          "tokens and sessions gone, comments kept under \"deleted user\", the name retired")
    return 0


def cmd_user_approve(args) -> int:
    hub = _hub()
    user = hub.signup.approve(args.name)
    hub.audit.record_cli("user approve", user.name)
    print(f"approved {user.name}" + (f"; mailed {user.email}" if user.email else ""))
    return 0


def cmd_user_list(args) -> int:
    for account in _hub().accounts.users():
        flags = " (admin)" if account.is_admin else ""
        flags += " (awaiting approval)" if account.status == "pending" else ""
        flags += "" if account.email_verified else " (e-mail not verified)"
        print(f"{account.name}\t{account.fullname}{flags}")
    return 0


def cmd_org_create(args) -> int:
    hub = _hub()
    org = hub.accounts.create_org(args.name, fullname=args.fullname or "", members=args.member or [])
    hub.audit.record_cli("org create", org.name)
    print(f"created org {org.name}")
    return 0


def cmd_org_add_member(args) -> int:
    hub = _hub()
    hub.accounts.add_member(args.org, args.user, args.role)
    hub.audit.record_cli(f"org add-member --role {args.role}", f"{args.org}/{args.user}")
    print(f"added {args.user} to {args.org} as {args.role}")
    return 0


def cmd_token_create(args) -> int:
    import json
    from datetime import timedelta

    from aicommons.times import utcnow

    role, fine_grained = args.role, None
    if args.permissions is not None:
        try:
            fine_grained = json.loads(args.permissions)
        except ValueError as exc:
            print(f"--permissions: not JSON ({exc})", file=sys.stderr)
            return 2
        role = "fineGrained"
    expires_at = utcnow() + timedelta(days=args.expires_days) if args.expires_days else None
    hub = _hub()
    token = hub.accounts.create_token(args.user, role=role, name=args.name, value=args.value,
                                      fine_grained=fine_grained, expires_at=expires_at)
    hub.audit.record_cli(f"token create --role {role}", args.user)
    print(f"created {role} token for {args.user}; it is shown only once:")
    print(token)
    return 0


def cmd_token_revoke(args) -> int:
    hub = _hub()
    found = hub.accounts.token_named_by(args.token)
    if found is None or not hub.accounts.revoke_token(args.token):
        print("no such token", file=sys.stderr)
        return 1
    row, owner = found
    hub.audit.record_cli("token revoke", f"{owner.name} token {row.name!r}")  # never the token itself
    print("revoked")
    return 0


def utc_time(text: str):
    """An ISO 8601 time for ``--since``: UTC unless it names an offset (``Z``, ``+01:00``)."""
    from datetime import UTC, datetime

    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid time {text!r}: use ISO 8601 in UTC, e.g. 2026-11-26T17:00") from None
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at  # stored times are naive UTC


def _duration(text: str):
    from datetime import timedelta

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or int(text[:-1]) <= 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: use a number and s, m, h, d or w (7d)")
    return timedelta(seconds=int(text[:-1]) * units[text[-1]])


def cmd_invite_create(args) -> int:
    hub = _hub()
    link = hub.signup.create_invite(None, email=args.email, ttl=args.expires)
    hub.audit.record_cli("invite create" + (" --email" if args.email else ""), args.email or "(any address)")
    if hub.settings.signup == "closed":
        print("note: AICOMMONS_SIGNUP=closed: invites work only under open, approval or invite", file=sys.stderr)
    print(f"invite link (works once{', for ' + args.email if args.email else ''}; mailed there too):"
          if args.email else "invite link (works once):")
    print(link)
    return 0


def cmd_name_release(args) -> int:
    hub = _hub()
    if not hub.names.release(args.name):
        print(f"{args.name} is not a retired name", file=sys.stderr)
        return 1
    hub.audit.record_cli("name release", args.name)
    print(f"released {args.name}: a new account may now register it")
    return 0


def cmd_name_list(args) -> int:
    for retired in _hub().names.retired_names():
        print(f"{retired.name}\t{retired.kind}\t{retired.retired_at.isoformat(timespec='seconds')}Z\t{retired.reason}")
    return 0


def cmd_scan(args) -> int:
    """Scan local files as the hub scans uploads; exit status 1 if any has an issue."""
    from pathlib import Path

    from aicommons.config import Settings
    from aicommons.scanning.worker import ScanWorkerPool

    missing = [name for name in args.files if not Path(name).is_file()]
    if missing:
        print(f"error: not a file: {', '.join(missing)}", file=sys.stderr)
        return 2
    issues = 0
    pool = ScanWorkerPool(Settings.from_env().scan_worker_limits)  # the hub's limits, in worker processes
    for name in args.files:
        path = Path(name)
        result = pool.scan_path(path.name, str(path.resolve()), path.stat().st_size)
        print(f"{result.status}\t{name}")
        for finding in result.findings:
            print(f"\t{finding.severity}: {finding.message}")
        issues += result.status in ("unsafe", "suspicious", "error")
    pool.close()
    return 1 if issues else 0


def cmd_audit(args) -> int:
    for e in _hub().audit.events(actor=args.actor, target_contains=args.target, since=args.since, limit=args.limit):
        who = e.actor or ("admin CLI" if e.ip is None else "anonymous")
        status = f" -> {e.status}" if e.status else ""
        print(f"{e.at.isoformat(timespec='seconds')}Z\t{who}\t{e.ip or '-'}\t{e.action}{status}\t{e.request_id or '-'}"
              f"\t{e.target or '-'}\t{e.client_request_id or '-'}")
    return 0


def settings_reference() -> str:
    """docs/configuration.md: the core settings, then the inference ones."""
    from aicommons.config import settings_reference_markdown
    from aicommons.inference.settings import settings_reference_markdown as inference_reference

    return settings_reference_markdown() + "\n## Inference\n\n" + inference_reference()


def cmd_settings_doc(args) -> int:
    sys.stdout.write(settings_reference())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aicommons", description="AI Commons hub: server and administration.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the hub (GET /api/health answers 200 when ready)")
    serve.add_argument("--host", help="interface to listen on (default: AICOMMONS_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: AICOMMONS_PORT or 8000)")
    serve.set_defaults(func=cmd_serve)

    user = sub.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    create = user.add_parser("create", help="create a user")
    create.add_argument("name")
    create.add_argument("--fullname")
    create.add_argument("--email")
    create.add_argument("--password", help="password for git/basic auth and the web UI")
    create.add_argument("--admin", action="store_true", help="make the user an administrator")
    create.set_defaults(func=cmd_user_create)
    user.add_parser("list", help="list users").set_defaults(func=cmd_user_list)
    setpw = user.add_parser("set-password", help="set or remove a user's password (ends their web sessions)")
    setpw.add_argument("name")
    setpw.add_argument("--password", help="the new password (default: asked, or read from stdin)")
    setpw.add_argument("--remove", action="store_true", help="remove the password (tokens only from now on)")
    setpw.set_defaults(func=cmd_user_set_password)
    signout = user.add_parser("sign-out", help="end every web session of a user at once")
    signout.add_argument("name")
    signout.set_defaults(func=cmd_user_sign_out)
    lock = user.add_parser("lock", help="lock a user out at once: remove the password, revoke every token, "
                                        "end every web session")
    lock.add_argument("name")
    lock.set_defaults(func=cmd_user_lock)
    suspend = user.add_parser("suspend", help="stop a user at once (sessions end; password and tokens refused) "
                                              "until unsuspended; nothing is deleted")
    suspend.add_argument("name")
    suspend.set_defaults(func=cmd_user_suspend)
    unsuspend = user.add_parser("unsuspend", help="let a suspended user in again")
    unsuspend.add_argument("name")
    unsuspend.set_defaults(func=cmd_user_unsuspend)
    delete = user.add_parser("delete", help="delete a user: repos deleted or transferred, comments kept under "
                                            "a placeholder, tokens and sessions gone, the name retired")
    delete.add_argument("name")
    what = delete.add_mutually_exclusive_group()
    what.add_argument("--delete-repos", action="store_true", help="delete every repo the user owns")
    what.add_argument("--transfer-repos-to", metavar="ORG",
                      help="move every repo the user owns to this organization (where they must be an admin)")
    delete.set_defaults(func=cmd_user_delete)
    approve = user.add_parser("approve", help="let in a sign-up awaiting approval (AICOMMONS_SIGNUP=approval); "
                                              "the person is mailed")
    approve.add_argument("name")
    approve.set_defaults(func=cmd_user_approve)

    org = sub.add_parser("org", help="manage organizations").add_subparsers(dest="action", required=True)
    create = org.add_parser("create", help="create an organization")
    create.add_argument("name")
    create.add_argument("--fullname")
    create.add_argument("--member", action="append", help="a user to add as admin member (repeatable)")
    create.set_defaults(func=cmd_org_create)
    add = org.add_parser("add-member", help="add a user to an organization")
    add.add_argument("org")
    add.add_argument("user")
    add.add_argument("--role", choices=["read", "contributor", "write", "admin"], default="write")
    add.set_defaults(func=cmd_org_add_member)

    token = sub.add_parser("token", help="manage access tokens").add_subparsers(dest="action", required=True)
    create = token.add_parser("create", help="create a token; prints it alone on the last line")
    create.add_argument("user")
    create.add_argument("--role", choices=["read", "write"], default="write")
    create.add_argument("--name", help="a name to recognise the token by")
    create.add_argument("--value", help="use this token value (for test fixtures)")
    create.add_argument("--permissions", metavar="JSON",
                        help='a fine-grained token: {"canReadGatedRepos": false, "global": [...], "scoped": '
                             '[{"entity": {"type": "user|org|model|dataset|space", "name": ...}, '
                             '"permissions": [...]}]} (docs/teams.md)')
    create.add_argument("--expires-days", type=positive_int, help="the token stops working after this many days")
    create.set_defaults(func=cmd_token_create)
    revoke = token.add_parser("revoke", help="revoke a token")
    revoke.add_argument("token")
    revoke.set_defaults(func=cmd_token_revoke)

    invite = sub.add_parser("invite", help="invite people to sign up").add_subparsers(dest="action", required=True)
    create = invite.add_parser("create", help="make a single-use sign-up link; prints it on the last line")
    create.add_argument("--email", help="only this address may use it (it is mailed there)")
    create.add_argument("--expires", type=_duration, default="7d", help="how long it works: 30m, 12h, 7d (default), 2w")
    create.set_defaults(func=cmd_invite_create)

    name = sub.add_parser("name", help="retired user and organization names").add_subparsers(dest="action",
                                                                                           required=True)
    name.add_parser("list", help="list retired names (deleted or renamed accounts)").set_defaults(func=cmd_name_list)
    release = name.add_parser("release", help="let a new account register a retired name (audited)")
    release.add_argument("name")
    release.set_defaults(func=cmd_name_release)

    scan = sub.add_parser("scan", help="scan local files as uploads are scanned; exit 1 if any has an issue")
    scan.add_argument("files", nargs="+")
    scan.set_defaults(func=cmd_scan)

    audit = sub.add_parser("audit", help="show the audit log: changes and refused attempts, oldest first; one tab-separated "
                                       "line each: time, actor, IP, action -> status, request id, target, "
                                       "client's request id")
    audit.add_argument("--actor", help="only this account's events")
    audit.add_argument("--target", help="only events whose path or target contains this text (e.g. a repo id)")
    audit.add_argument("--since", type=utc_time, help="only events at or after this UTC time (ISO 8601, e.g. 2026-11-26T17:00)")
    audit.add_argument("--limit", type=positive_int, default=100, help="the newest N matching events (default 100)")
    audit.set_defaults(func=cmd_audit)

    sub.add_parser("settings-doc", help="print the configuration reference (docs/configuration.md)") \
        .set_defaults(func=cmd_settings_doc)

    from aicommons.cli.ops import add_ops_commands  # worker, gc, backup, restore, fsck

    add_ops_commands(sub)
    from aicommons.cli.mirror import add_mirror_commands  # mirror add/sync/list/remove

    add_mirror_commands(sub)
    from aicommons.cli.bundle import add_bundle_commands  # bundle key/export/import

    add_bundle_commands(sub)
    from aicommons.cli.storage import add_storage_commands  # storage report/refresh/quota

    add_storage_commands(sub)
    from aicommons.cli.listings import add_listings_commands  # listings recount

    add_listings_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from aicommons.config import SettingsError
    from aicommons.hub.private_files import private_umask

    private_umask()  # the data dir, backups and anything else we create: 0600 files, 0700 folders
    from aicommons.errors import HubError

    try:
        return args.func(args)
    except BrokenPipeError:  # `aicommons audit | head`: the reader has what it wanted
        sys.stderr.close()  # nothing more to say; Python's exit flush would complain on stdout otherwise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except HubError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except SettingsError as exc:  # a bad AICOMMONS_* value: say which, do not start
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from sqlalchemy.exc import OperationalError  # imported only once something failed

        if not isinstance(exc, OperationalError):
            raise
        reason = str(exc.orig or exc).strip().splitlines()[0]  # the driver's words, never the URL's password
        print(f"error: the database could not be reached (AICOMMONS_DATABASE_URL): {reason}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
