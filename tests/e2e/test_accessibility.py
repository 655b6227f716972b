"""Every main page of the web UI in a real browser (Chromium via Playwright), at a desktop width and a
390 px phone, in the light and the dark scheme: axe-core reports no serious or critical violation,
nothing scrolls sideways, and a full-page screenshot is kept in .artefacts/screenshots/ for people to
look at (issue 14)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd

from tests.conftest import ALICE_TOKEN, auth, unique_name
from tests.e2e.test_account_ui import PASSWORD, new_user
from tests.e2e.test_web_ui import ARGS, CHROMIUM, sign_in

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ROOT / ".artefacts" / "screenshots"
WIDTHS = {"desktop": (1366, 900), "phone": (390, 844)}

GATED_CARD = """---
extra_gated_heading: Ask for the weights
extra_gated_prompt: "You agree to the **licence** and to cite the paper."
extra_gated_fields:
  Company: text
  Country: country
  Date of birth: date_picker
  Intended use:
    type: select
    options: [Research, Education, {label: Something else, value: other}]
  I agree to the licence: checkbox
---
# A gated model
"""

CARD = """---
license: apache-2.0
library_name: transformers
pipeline_tag: text-generation
tags: [demo, accessibility]
---
<p align="center"><img src="logo.png" alt="Demo logo" width="120"></p>

![A banner as wide as the card](banner.png)

# A demo model with a card like real ones

<details><summary>What is inside</summary>

A **tiny** model, with a table:

| Size | Layers | Heads |
|---|---|---|
| 4M | 2 | 4 |
</details>

```python
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained("{repo}")  # a comment
```

The loss is $\\mathcal{L} = -\\sum_i y_i \\log p_i$, and attention reads

$$
\\operatorname{softmax}\\left(\\frac{QK^\\top}{\\sqrt{d_k}}\\right)V
$$

A long line that must wrap on a phone: {long}
"""


DATASET_CARD = """---
license: cc-by-4.0
language: [en]
size_categories: [n<1K]
task_categories: [question-answering]
pretty_name: Sums
---
# Sums

Questions about sums, with their answers and a long source column.
"""


def safetensors_file() -> bytes:
    import numpy as np
    from safetensors.numpy import save

    return save({"embed.weight": np.zeros((64, 32), dtype=np.float32), "norm.weight": np.zeros(32, dtype=np.float16)})


def png(width: int, height: int, rgb: tuple[int, int, int], to: tuple[int, int, int] | None = None) -> bytes:
    """A PNG image, solid or a left-to-right gradient (a real one: the browser decodes it and lays it
    out at its size)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    end = to or rgb
    row = b"".join(bytes(round(a + (b - a) * x / max(1, width - 1)) for a, b in zip(rgb, end, strict=True))
                   for x in range(width))
    rows = (b"\0" + row) * height
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def site(live_hub, api_module):
    """A repo with an HTML card, code, a sub-folder, a long file and a discussion."""
    api = api_module
    repo = f"alice/{unique_name('a11y')}"
    api.create_repo(repo)
    api.create_tag(repo, tag="v0")  # before the card: the compare page's old side
    card = CARD.replace("{repo}", repo).replace("{long}", "x" * 300)
    api.create_commit(repo, [CommitOperationAdd("README.md", card.encode()),
                             CommitOperationAdd("logo.png", png(240, 80, (64, 120, 220))),
                             CommitOperationAdd("banner.png", png(1200, 500, (32, 64, 160), (96, 200, 180))),
                             CommitOperationAdd("src/train.py", b"import torch\n\ndef train(steps: int = 10):\n"
                                                b"    for step in range(steps):\n        print(f'step {step}')\n" * 20),
                             CommitOperationAdd("config.json", b'{"hidden_size": 32, "num_layers": 2}\n')],
                      commit_message="Add the card and some files")
    api.create_discussion(repo, title="Does it work on a phone?", description="Asking for a friend.")
    api.create_repo(repo + "-data", repo_type="dataset")
    rows = "question,answer,source\n" + "".join(f"What is {i} + {i}?,{2 * i},{'x' * 80}\n" for i in range(45))
    api.upload_file(path_or_fileobj=rows.encode(), path_in_repo="train.csv", repo_id=repo + "-data",
                    repo_type="dataset")
    api.upload_file(path_or_fileobj=DATASET_CARD.encode(), path_in_repo="README.md", repo_id=repo + "-data",
                    repo_type="dataset")
    # A model with safetensors weights, derived from the first and trained on the dataset: the side
    # panel's parameters, tensor types, base model, datasets used, size, scan and snippets.
    api.create_repo(repo + "-st")
    api.create_commit(repo + "-st", [
        CommitOperationAdd("README.md", f"---\nbase_model: {repo}\ndatasets: [{repo}-data]\nlicense: mit\n---\n"
                                        "# Fine-tuned\n".encode()),
        CommitOperationAdd("model.safetensors", safetensors_file()),
        CommitOperationAdd("config.json", b'{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}\n')],
        commit_message="Weights")
    api.create_repo(repo + "-app", repo_type="space", space_sdk="static")  # its page embeds the app
    api.upload_file(path_or_fileobj=b"<!doctype html><html lang=en><title>app</title><h1>An app</h1>",
                    path_in_repo="index.html", repo_id=repo + "-app", repo_type="space")
    # A space whose build failed: its page shows why, and the build log's last lines to its owner.
    api.create_repo(repo + "-broken", repo_type="space", space_sdk="gradio")
    api.create_commit(repo + "-broken", repo_type="space", commit_message="a typo", operations=[
        CommitOperationAdd("app.py", b"print('hi')\n"),
        CommitOperationAdd("requirements.txt", b"gradio\nnot a requirement !!\n" + b"x" * 400 + b"\n")])
    # A pull request changing one file and adding another: its "Files changed" section.
    api.create_commit(repo, [CommitOperationAdd("config.json", b'{"hidden_size": 64, "num_layers": 2}\n'),
                             CommitOperationAdd("src/eval.py", b"def evaluate():  # <img src=x onerror=window.pwned=1>\n"
                                                                b"    return 0.5\n")],
                      commit_message="A wider model", commit_description="Doubles the hidden size.", create_pr=True)
    # A gated model whose card asks for answers (the Hub's extra_gated_* form), seen by a non-member.
    api.create_repo(repo + "-gated")
    api.upload_file(path_or_fileobj=GATED_CARD.encode(), path_in_repo="README.md", repo_id=repo + "-gated")
    api.update_repo_settings(repo + "-gated", gated="manual")
    deadline = time.time() + 120
    while api.get_space_runtime(repo + "-broken").stage != "BUILD_ERROR":
        assert time.time() < deadline, "the broken space's build never failed"
        time.sleep(0.5)
    return repo


