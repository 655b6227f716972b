"""Routes of the web UI. Mounted after the API and git routes, which take precedence."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from aicommons.web import (
    account,
    admin,
    browse,
    collections,
    community,
    device,
    join,
    orgs,
    search,
    settings,
    sso,
    tokens,
    upload,
    webhooks,
)

PREFIXES = ("/datasets", "/spaces", "")
GET_POST = ["GET", "POST"]


def web_routes() -> list:
    routes = [
        Mount("/static", app=StaticFiles(directory=Path(__file__).parent / "static"), name="static"),
        Route("/", browse.home),
        Route("/models", browse.listing),
        Route("/datasets", browse.listing),
        Route("/spaces", browse.listing),
        Route("/search", search.search),
        Route("/login", account.login, methods=GET_POST),
        Route("/logout", account.logout, methods=["POST"]),
        Route("/setup", join.setup, methods=GET_POST),
        Route("/join", join.join, methods=GET_POST),
        Route("/email/verify", join.verify_email, methods=GET_POST),
        Route("/email/verify/resend", join.resend_verification, methods=["POST"]),
        Route("/password/reset", join.password_reset, methods=GET_POST),
        Route("/settings/invites", join.invites, methods=GET_POST),
        Route("/login/sso", sso.start),
        Route("/login/sso/callback", sso.callback),
        Route("/settings/tokens", tokens.tokens, methods=GET_POST),
        Route("/settings/profile", settings.profile_settings, methods=GET_POST),
        Route("/settings/account", settings.account_settings, methods=GET_POST),
        Route("/settings/storage", settings.storage_settings),
        Route("/settings/upstream", settings.upstream_settings, methods=GET_POST),
        Route("/settings/account/export", settings.export_data, methods=["POST"]),
        Route("/settings/account/delete", settings.delete_account, methods=GET_POST),
        Route("/settings/email/confirm", settings.confirm_email, methods=GET_POST),
        Route("/avatars/{user}", settings.avatar),
        Route("/admin", admin.admin_page),
        Route("/admin/dashboard", admin.dashboard_page),
        Route("/admin/users/{user}/{action}", admin.admin_user_action, methods=["POST"]),
        Route("/new", account.new_repo, methods=GET_POST),
        Route("/settings/webhooks", webhooks.webhooks, methods=GET_POST),
        Route("/settings/webhooks/{webhook_id}", webhooks.webhook, methods=GET_POST),
        Route("/collections/new", collections.new_collection, methods=GET_POST),
        Route("/collections/{ns}/{slug}", collections.collection_page, methods=GET_POST),
        Route("/device", device.device, methods=GET_POST),
        Route("/organizations/new", orgs.new_org, methods=GET_POST),
        Route("/organizations/{org}/members", orgs.members, methods=GET_POST),
        Route("/organizations/{org}/settings/sign-in", orgs.sign_in_settings, methods=GET_POST),
        Route("/invitations/{token}", orgs.invitation, methods=GET_POST),
    ]
    for prefix in PREFIXES:
        base = prefix + "/{ns}/{name}"
        routes += [
            Route(base, browse.repo_page),
            Route(base + "/tree/{rev}", browse.tree),
            Route(base + "/tree/{rev}/{path:path}", browse.tree),
            Route(base + "/blob/{rev}/{path:path}", browse.blob),
            Route(base + "/commits/{rev}", browse.commits),
            Route(base + "/commit/{sha}", browse.commit_page),
            Route(base + "/compare/{spec:path}", browse.compare_page),
            Route(base + "/discussions", community.discussions),
            Route(base + "/discussions/new", community.new_discussion, methods=["POST"]),
            Route(base + "/discussions/{num}", community.discussion),
            Route(base + "/discussions/{num}/diff", community.discussion_diff),
            Route(base + "/discussions/{num}/comment", community.comment, methods=["POST"]),
            Route(base + "/like", community.like, methods=["POST"]),
            Route(base + "/ask-access", community.ask_access, methods=["POST"]),
            Route(base + "/settings", account.repo_settings, methods=GET_POST),
            Route(base + "/upload/{rev}", upload.upload, methods=GET_POST),
            Route(base + "/upload/{rev}/{path:path}", upload.upload, methods=GET_POST),
            Route(base + "/edit/{rev}/{path:path}", upload.edit, methods=GET_POST),
        ]
    routes.append(Route("/datasets/{ns}/{name}/viewer", browse.viewer))  # the dataset viewer (hub/viewer.py)
    routes.append(Route("/{user}", account.profile, methods=GET_POST))  # POST: follow
    return routes
