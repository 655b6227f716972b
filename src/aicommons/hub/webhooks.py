"""Webhooks: a user's subscriptions to changes of repos, users and organisations, delivered as the
Hub's payload (version 3) by background jobs with retries and a delivery log.

An event (``hub/events.py``) reaches a webhook when the webhook watches the repo or its owner, its
domains include the event's (``repo`` or ``discussion``), it is enabled, and its owner may see the
repo right now (``hub/policy.py``): a webhook never tells anyone about a repo they cannot see. Each
delivery is a row of the log, queued to the job workers; the POST goes out through the one outbound
door (``aicommons.outbound``: public addresses only unless the operator allows private ones, checked
at delivery time on the resolved address, no redirects).
"""

from __future__ import annotations

import json
import logging
import re

import httpx

from aicommons import outbound
from aicommons.db.repos import RepoStore
from aicommons.db.webhooks import DeliveryRow, WebhookRow, WebhookStore
from aicommons.errors import BadRequest, NotFound
from aicommons.hub.access import Principal
from aicommons.hub.events import HubEvent
from aicommons.hub.names import REPO_TYPE_PLURAL, REPO_TYPE_PREFIX
from aicommons.hub.policy import Action, personal_refusal
from aicommons.hub.token_scopes import WEBHOOKS_READ, WEBHOOKS_WRITE
from aicommons.times import iso_z, utcnow

log = logging.getLogger(__name__)

DOMAINS = ("repo", "discussion")
WATCH_KINDS = ("user", "org", "model", "dataset", "space")
MAX_WATCHED = 100
MAX_URL = 2048
PAYLOAD_VERSION = 3
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_SECRET = re.compile(r"[\x20-\x7e]{1,256}")


