"""Access token settings: the user's tokens (classic, fine-grained, from device logins) and the
fine-grained editor. Checkbox names are ``p|<scope>|<permission>``: scope ``user``, ``global``,
``org:<name>`` or ``repos`` (the permissions given to every repo listed in the ``repos`` box)."""

from __future__ import annotations

import base64
import binascii
import os
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aicommons.errors import HubError
from aicommons.hub import token_scopes
from aicommons.times import utcnow
from aicommons.web.context import hub_of, page_handler
from aicommons.web.render import page

EXPIRY_DAYS = {"never": None, "7": 7, "30": 30, "90": 90, "365": 365}
# A created token travels to the page that shows it once (post/redirect/get: reloading that page
# used to send the form again and make a second token) in a short-lived cookie of this path only,
# sealed (AES-GCM, bound to the account) and deleted by that page.
NEW_TOKEN_COOKIE = "aic_new_token"
NEW_TOKEN_PATH = "/settings/tokens"


def _seal(key: bytes, account_name: str, token: str) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    return base64.urlsafe_b64encode(nonce + AESGCM(key).encrypt(nonce, token.encode(), account_name.encode())).decode()


def _unseal(key: bytes, account_name: str, sealed: str | None) -> str | None:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not sealed:
        return None
    try:
        raw = base64.urlsafe_b64decode(sealed)
        return AESGCM(key).decrypt(raw[:12], raw[12:], account_name.encode()).decode()
    except (binascii.Error, ValueError, InvalidTag):
        return None


def fine_grained_from_form(form: dict, user_name: str) -> dict:
    """The Hub-shaped permissions a submitted editor asks for."""
    chosen: dict[str, list[str]] = {}
    for key, value in form.items():
        if key.startswith("p|") and value:
            _, scope, permission = key.split("|", 2)
            chosen.setdefault(scope, []).append(permission)
    scoped = []
    if chosen.get("user"):
        scoped.append({"entity": {"type": "user", "name": user_name}, "permissions": chosen["user"]})
    for scope, permissions in chosen.items():
        if scope.startswith("org:"):
            scoped.append({"entity": {"type": "org", "name": scope[4:]}, "permissions": permissions})
    for line in form.get("repos", "").splitlines():
        line = line.strip().strip("/")
        if not line:
            continue
        kind = "model"
        for prefix, repo_type in (("datasets/", "dataset"), ("spaces/", "space"), ("models/", "model")):
            if line.startswith(prefix):
                kind, line = repo_type, line[len(prefix):]
        scoped.append({"entity": {"type": kind, "name": line}, "permissions": chosen.get("repos", [])})
    return {"canReadGatedRepos": form.get("gated") == "on", "global": chosen.get("global", []), "scoped": scoped}


def describe(hub, token) -> list[str]:
    """One line per scope of a token, for the table."""
    if token.role != "fineGrained":
        return [f"{token.role}: everything you can {'read' if token.role == 'read' else 'do'}"]
    grants = hub.accounts.describe_grants(token_scopes.Grants.from_stored(token.fine_grained))
    lines = [f"{s['entity']['type']} {s['entity']['name']}: {', '.join(s['permissions'])}" for s in grants["scoped"]]
    if grants["global"]:
        lines.append(f"everywhere: {', '.join(grants['global'])}")
    if grants["canReadGatedRepos"]:
        lines.append("gated repos you were admitted to: read")
    return lines or ["nothing"]


@page_handler(sign_in=True)
def tokens(request: Request) -> Response:
    hub = hub_of(request)
    account = request.state.web.principal.account
    created, error, status = None, None, 200
    key = hub.keys.for_purpose("new-token")
    if request.method == "POST":
        form = request.state.web.form
        try:
            if form.get("action") == "create":
                role = form.get("role", "read")
                expiry = form.get("expires", "never")
                if expiry not in EXPIRY_DAYS:
                    raise HubError("Choose an expiry from the list", status=400)
                days = EXPIRY_DAYS[expiry]
                expires_at = utcnow() + timedelta(days=days) if days else None
                fine = fine_grained_from_form(form, account.name) if role == "fineGrained" else None
                value = hub.accounts.create_token(account.name, role=role, name=form.get("name") or None,
                                                  fine_grained=fine, expires_at=expires_at)
                redirect = RedirectResponse(NEW_TOKEN_PATH, status_code=303)
                redirect.set_cookie(NEW_TOKEN_COOKIE, _seal(key, account.name, value), max_age=300,
                                    path=NEW_TOKEN_PATH, httponly=True, samesite="strict",
                                    secure=request.url.scheme == "https")
                return redirect
            if form.get("action") == "revoke" and form.get("token_id", "").isdigit():
                hub.accounts.revoke_token_id(account.id, int(form["token_id"]))
                return RedirectResponse(NEW_TOKEN_PATH, status_code=303)
        except HubError as exc:
            error, status = exc.message, exc.status
    else:
        created = _unseal(key, account.name, request.cookies.get(NEW_TOKEN_COOKIE))
    orgs = [org.name for org, _ in hub.orgs.orgs_of(account)]
    rows = [(t, describe(hub, t)) for t in hub.accounts.tokens_of(account)]
    response = page(request, "tokens.html", status=status, tokens=rows, created=created, error=error, orgs=orgs,
                    perms=token_scopes.PERMISSIONS, labels=token_scopes.LABELS, now=utcnow())
    if NEW_TOKEN_COOKIE in request.cookies:  # shown once: gone on the next view
        response.delete_cookie(NEW_TOKEN_COOKIE, path=NEW_TOKEN_PATH)
    return response
