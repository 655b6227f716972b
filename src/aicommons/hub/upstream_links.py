"""Linked upstream accounts: a user's own token for an upstream hub ("link your upstream account",
``/settings/upstream``), through which the pull-through mirror (hub/upstream.py) serves gated and
private upstream repos to that user, and to nobody else.

- The token is checked upstream when it is linked (``/api/whoami-v2``: upstream's name for it is
  kept to show), then stored AES-GCM sealed with the hub's ``upstream-links`` key (hub/keys.py),
  the account and upstream bound in as associated data. It is never shown back; unlinking deletes it.
- Whether upstream lets this token read a repo is asked upstream (``/api/{type}s/{id}/auth-check``,
  the call ``HfApi.auth_check`` makes, which huggingface.co answers) and remembered for
  ``AICOMMONS_UPSTREAM_GRANT_TTL_SECONDS``: a grant revoked upstream stops here within that time.
  The link itself is read on every decision, so unlinking (or linking another token) applies at once.
- An upstream that does not answer grants nothing (a cached "yes" runs out with its time).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any
from urllib.parse import quote

import httpx
from cryptography.exceptions import InvalidTag

from aicommons.db.upstream import UpstreamLink, UpstreamStore
from aicommons.errors import BadRequest, NotFound
from aicommons.hub.access import Principal
from aicommons.hub.names import REPO_TYPE_PLURAL
from aicommons.hub.spaces import SecretBox
from aicommons.times import utcnow
from aicommons.ttl_cache import TTLCache

log = logging.getLogger(__name__)
MAX_TOKEN_CHARS = 512


class UpstreamLinks:
    def __init__(self, store: UpstreamStore, key: bytes, urls: list[str], timeout: float, grant_ttl: float):
        self.store = store
        self.box = SecretBox(key)
        self.urls = urls
        self.timeout = timeout
        # (account id, upstream, token digest, repo type, upstream id) -> upstream's answer
        self._grants: TTLCache[tuple[int, str, str, str, str], bool] = TTLCache(grant_ttl, max_entries=50_000)

    # --- the settings page ---------------------------------------------------------------------------

    def linked(self, principal: Principal) -> list[dict[str, Any]]:
        """Each upstream, with the upstream account linked to it (never the token)."""
        links = {link.upstream_url: link for link in self.store.links(principal.user.id)}
        return [{"url": url, "user": links[url].upstream_user if url in links else None,
                 "linked_at": links[url].created_at if url in links else None} for url in self.urls]

    def link(self, principal: Principal, url: str, token: str) -> str:
        """Check ``token`` upstream and keep it for ``principal``; upstream's name for its account."""
        if url not in self.urls:
            raise NotFound("No such upstream hub")
        token = token.strip()
        if not token or len(token) > MAX_TOKEN_CHARS or any(c.isspace() or not c.isprintable() for c in token):
            raise BadRequest("Paste an access token of your account on the upstream hub")
        try:
            r = httpx.get(f"{url}/api/whoami-v2", headers={"Authorization": f"Bearer {token}"},
                          timeout=self.timeout, follow_redirects=True)
        except httpx.HTTPError:
            raise BadRequest(f"The upstream hub {url} did not answer; try again later") from None
        name = r.json().get("name") if r.status_code == 200 and "json" in r.headers.get("content-type", "") else None
        if not isinstance(name, str) or not name:
            raise BadRequest(f"The upstream hub {url} did not accept this token")
        account_id = principal.user.id
        self.store.put_link(UpstreamLink(account_id, url, self.box.seal(account_id, url, token), name[:200],
                                         utcnow()))
        return name

    def unlink(self, principal: Principal, url: str) -> bool:
        account_id = principal.user.id
        self._grants.drop_where(lambda key: key[0] == account_id)
        return self.store.drop_link(account_id, url)

    # --- decisions -----------------------------------------------------------------------------------

    def token_for(self, principal: Principal | None, url: str) -> str | None:
        """The token ``principal`` linked for ``url``, if any."""
        if principal is None or principal.account is None:
            return None
        for link in self.store.links(principal.account.id):
            if link.upstream_url == url:
                try:
                    return self.box.open(link.account_id, url, link.sealed)
                except (InvalidTag, ValueError):  # sealed with another secret key: as if not linked
                    log.warning("the upstream token of account %d cannot be opened (secret key changed?)",
                                link.account_id)
                    return None
        return None

    def may_read(self, principal: Principal | None, url: str, repo_type: str, upstream_id: str) -> bool:
        """Whether upstream lets the token ``principal`` linked read ``upstream_id``'s files (asked
        upstream, remembered for the grant TTL)."""
        token = self.token_for(principal, url)
        if token is None or principal is None or principal.account is None:
            return False
        if principal.grants is not None and not principal.grants.can_read_gated_repos:
            return False  # a fine-grained token reaches upstream grants only with canReadGatedRepos
        key = (principal.account.id, url, hashlib.sha256(token.encode()).hexdigest(), repo_type,
               upstream_id.lower())
        known = self._grants.get(key)
        if known is not None:
            return known
        generation = self._grants.generation
        allowed = self.check(url, token, repo_type, upstream_id)
        if allowed is not None:
            self._grants.put(key, allowed, generation)
        return bool(allowed)

    def check(self, url: str, token: str, repo_type: str, upstream_id: str) -> bool | None:
        """Upstream's answer for this token and repo; None if upstream did not answer."""
        try:
            r = httpx.get(f"{url}/api/{REPO_TYPE_PLURAL[repo_type]}/{quote(upstream_id)}/auth-check",
                          headers={"Authorization": f"Bearer {token}"}, timeout=self.timeout,
                          follow_redirects=True)
        except httpx.HTTPError as exc:
            log.warning("upstream %s unreachable checking a grant on %s: %s", url, upstream_id, exc)
            return None
        if r.status_code >= 500:
            return None
        return r.status_code == 200
