"""``aicommons listings recount``: rebuild the listings' facet counts from the repo rows and
recompute every trending score now (what the listing_counts job does; hub/listings.py).

Import-light like ``main.py``: the command imports what it needs when it runs.
"""

from __future__ import annotations

import json
from dataclasses import asdict


def cmd_recount(args) -> int:
    from aicommons.config import Settings
    from aicommons.hub.hub import Hub

    report = Hub(Settings.from_env()).listing_counts.recount()
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print(f"{report.facet_rows} facet count rows rebuilt, {report.trending_repos} repos trending, "
              f"in {report.seconds} s")
    return 0


def add_listings_commands(sub) -> None:
    listings = sub.add_parser("listings", help="the listing pages' facet counts and trending scores") \
        .add_subparsers(dest="action", required=True)
    recount = listings.add_parser("recount", help="rebuild the facet counts from the repo rows and recompute "
                                                  "the trending scores (as the listing_counts job does)")
    recount.add_argument("--json", action="store_true")
    recount.set_defaults(func=cmd_recount)
