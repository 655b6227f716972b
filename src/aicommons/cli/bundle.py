"""``aicommons bundle``: carry repos to an air-gapped site in one signed file (docs/mirror.md)."""

from __future__ import annotations

import json
import sys


def _hub():
    from aicommons.config import Settings
    from aicommons.hub.hub import Hub

    return Hub(Settings.from_env())


def _progress():
    from aicommons.cli.progress import progress_for_terminal

    return progress_for_terminal()


def parse_spec(text: str, default_type: str) -> tuple[str, str, list[str]]:
    """``[datasets/|spaces/]ns/name[@rev[,rev...]]`` -> (type, id, revisions)."""
    repo_type = default_type
    for prefix, kind in (("datasets/", "dataset"), ("spaces/", "space"), ("models/", "model")):
        if text.startswith(prefix):
            repo_type, text = kind, text[len(prefix):]
    full_id, _, revs = text.partition("@")
    return repo_type, full_id, [r for r in revs.split(",") if r]


def cmd_bundle_key(args) -> int:
    bundles = _hub().bundles
    print(bundles.model_signing_public_pem() if args.model_signing else bundles.public_key_pem(), end="")
    return 0


def cmd_bundle_export(args) -> int:
    from aicommons.hub.bundles import BundleError

    try:
        result = _hub().bundles.export([parse_spec(s, args.type) for s in args.repos], args.output, _progress())
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result) if args.json else
          f"wrote {result['output']}: {result['repos']} repos, {result['files']} large files, signed by "
          f"{result['signed_by']}")
    return 0


def cmd_bundle_import(args) -> int:
    from aicommons.hub.bundles import BundleError

    try:
        result = _hub().bundles.import_(args.file, args.trusted_key or [], _progress(), ignore_quota=args.ignore_quota)
    except BundleError as exc:
        print(f"error: {exc}; nothing was imported", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result))
    else:
        for repo in result["repos"]:
            print(f"{repo['type']} {repo['id']}: {'created' if repo['created'] else 'updated'}, "
                  + ", ".join(f"{rev} = {sha[:12]}" for rev, sha in repo["revisions"].items()))
    return 0


def add_bundle_commands(sub) -> None:
    bundle = sub.add_parser("bundle", help="signed bundles of repos for air-gapped sites")
    bsub = bundle.add_subparsers(dest="bundle_command", required=True)
    key = bsub.add_parser("key", help="print this hub's public key (what a receiving site trusts)")
    key.add_argument("--model-signing", action="store_true",
                     help="the EC key that signs model files in the OpenSSF model-signing format instead "
                          "(for `model_signing verify key --public_key`)")
    key.set_defaults(func=cmd_bundle_key)
    export = bsub.add_parser("export", help="write repos (git history and large files) into one signed file")
    export.add_argument("repos", nargs="+", metavar="REPO[@REV[,REV]]",
                        help="ns/name, datasets/ns/name or spaces/ns/name; revisions are branches or tags "
                             "(default main)")
    export.add_argument("--output", "-o", required=True)
    export.add_argument("--type", choices=("model", "dataset", "space"), default="model",
                        help="the type of repos given without a prefix")
    export.add_argument("--json", action="store_true")
    export.set_defaults(func=cmd_bundle_export)
    imp = bsub.add_parser("import", help="verify a bundle against trusted keys, then import it")
    imp.add_argument("file")
    imp.add_argument("--trusted-key", action="append", metavar="KEYFILE",
                     help="a PEM public key to trust (repeatable; also AICOMMONS_BUNDLE_TRUSTED_KEYS)")
    imp.add_argument("--ignore-quota", action="store_true",
                     help="import even if it takes an owner past its storage quota (the bytes still count "
                          "against it afterwards)")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(func=cmd_bundle_import)