def _outbox_link(live_hub, to: str, path: str) -> str:
    """The link to ``path`` in the mail the hub wrote to ``to`` (no SMTP: the outbox), as a path."""
    deadline = time.time() + 30
    while time.time() < deadline:
        for mail in sorted((live_hub.data_dir / "outbox").glob("*.eml")):
            text = mail.read_text()
            found = re.search(re.escape(live_hub.url + path) + r"\?token=[\w.~-]+", text)
            if f"To: {to}" in text and found:
                return found.group(0).removeprefix(live_hub.url)
        time.sleep(0.2)
    raise AssertionError(f"no mail to {to} with a link to {path}")


def _post_form(http: httpx.Client, path: str, data: dict, form_page: str | None = None) -> httpx.Response:
    """Submit a web form the way a browser does: its CSRF token read from the page that shows it."""
    csrf = re.search(r'name="csrf" value="([^"]+)"', http.get(form_page or path).text).group(1)
    return http.post(path, data={"csrf": csrf, **data})


@pytest.fixture(scope="module")
def links(live_hub, site, api_module) -> dict[str, str]:
    """What the other pages need, made the way people make it: a collection, a webhook, sign-up
    invites, the verification and address-change links mailed by the hub, an organisation
    invitation, and a site administrator. Name -> path (or user name, for "admin")."""
    api = api_module
    collection = api.create_collection("Accessible picks", namespace="alice",
                                       description="Models and data that read well on a phone")
    api.add_collection_item(collection.slug, site, "model", note="The demo, with a rich card")
    api.add_collection_item(collection.slug, site + "-data", "dataset")
    api.add_collection_item(collection.slug, site + "-app", "space", note="x" * 200)
    hook = api.create_webhook(url="https://hooks.a11y.invalid/hook", watched=[{"type": "model", "name": site}],
                              domains=["repo", "discussion"], secret="a11y-secret")
    api.create_discussion(site, title="Seen by the webhook")  # a delivery row (.invalid never resolves)
    guest = unique_name("a11y-guest")
    invite, spare = (live_hub.cli("invite", "create", "--email", f"{name}@example.org").stdout.strip().splitlines()[-1]
                     for name in (guest, guest + "-spare"))
    with httpx.Client(base_url=live_hub.url, timeout=30) as http:  # the guest joins: a verification mail
        invite_path = invite.removeprefix(live_hub.url)
        joined = _post_form(http, "/join", {"invite": invite_path.split("invite=", 1)[1], "username": guest,
                                            "email": f"{guest}@example.org", "password": PASSWORD},
                            form_page=invite_path)
        assert joined.status_code == 200 and "Check your mail" in joined.text, joined.text
    verify = _outbox_link(live_hub, f"{guest}@example.org", "/email/verify")
    changer, _ = new_user(live_hub)
    with httpx.Client(base_url=live_hub.url, timeout=30) as http:  # an address change: a confirmation mail
        _post_form(http, "/login", {"username": changer, "password": PASSWORD, "next": "/"})
        changed = _post_form(http, "/settings/account", {"action": "email", "password": PASSWORD,
                                                         "new_email": f"{changer}@new.example.org"})
        assert changed.status_code == 200, changed.text
    confirm = _outbox_link(live_hub, f"{changer}@new.example.org", "/settings/email/confirm")
    invitation = httpx.post(f"{live_hub.url}/api/organizations/acme/invitations", headers=auth(ALICE_TOKEN),
                            json={"role": "write", "email": "a11y-invitee@example.org"}, timeout=30)
    invitation.raise_for_status()
    admin, _ = new_user(live_hub, admin=True)
    asker, _ = new_user(live_hub)
    return {"asker": asker, "unverified": guest, "collection": f"/collections/{collection.slug}", "webhook": f"/settings/webhooks/{hook.id}",
            "join-invite": spare.removeprefix(live_hub.url), "verify": verify, "email-confirm": confirm,
            "invitation": invitation.json()["url"].removeprefix(live_hub.url), "admin": admin}


