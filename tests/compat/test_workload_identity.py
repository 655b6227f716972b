"""Workload identity for CI: huggingface_hub's own ``exchange_oidc_token`` trades an ID token signed
by a local issuer (its keys published at its JWKS URL) for a short-lived hub token on one repo."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from huggingface_hub import HfApi
from huggingface_hub._oidc import exchange_oidc_token
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.conftest import _free_port, start_hub, stop_hub


@pytest.fixture(scope="module")
def issuer():
    key = RSAKey.generate_key(2048, parameters={"kid": "ci-1", "alg": "RS256", "use": "sig"})
    port = _free_port()
    url = f"http://127.0.0.1:{port}"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = {"/.well-known/openid-configuration": {"issuer": url, "jwks_uri": f"{url}/jwks"},
                    "/jwks": {"keys": [key.as_dict(private=False)]}}.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(body or {}).encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def sign(sub: str, aud: str, exp_in: int = 600, signing_key=key, iss: str = url) -> str:
        now = int(time.time())
        return jwt.encode({"alg": "RS256", "kid": "ci-1"}, {"iss": iss, "sub": sub, "aud": aud, "iat": now,
                                                             "exp": now + exp_in}, signing_key)

    yield url, sign
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def ci_hub(tmp_path_factory, issuer):
    url, _ = issuer
    port = _free_port()
    data = tmp_path_factory.mktemp("wi") / "data"
    data.mkdir()
    policies = [{"org": "ciorg", "issuer": url, "subject": "repo:ciorg/app:ref:refs/heads/main",
                 "repos": ["ciorg/model-*"], "permissions": ["repo.content.read", "repo.write"]}]
    hub = start_hub(data, port, AICOMMONS_OIDC_TRUST_POLICIES=json.dumps(policies))
    hub.cli("user", "create", "ciadmin")
    hub.cli("org", "create", "ciorg", "--member", "ciadmin")
    admin_token = f"hf_ci_{uuid.uuid4().hex}"
    hub.cli("token", "create", "ciadmin", "--value", admin_token)
    admin = HfApi(endpoint=hub.url, token=admin_token)
    for name in ("model-a", "model-b", "other"):
        admin.create_repo(f"ciorg/{name}", private=True)
    try:
        yield hub
    finally:
        stop_hub(hub)


def test_a_trusted_id_token_becomes_a_repo_token(ci_hub, issuer):
    _, sign = issuer
    answer = exchange_oidc_token(subject_token=sign("repo:ciorg/app:ref:refs/heads/main", ci_hub.url),
                                 resource="ciorg/model-a", endpoint=ci_hub.url)
    assert answer["token_type"] == "bearer" and answer["expires_in"] == 3600
    api = HfApi(endpoint=ci_hub.url, token=answer["access_token"])
    api.upload_file(path_or_fileobj=b"weights", path_in_repo="w.bin", repo_id="ciorg/model-a")
    access = api.whoami()["auth"]["accessToken"]
    assert access["role"] == "fineGrained" and "expiresAt" in access
    assert [s["entity"]["name"] for s in access["fineGrained"]["scoped"]] == ["ciorg/model-a"]
    with pytest.raises(RepositoryNotFoundError):  # the token names one repo only
        api.model_info("ciorg/model-b")


@pytest.mark.parametrize("case", ["other subject", "wrong audience", "repo outside the policy", "expired",
                                  "forged signature", "unknown issuer"])
def test_untrusted_tokens_are_refused(ci_hub, issuer, case):
    url, sign = issuer
    sub, aud, resource, kwargs = "repo:ciorg/app:ref:refs/heads/main", ci_hub.url, "ciorg/model-a", {}
    if case == "other subject":
        sub = "repo:someone/else:ref:refs/heads/main"
    elif case == "wrong audience":
        aud = "https://another-hub.example"
    elif case == "repo outside the policy":
        resource = "ciorg/other"
    elif case == "expired":
        kwargs = {"exp_in": -60}
    elif case == "forged signature":
        kwargs = {"signing_key": RSAKey.generate_key(2048, parameters={"kid": "ci-1"})}
    elif case == "unknown issuer":
        kwargs = {"iss": "https://token.actions.githubusercontent.com"}
    with pytest.raises(HfHubHTTPError) as refused:
        exchange_oidc_token(subject_token=sign(sub, aud, **kwargs), resource=resource, endpoint=ci_hub.url)
    assert refused.value.response.status_code == 400
    assert refused.value.response.json()["error"] in ("invalid_grant", "invalid_target")
