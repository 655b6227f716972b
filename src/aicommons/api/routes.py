"""The routes table of the Hub API. Order matters where patterns overlap: specific first."""

from __future__ import annotations

from starlette.routing import Route

from aicommons.api import (
    collections,
    commits,
    discussions,
    files,
    gating,
    lfs,
    oauth,
    orgs,
    refs,
    repos,
    social,
    spaces,
    webhooks,
)
from aicommons.api.git_http import git_routes
from aicommons.api.openapi import openapi_json
from aicommons.api.space_proxy import space_app_routes
from aicommons.api.spaces import hardware_list, space_routes
from aicommons.api.viewer import viewer_routes
from aicommons.api.xet import xet_routes

REPO = "/api/{types}/{ns}/{name}"
COLLECTION = "/api/collections/{ns}/{slug}"
WEBHOOK = "/api/settings/webhooks/{webhook_id}"
PREFIXES = ("/datasets", "/spaces", "")
ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


def hub_routes() -> list[Route]:
    routes = [
        Route("/openapi.json", openapi_json),  # this table, as an OpenAPI document
        Route("/api/health", repos.health),
        Route("/api/whoami-v2", repos.whoami),
        Route("/oauth/device", oauth.device_authorization, methods=["POST"]),
        Route("/oauth/token", oauth.token, methods=["POST"]),
        Route("/api/agent-harnesses", repos.agent_harnesses),
        Route("/api/validate-yaml", repos.validate_yaml_endpoint, methods=["POST"]),
        Route("/api/repos/create", repos.create_repo, methods=["POST"]),
        Route("/api/repos/delete", repos.delete_repo, methods=["DELETE"]),
        Route("/api/repos/move", repos.move_repo, methods=["POST"]),
        Route("/api/users/{user}/likes", social.user_likes),
        Route("/api/users/{user}/overview", orgs.user_overview),
        Route("/api/users/{user}/followers", orgs.user_followers),
        Route("/api/users/{user}/following", orgs.user_following),
        Route("/api/users/{user}/follow", orgs.follow, methods=["POST"]),
        Route("/api/users/{user}/follow", orgs.unfollow, methods=["DELETE"]),
        Route("/api/organizations/{org}/overview", orgs.org_overview),
        Route("/api/organizations/{org}/members", orgs.org_members),
        Route("/api/organizations/{org}/members/{user}", orgs.set_member_role, methods=["PUT"]),
        Route("/api/organizations/{org}/members/{user}", orgs.remove_member, methods=["DELETE"]),
        Route("/api/organizations/{org}/followers", orgs.org_followers),
        Route("/api/organizations/{org}/follow", orgs.follow, methods=["POST"]),
        Route("/api/organizations/{org}/follow", orgs.unfollow, methods=["DELETE"]),
        Route("/api/organizations/{org}/invitations", orgs.list_invitations),
        Route("/api/organizations/{org}/invitations", orgs.create_invitation, methods=["POST"]),
        Route("/api/organizations/{org}/invitations/{id}", orgs.delete_invitation, methods=["DELETE"]),
        Route("/api/organizations/{org}/join-requests", orgs.list_join_requests),
        Route("/api/organizations/{org}/join-requests", orgs.ask_to_join, methods=["POST"]),
        Route("/api/organizations/{org}/join-requests/{user}", orgs.decide_join_request, methods=["POST"]),
        Route("/api/settings/repositories", repos.storage_listing),
        Route("/api/settings/webhooks", webhooks.list_webhooks),
        Route("/api/settings/webhooks", webhooks.create_webhook, methods=["POST"]),
        Route(WEBHOOK, webhooks.get_webhook),
        Route(WEBHOOK, webhooks.update_webhook, methods=["POST"]),
        Route(WEBHOOK, webhooks.delete_webhook, methods=["DELETE"]),
        Route(WEBHOOK + "/enable", webhooks.enable_webhook, methods=["POST"]),
        Route(WEBHOOK + "/disable", webhooks.disable_webhook, methods=["POST"]),
        Route(WEBHOOK + "/deliveries", webhooks.deliveries),
        Route("/api/organizations/{org}/settings/repositories", repos.storage_listing),
        Route("/api/collections", collections.list_collections),
        Route("/api/collections", collections.create_collection, methods=["POST"]),
        Route(COLLECTION, collections.get_collection),
        Route(COLLECTION, collections.update_collection, methods=["PATCH"]),
        Route(COLLECTION, collections.delete_collection, methods=["DELETE"]),
        Route(COLLECTION + "/items", collections.add_item, methods=["POST"]),
        Route(COLLECTION + "/items/{item_id}", collections.update_item, methods=["PATCH"]),
        Route(COLLECTION + "/items/{item_id}", collections.delete_item, methods=["DELETE"]),
        Route("/api/models", repos.list_repos),
        Route("/api/datasets", repos.list_repos),
        Route("/api/spaces", repos.list_repos),
        Route("/api/spaces/hardware", hardware_list),  # these four before the repo routes (api/spaces.py)
        Route("/api/spaces/semantic-search", spaces.search),
        Route("/api/spaces/templates", spaces.templates),
        Route("/api/spaces/zero-gpu/{rest:path}", spaces.zero_gpu, methods=ANY_METHOD),
        *space_routes(),
        Route(REPO, repos.repo_info),
        Route(REPO + "/revision/{rev}", repos.repo_info),
        Route(REPO + "/downloads", repos.repo_downloads),
        Route(REPO + "/settings", repos.update_settings, methods=["PUT"]),
        Route(REPO + "/auth-check", repos.auth_check),
        Route(REPO + "/auth-check/write", repos.auth_check),
        Route(REPO + "/tree/{rev}", files.tree),
        Route(REPO + "/tree/{rev}/{path:path}", files.tree),
        Route(REPO + "/paths-info/{rev}", files.paths_info, methods=["POST"]),
        Route(REPO + "/preupload/{rev}", commits.preupload, methods=["POST"]),
        Route(REPO + "/commit/{rev}", commits.commit, methods=["POST"]),
        Route(REPO + "/refs", refs.list_refs),
        Route(REPO + "/branch/{branch}", refs.create_branch, methods=["POST"]),
        Route(REPO + "/branch/{branch}", refs.delete_branch, methods=["DELETE"]),
        Route(REPO + "/tag/{rev}", refs.create_tag, methods=["POST"]),
        Route(REPO + "/tag/{tag}", refs.delete_tag, methods=["DELETE"]),
        Route(REPO + "/commits/{rev}", refs.list_commits),
        Route(REPO + "/super-squash/{rev}", refs.super_squash, methods=["POST"]),
        Route(REPO + "/discussions", discussions.list_discussions),
        Route(REPO + "/discussions", discussions.create_discussion, methods=["POST"]),
        Route(REPO + "/discussions/{num}", discussions.discussion_details),
        Route(REPO + "/discussions/{num}/comment", discussions.comment, methods=["POST"]),
        Route(REPO + "/discussions/{num}/title", discussions.rename, methods=["POST"]),
        Route(REPO + "/discussions/{num}/status", discussions.change_status, methods=["POST"]),
        Route(REPO + "/discussions/{num}/merge", discussions.merge, methods=["POST"]),
        Route(REPO + "/discussions/{num}/comment/{event_id}/edit", discussions.edit_comment, methods=["POST"]),
        Route(REPO + "/discussions/{num}/comment/{event_id}/hide", discussions.hide_comment, methods=["POST", "PUT"]),
        Route(REPO + "/like", social.like, methods=["POST"]),
        Route(REPO + "/like", social.unlike, methods=["DELETE"]),
        Route(REPO + "/likers", social.likers),
        Route(REPO + "/lfs-files", social.list_lfs_files),
        Route(REPO + "/lfs-files/batch", social.delete_lfs_files, methods=["POST"]),
        Route(REPO + "/lfs-files/duplicate", social.duplicate_lfs_files, methods=["POST"]),
        Route(REPO + "/ask-access", gating.ask_access, methods=["POST"]),
        Route(REPO + "/user-access-request/handle", gating.handle_request, methods=["POST"]),
        Route(REPO + "/user-access-request/grant", gating.grant, methods=["POST"]),
        Route(REPO + "/user-access-request/{status}", gating.list_requests),
        Route("/api/{types}/{name}", repos.single_segment_repo),
        Route("/lfs-transfer/{repo_key}/{oid}/{size}", lfs.upload, methods=["PUT"]),
        Route("/lfs-transfer/{repo_key}/{oid}/{size}", lfs.download, methods=["GET"]),
    ]
    for prefix in PREFIXES:
        routes.append(Route(prefix + "/{ns}/{name}/resolve/{rev}/{path:path}", files.resolve, methods=["GET", "HEAD"]))
        routes.append(Route(prefix + "/{ns}/{name}/raw/{rev}/{path:path}", files.raw, methods=["GET", "HEAD"]))
    for prefix in ("/{prefix}", ""):
        routes += [
            Route(prefix + "/{ns}/{name}.git/info/lfs/objects/batch", lfs.batch, methods=["POST"]),
            Route(prefix + "/{ns}/{name}.git/info/lfs/objects/verify", lfs.verify, methods=["POST"]),
            Route(prefix + "/{ns}/{name}.git/info/lfs/locks{rest:path}", lfs.locks, methods=["GET", "POST"]),
        ]
    routes += space_app_routes()  # /spaces-apps/ns/name/... (api/space_proxy.py)
    routes += viewer_routes()  # /datasets-server/... (api/viewer.py)
    routes += git_routes()
    routes += xet_routes()
    # Last: repo ids without a namespace get RepoNotFound rather than a bare routing 404.
    routes.append(Route("/api/{types}/{name}/{rest:path}", repos.single_segment_repo, methods=ANY_METHOD))
    for prefix in PREFIXES:
        routes.append(Route(prefix + "/{name}/resolve/{rev}/{path:path}", repos.single_segment_repo,
                            methods=["GET", "HEAD"]))
    # And any other /api/ path, whatever the method: a JSON 404 (not the web UI's HTML page, nor a 405).
    routes.append(Route("/api/{rest:path}", repos.no_such_endpoint, methods=ANY_METHOD))
    return routes