@pytest.fixture(scope="module")
def api_module(live_hub):
    from huggingface_hub import HfApi

    from tests.conftest import ALICE_TOKEN

    return HfApi(endpoint=live_hub.url, token=ALICE_TOKEN)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


# What a person opens on a page before it is checked: the pull request's "Files changed" (fetched then).
OPEN = {"repo-pull-request": "#pr-diff summary"}


def pages(repo: str, links: dict[str, str]) -> dict[str, tuple[str, bool | str]]:
    """name -> (path, signed in: False, True for alice, or a user name)."""
    return {
        "home": ("/", False), "search": ("/search?q=a11y", False), "models": ("/models", False), "datasets": ("/datasets", False),
        "login": ("/login", False), "repo-card": (f"/{repo}", False), "repo-files": (f"/{repo}/tree/main", False),
        "repo-blob": (f"/{repo}/blob/main/src/train.py", False),
        "repo-file-panel": (f"/{repo}/blob/main/logo.png", False), "repo-folder": (f"/{repo}/tree/main/src", False), "repo-history": (f"/{repo}/commits/main", False), "repo-commit": (f"/{repo}/commit/main", False),
        "repo-discussions": (f"/{repo}/discussions", False), "repo-discussion": (f"/{repo}/discussions/1", False),
        "profile": ("/alice", False), "org-profile": ("/acme", False), "not-found": ("/alice/no-such-repo", False),
        "dataset-viewer": (f"/datasets/{repo}-data/viewer", False), "space-page": (f"/spaces/{repo}-app", False),
        "spaces": ("/spaces", False), "repo-compare": (f"/{repo}/compare/v0...main", False),
        "dataset-card": (f"/datasets/{repo}-data", False), "repo-safetensors": (f"/{repo}-st", False),
        "new-repo": ("/new", True), "tokens": ("/settings/tokens", True), "repo-settings": (f"/{repo}/settings", True),
        "join": ("/join", False), "password-reset": ("/password/reset", False), "invites": ("/settings/invites", True),
        "device-login": ("/device", True), "org-members": ("/organizations/acme/members", True),
        "settings-profile": ("/settings/profile", True), "settings-account": ("/settings/account", True),
        "settings-delete": ("/settings/account/delete", True), "settings-storage": ("/settings/storage", True),
        "org-sign-in": ("/organizations/acme/settings/sign-in", True),
        "space-build-error": (f"/spaces/{repo}-broken", True),
        "collection": (links["collection"], False), "collection-owner": (links["collection"], True),
        "collection-new": ("/collections/new", True), "profile-own": ("/alice", True),
        "webhooks": ("/settings/webhooks", True), "webhook": (links["webhook"], True),
        "repo-pull-request": (f"/{repo}/discussions/2", True),
        "join-invite": (links["join-invite"], False), "email-verify": (links["verify"], False),
        "email-confirm": (links["email-confirm"], False), "org-invitation": (links["invitation"], True),
        "admin": ("/admin", links["admin"]), "admin-dashboard": ("/admin/dashboard", links["admin"]),
        "repo-gated-form": (f"/{repo}-gated", links["asker"]),
        "new-repo-unverified": ("/new", links["unverified"]),  # says why not, and offers the link again
        "org-new": ("/organizations/new", True), "org-new-unverified": ("/organizations/new", links["unverified"]),
        "repo-upload": (f"/{repo}/upload/main", True), "repo-edit-card": (f"/{repo}/edit/main/README.md", True),
        "repo-card-owner": (f"/{repo}", True),  # with "Edit the card" and "Upload files"
    }