class WebhookService:
    def __init__(self, store: WebhookStore, accounts, repos: RepoStore, policy, settings, queue):
        self.store = store
        self.accounts = accounts  # hub.accounts.AccountService: the owner's rights at delivery time
        self.repos = repos
        self.policy = policy
        self.settings = settings
        self.queue = queue  # delivery id -> None: hands the delivery to the job workers

    # --- management (HfApi's webhook methods) -----------------------------------------------------

    def find(self, principal: Principal, webhook_id: str, write: bool = False) -> WebhookRow:
        webhook = self.store.get(webhook_id) if re.fullmatch(r"[0-9a-f]{24}", webhook_id) else None
        refusal = personal_refusal(principal, webhook.owner_id if webhook else -1, write, "Webhook",
                                   WEBHOOKS_WRITE if write else WEBHOOKS_READ)
        if refusal is not None:
            raise refusal
        return webhook

    @staticmethod
    def require_owner(principal: Principal, write: bool) -> None:
        """Listing or creating one's own webhooks: signed in (and, to create, a write credential)."""
        refusal = personal_refusal(principal, principal.account.id if principal.account else -1, write, "Webhook",
                                   WEBHOOKS_WRITE if write else WEBHOOKS_READ)
        if refusal is not None:
            raise refusal

    def list(self, principal: Principal) -> list[WebhookRow]:
        self.require_owner(principal, write=False)
        return self.store.of_owner(principal.account.id)

    def create(self, principal: Principal, body: dict) -> WebhookRow:
        self.require_owner(principal, write=True)
        _no_jobs(body)
        watched = _check_watched(body.get("watched"))
        if not watched:
            raise BadRequest("'watched' must name at least one user, organization or repo")
        webhook_id = self.store.create(principal.account.id, _check_url(body.get("url")),
                                       _check_secret(body.get("secret")), _check_domains(body.get("domains")),
                                       watched, utcnow())
        return self.store.get(webhook_id)

    def update(self, webhook: WebhookRow, body: dict) -> WebhookRow:
        """The client always sends ``watched`` (``[]`` when its caller gave none): ``[]`` keeps the list."""
        _no_jobs(body)
        values: dict = {}
        watched = _check_watched(body.get("watched", []))
        if body.get("url") is not None:
            values["url"] = _check_url(body["url"])
        if body.get("domains") is not None:
            values["domains"] = _check_domains(body["domains"])
        if body.get("secret") is not None:
            values["secret"] = _check_secret(body["secret"])
        self.store.update(webhook.id, utcnow(), watched=watched or None, **values)
        return self.store.get(webhook.id)

    def set_disabled(self, webhook: WebhookRow, disabled: bool) -> WebhookRow:
        self.store.update(webhook.id, utcnow(), disabled=disabled)
        return self.store.get(webhook.id)

    def delete(self, webhook: WebhookRow) -> None:
        if not self.store.delete(webhook.id):
            raise NotFound("Webhook not found")

    def deliveries(self, webhook: WebhookRow, limit: int = 50) -> list[DeliveryRow]:
        """The newest deliveries of a webhook (found with ``find``), newest first."""
        return self.store.deliveries(webhook.id, limit)

    @staticmethod
    def to_json(webhook: WebhookRow) -> dict:
        return {"id": webhook.id, "url": webhook.url, "job": None, "secret": webhook.secret,
                "watched": [{"type": kind, "name": name} for kind, name in webhook.watched],
                "domains": webhook.domains, "disabled": webhook.disabled,
                "createdAt": iso_z(webhook.created_at), "updatedAt": iso_z(webhook.updated_at)}

    @staticmethod
    def delivery_json(delivery: DeliveryRow) -> dict:
        return {"id": delivery.id, "event": delivery.event, "status": delivery.status, "attempts": delivery.attempts,
                "responseStatus": delivery.response_status, "responseBody": delivery.response_body,
                "error": delivery.error, "createdAt": iso_z(delivery.created_at),
                "lastAttemptAt": iso_z(delivery.last_attempt_at), "payload": delivery.payload}

    # --- events -> deliveries ---------------------------------------------------------------------

    def on_event(self, event: HubEvent) -> None:
        repo = event.repo
        webhooks = [w for w in self.store.watching(repo.type, repo.full_id, repo.namespace)
                    if event.domain in w.domains]
        if not webhooks:
            return
        fresh = self.repos.get_by_id(repo.id) if event.action != "delete" else None
        principals: dict[int, Principal | None] = {}
        for webhook in webhooks:
            if webhook.owner_id not in principals:
                owner = self.accounts.store.get_by_id(webhook.owner_id)
                usable = owner is not None and not owner.suspended  # a suspended owner's webhooks stay silent
                principals[webhook.owner_id] = self.accounts.principal_for_account(owner) if usable else None
            principal = principals[webhook.owner_id]
            if principal is None or not self.policy.allows(principal, fresh or repo, Action.READ_METADATA):
                continue  # the owner may not see this repo (now): nothing is said about it
            payload = self.payload(event, webhook, fresh)
            delivery_id = self.store.add_delivery(webhook.id, f"{event.action} {event.scope}", payload, utcnow())
            try:
                self.queue(delivery_id)
            except Exception:  # noqa: BLE001 - logged as pending; the change itself has landed
                log.exception("could not queue webhook delivery %s", delivery_id)

    def _base(self) -> str:
        return self.settings.public_url or f"http://{self.settings.host}:{self.settings.port}"

    def payload(self, event: HubEvent, webhook: WebhookRow, fresh) -> dict:
        """The Hub's webhook payload (version 3), as huggingface_hub's ``WebhookPayload`` reads it."""
        repo, base = event.repo, self._base()  # a moved repo under its old name; ``fresh``: as it is now
        current = fresh or repo
        web = f"{base}/{REPO_TYPE_PREFIX[repo.type]}{repo.full_id}"
        out: dict = {
            "event": {"action": event.action, "scope": event.scope},
            "repo": {"type": repo.type, "name": repo.full_id, "id": str(repo.id), "private": current.private,
                     "url": {"web": web, "api": f"{base}/api/{REPO_TYPE_PLURAL[repo.type]}/{repo.full_id}"},
                     "owner": {"id": str(repo.owner_id)}, "tags": list(current.tags or [])},
            "webhook": {"id": webhook.id, "version": PAYLOAD_VERSION},
        }
        head = current.sha
        if event.domain == "repo" and head:
            out["repo"].update(headSha=head, head_sha=head)
        if event.updated_refs:
            out["updatedRefs"] = list(event.updated_refs)
        if event.updated_config:
            out["updatedConfig"] = dict(event.updated_config)
        if event.moved_to:
            out["movedTo"] = {"name": event.moved_to, "owner": {"id": str(current.owner_id)}}
        if event.discussion is not None:
            d = event.discussion
            discussion = {"id": str(d.id), "num": d.num, "author": {"id": str(d.author_id)}, "title": d.title,
                          "isPullRequest": d.is_pull_request, "status": d.status, "pinned": False,
                          "url": {"web": f"{web}/discussions/{d.num}",
                                  "api": f"{base}/api/{REPO_TYPE_PLURAL[repo.type]}/{repo.full_id}/discussions/{d.num}"}}
            if d.is_pull_request and d.target_branch:
                discussion["changes"] = {"base": d.target_branch, "mergeCommitId": d.merge_commit_id}
            out["discussion"] = discussion
            if event.comment is not None:
                c = event.comment
                hidden = event.comment_hidden or bool(c.data.get("hidden"))
                out["comment"] = {"id": c.id, "author": {"id": str(c.author_id)}, "hidden": hidden,
                                  "url": {"web": f"{web}/discussions/{d.num}#{c.id}"}}
                if not hidden:
                    out["comment"]["content"] = c.data.get("latest", {}).get("raw", "")
        return out

    # --- delivering (run by the job workers) ------------------------------------------------------

    def attempt(self, delivery_id: int) -> float | None:
        """One attempt at a delivery; the delay before the next one, or ``None`` when it is over."""
        delivery = self.store.get_delivery(delivery_id)
        if delivery is None or delivery.status in ("delivered", "failed"):
            return None
        webhook = self.store.get(delivery.webhook_id)
        if webhook is None:
            return None
        if webhook.disabled:
            self._record(delivery, "failed", error="the webhook was disabled")
            return None
        headers = {"Content-Type": "application/json", "User-Agent": "AICommons-Webhooks/1",
                   "X-Webhook-Id": webhook.id, "X-Delivery-Id": str(delivery.id)}
        if webhook.secret:
            headers["X-Webhook-Secret"] = webhook.secret
        body = json.dumps(delivery.payload).encode()
        try:
            response = outbound.post(webhook.url, body, headers,
                                     allow_private=self.settings.webhooks_allow_private_targets,
                                     timeout=self.settings.webhook_timeout_seconds)
        except outbound.TargetRefused as exc:
            self._record(delivery, "failed", error=f"refused: {exc}")
            return None
        except (OSError, httpx.HTTPError) as exc:
            return self._retry(delivery, None, None, f"{type(exc).__name__}: {exc}"[:500])
        if 200 <= response.status < 300:
            self._record(delivery, "delivered", response.status, response.body)
            return None
        if 300 <= response.status < 400:
            self._record(delivery, "failed", response.status, response.body, "redirects are not followed")
            return None
        return self._retry(delivery, response.status, response.body, f"the target answered {response.status}")

    def _retry(self, delivery: DeliveryRow, status: int | None, body: str | None, error: str) -> float | None:
        attempts = delivery.attempts + 1
        if attempts >= self.settings.webhook_max_attempts:
            self._record(delivery, "failed", status, body, error)
            return None
        self._record(delivery, "retrying", status, body, error)
        return self.settings.webhook_retry_seconds * 2 ** (attempts - 1)

    def _record(self, delivery: DeliveryRow, status: str, response_status: int | None = None,
                response_body: str | None = None, error: str | None = None) -> None:
        self.store.record_attempt(delivery.id, utcnow(), status=status, response_status=response_status,
                                  response_body=response_body, error=error)


def _no_jobs(body: dict) -> None:
    if body.get("jobSourceId") is not None or body.get("secrets") is not None:
        raise BadRequest("Job webhooks are not supported by this hub: give a 'url'")


def _check_url(url) -> str:
    if not isinstance(url, str) or len(url) > MAX_URL:
        raise BadRequest(f"'url' must be an http(s) URL of at most {MAX_URL} characters")
    try:
        outbound.check_url(url)
    except outbound.TargetRefused as exc:
        raise BadRequest(f"Invalid 'url': {exc}") from None
    return url


def _check_secret(secret) -> str | None:
    if secret is None or secret == "":
        return None
    if not isinstance(secret, str) or not _SECRET.fullmatch(secret):
        raise BadRequest("'secret' must be 1 to 256 printable ASCII characters (it is sent as a header)")
    return secret


def _check_domains(domains) -> list[str]:
    if domains is None:
        return list(DOMAINS)
    if not isinstance(domains, list) or not domains or not all(d in DOMAINS for d in domains):
        raise BadRequest(f"'domains' must be a non-empty list of {', '.join(DOMAINS)}")
    return [d for d in DOMAINS if d in domains]


def _check_watched(watched) -> list[tuple[str, str]]:
    if not isinstance(watched, list) or len(watched) > MAX_WATCHED:
        raise BadRequest(f"'watched' must be a list of at most {MAX_WATCHED} {{type, name}} objects")
    out = []
    for item in watched:
        if not isinstance(item, dict) or item.get("type") not in WATCH_KINDS or not isinstance(item.get("name"), str):
            raise BadRequest(f"Each watched item needs a 'type' among {', '.join(WATCH_KINDS)} and a 'name'")
        name = item["name"]
        parts = name.split("/")
        want = 1 if item["type"] in ("user", "org") else 2
        if len(parts) != want or not all(_NAME.fullmatch(p) for p in parts):
            raise BadRequest(f"Invalid watched {item['type']} name {name!r}")
        out.append((item["type"], name))
    return out