def check_page(browser, live_hub, path: str, signed_in: bool | str, width: str, scheme: str, name: str) -> list[str]:
    w, h = WIDTHS[width]
    # bypass_csp: the hub's CSP (rightly) refuses the inline script that injects axe.
    context = browser.new_context(base_url=live_hub.url, viewport={"width": w, "height": h}, color_scheme=scheme,
                                  bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"{name}: script error {exc}"))
    try:
        if signed_in:
            sign_in(page, *(() if signed_in is True else (signed_in, PASSWORD)))
        response = page.goto(path)
        if response is None or response.status != (404 if name == "not-found" else 200):
            errors.append(f"{name} {width} {scheme}: {path} answered {response.status if response else None}")
        if name in OPEN:
            page.click(OPEN[name])
            page.wait_for_load_state("networkidle")
        page.add_script_tag(path=str(AXE))
        result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        for violation in result["violations"]:
            if violation["impact"] in ("serious", "critical"):
                targets = [n["target"] for n in violation["nodes"]][:3]
                errors.append(f"{name} {width} {scheme}: {violation['id']} ({violation['impact']}) {targets}")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        if overflow > 1:
            errors.append(f"{name} {width} {scheme}: the page scrolls sideways by {overflow}px")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}-{width}-{scheme}.png"), full_page=True)
    finally:
        context.close()
    return errors


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", list(WIDTHS))
def test_pages_are_accessible_and_fit(browser, live_hub, site, links, width, scheme):
    assert AXE.exists(), "axe-core is missing: run `make install` (npm ci)"
    problems = []
    for name, (path, signed_in) in pages(site, links).items():
        problems += check_page(browser, live_hub, path, signed_in, width, scheme, name)
    assert not problems, "\n".join(problems)


def test_rich_card_renders_safely(browser, live_hub, site):
    context = browser.new_context(base_url=live_hub.url)
    page = context.new_page()
    try:
        page.goto(f"/{site}")
        card = page.locator("article.card")
        assert card.locator("details summary").inner_text() == "What is inside"
        assert card.locator("table th").first.text_content() == "Size"  # inside the closed <details>
        logo = card.locator("img").first
        src = logo.get_attribute("src")  # a relative image, resolved against the repo
        assert src.startswith(f"/{site}/resolve/") and src.endswith("/logo.png")
        # Sized from the file's header, so nothing moves when it arrives: the author's width, the
        # height scaled to the 240 x 80 image; the banner gets its own 1200 x 500.
        assert (logo.get_attribute("width"), logo.get_attribute("height")) == ("120", "40")
        banner = card.locator("img").nth(1)
        assert (banner.get_attribute("width"), banner.get_attribute("height")) == ("1200", "500")
        assert card.locator("p[align=center]").count() == 1
        assert card.locator("pre.hl code span.hl-kn").first.inner_text() == "from"  # highlighted code
        # Math, rendered on the server as MathML that Chromium lays out: the fraction stacks.
        assert card.locator("math").count() == 2 and card.locator('math[display="block"] mfrac').count() == 1
        frac = card.locator("mfrac").bounding_box()
        letter = card.locator("math").first.locator("mi").first.bounding_box()
        assert frac["height"] > 1.5 * letter["height"], (frac, letter)
        page.goto(f"/{site}/blob/main/src/train.py")
        assert page.locator("pre.code span.hl-k").first.inner_text() in ("def", "for", "in")
    finally:
        context.close()


def test_pull_request_diff_opens_with_its_lines_marked(browser, live_hub, site):
    """"Files changed" is fetched when opened, and reads like a commit's diff: the files, the
    removed and added lines marked; the diff's own text stays text."""
    context = browser.new_context(base_url=live_hub.url)
    page = context.new_page()
    try:
        page.goto(f"/{site}/discussions/2")
        diff = page.locator("#pr-diff-text")
        assert diff.text_content() == "Open the diff"  # not part of the page until asked for
        page.click("#pr-diff summary")
        page.locator("#pr-diff-text .d-add").first.wait_for()
        assert diff.locator(".d-file").all_inner_texts() == ["diff --git a/config.json b/config.json",
                                                             "diff --git a/src/eval.py b/src/eval.py"]
        assert diff.locator(".d-del").all_inner_texts() == ['-{"hidden_size": 32, "num_layers": 2}']
        assert diff.locator(".d-add").all_inner_texts() == [
            '+{"hidden_size": 64, "num_layers": 2}', "+def evaluate():  # <img src=x onerror=window.pwned=1>",
            "+    return 0.5"]
        assert diff.locator("img").count() == 0 and page.evaluate("window.pwned") is None
    finally:
        context.close()


def test_theme_toggle_follows_the_system_and_remembers(browser, live_hub):
    context = browser.new_context(base_url=live_hub.url, color_scheme="dark")
    page = context.new_page()
    try:
        page.goto("/")
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(13, 17, 23)"  # the system says dark
        page.click("#theme-toggle")
        assert page.evaluate("document.documentElement.dataset.theme") == "light"
        page.reload()
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
    finally:
        context.close()


@pytest.fixture(scope="module")
def mirror_hub(live_hub, tmp_path_factory):
    """A pull-through mirror of the session's hub, with alice (password "wonderland") on it: the
    "Upstream accounts" settings page only exists on a mirror."""
    from tests.backends import free_port
    from tests.conftest import start_hub, stop_hub

    hub = start_hub(tmp_path_factory.mktemp("a11y-mirror"), free_port(), AICOMMONS_UPSTREAM_URL=live_hub.url)
    hub.cli("user", "create", "alice", "--password", "wonderland")
    yield hub
    stop_hub(hub)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", list(WIDTHS))
def test_upstream_accounts_page_is_accessible_and_fits(browser, mirror_hub, width, scheme):
    problems = check_page(browser, mirror_hub, "/settings/upstream", True, width, scheme, "settings-upstream")
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def fresh_hub(tmp_path_factory):
    """A hub just installed, with no administrator yet: the only one where /setup exists."""
    from tests.backends import free_port
    from tests.conftest import start_hub, stop_hub

    data = tmp_path_factory.mktemp("a11y-setup") / "data"
    data.mkdir()
    hub = start_hub(data, free_port())
    yield hub
    stop_hub(hub)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", list(WIDTHS))
def test_first_run_setup_page_is_accessible_and_fits(browser, fresh_hub, width, scheme):
    token = (fresh_hub.data_dir / "setup-token").read_text().strip()
    problems = check_page(browser, fresh_hub, f"/setup?token={token}", False, width, scheme, "setup")
    assert not problems, "\n".join(problems)


def test_linking_an_upstream_account_in_the_browser(browser, live_hub, mirror_hub):
    """Link (the token is checked upstream and never shown back), a refused token, unlink."""
    from tests.conftest import ALICE_TOKEN

    context = browser.new_context(base_url=mirror_hub.url)
    page = context.new_page()
    try:
        sign_in(page)
        page.goto("/settings/account")
        page.get_by_role("link", name="Upstream accounts").click()
        assert page.get_by_role("heading", name=live_hub.url).is_visible()
        assert page.locator(".upstream-status").inner_text() == "Not linked."
        page.get_by_label(f"Your access token on {live_hub.url}").fill("hf_wrong_token_nobody_has_0000000000")
        page.get_by_role("button", name="Link").click()
        assert "did not accept this token" in page.get_by_role("alert").inner_text()
        page.get_by_label(f"Your access token on {live_hub.url}").fill(ALICE_TOKEN)
        page.get_by_role("button", name="Link").click()
        assert page.get_by_role("status").inner_text() == f"Linked to alice on {live_hub.url}."
        assert "Linked to alice" in page.locator(".upstream-status").inner_text()
        assert ALICE_TOKEN not in page.content()
        page.get_by_role("button", name="Unlink").click()
        assert page.get_by_role("status").inner_text() == f"Unlinked from {live_hub.url}."
        assert page.locator(".upstream-status").inner_text() == "Not linked."
    finally:
        context.close()
