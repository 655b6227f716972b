"""The web UI in a real browser (headless Chromium driven by Playwright) against a live hub."""

from __future__ import annotations

import json
import re
import shutil

import httpx
import pytest
from huggingface_hub import HfApi

from tests.conftest import ALICE_TOKEN, unique_name

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# For `locator.evaluate`: the natural width of an <img> once it has loaded. A lazy image is made eager
# first (it then loads even below the fold); decode() waits for the load and rejects if it fails.
LOADED_WIDTH = "img => { img.loading = 'eager'; return img.decode().then(() => img.naturalWidth); }"
# --disable-dev-shm-usage: renderers keep their shared memory under /tmp, not /dev/shm, which a container may
# size at 64 MiB; a renderer that runs out there dies, and Playwright reports "Page crashed" (session 12's CI).
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, live_hub):
    context = browser.new_context(base_url=live_hub.url)
    pg = context.new_page()
    yield pg
    context.close()


def sign_in(page, user="alice", password="wonderland"):
    page.goto("/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("form.stack button")
    page.wait_for_url("**/")


def test_browse_card_files_and_history(page, api, repo_id):
    api.upload_file(path_or_fileobj=b"---\nlicense: mit\ntags: [web-demo]\n---\n# Hello card\n\n**bold** <script>window.pwned=1</script>",
                    path_in_repo="README.md", repo_id=repo_id, commit_message="Add the card")
    api.upload_file(path_or_fileobj=b'{"hidden_size": 32}', path_in_repo="sub/config.json", repo_id=repo_id)
    page.goto(f"/{repo_id}")
    assert page.inner_text("article.card h1") == "Hello card"
    assert page.evaluate("window.pwned") is None  # card HTML is escaped
    assert "mit" in page.inner_text("aside")
    page.click("nav.tabs >> text=Files")
    page.click("table.files >> text=sub")
    page.click("table.files >> text=config.json")
    assert '"hidden_size": 32' in page.inner_text("pre.code")
    page.click("nav.tabs >> text=History")
    assert "Add the card" in page.inner_text("ul.commits")
    page.goto("/models?search=" + repo_id.split("/")[1])
    assert page.locator("ul.repos li").count() == 1


def test_sign_in_create_token_and_use_it(page, live_hub):
    page.goto("/settings/tokens")  # anonymous: sent to sign in, and back afterwards
    assert "/login?next=/settings/tokens" in page.url
    page.goto("/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "wrong")
    page.click("form.stack button")
    assert "Wrong user name or password" in page.inner_text(".error")
    sign_in(page)
    page.goto("/settings/tokens")
    page.fill("input[name=name]", "from-the-browser")
    page.check("input[name=role][value=write]")
    page.click("text=Create token")
    token = page.inner_text("#new-token")
    assert HfApi(endpoint=live_hub.url, token=token).whoami()["name"] == "alice"
    # Shown once: reloading the page neither shows it again nor sends the form again (it made a
    # second token), and the address is the tokens page's own.
    page.reload()
    assert page.locator("#new-token").count() == 0
    assert page.url.endswith("/settings/tokens")
    assert page.get_by_role("button", name="Revoke from-the-browser", exact=True).count() == 1
    # Each column has a name and each Revoke button says which token it revokes (a screen reader
    # heard an unnamed column and a list of identical "Revoke" buttons).
    assert all(h.text_content().strip() for h in page.get_by_role("columnheader").all())
    page.get_by_role("button", name="Revoke from-the-browser", exact=True).click()
    from huggingface_hub.errors import HfHubHTTPError

    with pytest.raises(HfHubHTTPError):
        HfApi(endpoint=live_hub.url, token=token).whoami()


def test_create_repo_make_private_and_delete(page, browser, live_hub, api):
    sign_in(page)
    name = unique_name("web")
    page.goto("/new")
    page.fill("input[name=name]", name)
    page.click("form.stack button")
    page.wait_for_url(f"**/alice/{name}")
    assert api.repo_exists(f"alice/{name}")
    page.click("nav.tabs >> text=Settings")
    page.check("input[name=visibility][value=private]")
    page.click("text=Save")
    assert api.model_info(f"alice/{name}").private
    anonymous = browser.new_context(base_url=live_hub.url).new_page()
    response = anonymous.goto(f"/alice/{name}")
    assert response.status == 404
    anonymous.context.close()
    page.fill("input[name=confirm]", f"alice/{name}")
    page.click("button.danger")
    page.wait_for_url("**/")
    assert not api.repo_exists(f"alice/{name}")


def test_discussion_and_comment(page, repo_id, api):
    sign_in(page)
    page.goto(f"/{repo_id}/discussions")
    page.fill("input[name=title]", "Is this model any good?")
    page.fill("textarea[name=description]", "Asking for a friend.")
    page.click("text=Start a discussion")
    page.fill("textarea[name=comment]", "It is tiny.\nAnd fast.")
    page.click("text=Comment")
    assert page.locator(".event .comment-text").last.inner_text() == "It is tiny.\nAnd fast."  # line breaks kept
    details = api.get_discussion_details(repo_id, 1)
    assert details.title == "Is this model any good?"
    assert [e.content for e in details.events if e.type == "comment"] == ["Asking for a friend.", "It is tiny.\nAnd fast."]
    # Its author closes it from the page (no comment needed), and reopens it; there was no button for either.
    page.click("text=Close the discussion")
    assert api.get_discussion_details(repo_id, 1).status == "closed"
    assert "changed the status to closed" in page.inner_text("main")
    page.click("text=Reopen the discussion")
    assert api.get_discussion_details(repo_id, 1).status == "open"


def test_forms_need_the_csrf_token(page, live_hub):
    import httpx

    r = httpx.post(f"{live_hub.url}/new", data={"name": "csrf-less", "type": "model"})
    assert r.status_code == 403


class _RunsAShell:
    def __reduce__(self):
        import os

        return os.system, ("echo owned",)


def test_files_with_scan_issues_are_flagged_and_served_inert(page, api, repo_id):
    import pickle
    import time

    from huggingface_hub import CommitOperationAdd

    api.create_commit(repo_id, [CommitOperationAdd("evil.pkl", pickle.dumps(_RunsAShell(), protocol=2)),
                                CommitOperationAdd("page.html", b"<script>document.title='ran'</script>"),
                                CommitOperationAdd("ok.json", b"{}")], commit_message="files")
    deadline = time.time() + 60
    while not api.model_info(repo_id, securityStatus=True).security_repo_status["scansDone"]:
        assert time.time() < deadline, "the scans did not finish"
        time.sleep(0.3)
    page.goto(f"/{repo_id}/tree/main")
    badge = page.locator("tr", has_text="evil.pkl").locator(".badge.scan-unsafe")
    assert badge.inner_text() == "⚠ unsafe"
    assert "posix.system" in badge.get_attribute("title")
    assert page.locator("tr", has_text="ok.json").locator(".badge.scan-unsafe").count() == 0
    # A repo's HTML file opened in the browser shows as text; its script never runs on our origin.
    page.goto(f"/{repo_id}/resolve/main/page.html")
    assert page.title() != "ran"
    assert "<script>" in page.inner_text("body")


def test_sign_out_kills_the_cookie_and_pages_refuse_framing(page, browser, live_hub):
    sign_in(page)
    stolen = [c for c in page.context.cookies() if c["name"] == "aicommons_session"]
    assert stolen
    page.click("text=Sign out")
    page.wait_for_url("**/")
    assert page.locator("text=Sign in").count() == 1
    # The cookie copied before sign-out is worthless: the session ended on the server.
    replay = browser.new_context(base_url=live_hub.url)
    replay.add_cookies(stolen)
    thief = replay.new_page()
    thief.goto("/settings/tokens")
    assert "/login?next=/settings/tokens" in thief.url
    # Another site cannot frame the hub's pages (clickjacking): the frame stays empty.
    refused = []
    thief.on("console", lambda m: refused.append(m.text))
    thief.set_content(f'<iframe id="f" src="{live_hub.url}/login"></iframe>')
    thief.wait_for_timeout(1500)
    framed = thief.frame_locator("#f").locator("input[name=username]")
    assert framed.count() == 0
    replay.close()


# The first answer of a model waits for its load: a worker process importing torch and transformers,
# about 10 s of CPU, which CI's two busy cores can stretch to minutes (CI stop 30 timed out at 120 s; a
# whole-suite run here past 240 s while other tests loaded the box).
FIRST_ANSWER_MS = 480_000


@pytest.mark.timeout(1200)
def test_try_it_box_answers_and_is_not_offered_where_it_cannot(page, live_hub, api, tmp_path):
    """The "Try it" box calls the inference API anonymously (try.js omits credentials): on a public
    model it answers; a gated model used to show the box too, and every click, even its owner's,
    got the gate's refusal."""
    pytest.importorskip("torch")
    from playwright.sync_api import expect

    from aicommons.inference import devmodels

    folder = devmodels.build_llama(tmp_path / "llama")
    public, gated = f"alice/{unique_name('try')}", f"alice/{unique_name('try-gated')}"
    for repo in (public, gated):
        api.create_repo(repo)
        api.upload_folder(repo_id=repo, folder_path=str(folder))
    api.update_repo_settings(gated, gated="manual")
    sign_in(page)
    page.goto(f"/{public}")
    page.get_by_label("Input").fill("Once upon a time")
    # Every text the box shows, with when: a slow first answer (the model loads) is announced as such.
    page.evaluate("""() => { const out = document.getElementById('try-output'); window.shown = [];
        new MutationObserver(() => window.shown.push([performance.now(), out.textContent]))
            .observe(out, {childList: true, characterData: true, subtree: true}); }""")
    page.get_by_role("button", name="Compute").click()
    expect(page.locator("#try-output")).to_contain_text("generated_text", timeout=FIRST_ANSWER_MS)
    shown = page.evaluate("window.shown")
    if shown[-1][0] - shown[0][0] > 3500:
        assert any("loading the model" in text for _, text in shown), shown
    # The page shows how to call the model from code; the snippet runs as shown, with a real token.
    snippet = page.inner_text("#snippet-inference")
    assert "chat.completions.create" in snippet and f'model="{public}"' in snippet
    exec(snippet.replace('"hf_..."', repr(ALICE_TOKEN)), {})  # noqa: S102
    # A sentence-similarity model compares the first line with the next ones (it answered embeddings).
    minilm = f"alice/{unique_name('minilm')}"
    api.create_repo(minilm)
    api.upload_folder(repo_id=minilm, folder_path=str(devmodels.copy_minilm(tmp_path / "minilm")))
    page.goto(f"/{minilm}")
    page.get_by_label("Input").fill("A cat sits on the mat.\nA cat sits on the mat.\nStock prices fell today.")
    page.get_by_role("button", name="Compute").click()
    expect(page.locator("#try-output")).to_have_text(re.compile(r"^[^…]"), timeout=FIRST_ANSWER_MS)  # answered
    scores = json.loads(page.inner_text("#try-output"))
    assert len(scores) == 2 and abs(scores[0] - 1) < 1e-4 and scores[1] < 0.5
    page.goto(f"/{public}")
    # The side panel's headings follow the page's h1 without skipping a level (axe: heading-order).
    for path in (f"/{public}", f"/{public}/tree/main"):
        page.goto(path)
        levels = page.eval_on_selector_all("h1, h2, h3, h4, h5, h6", "hs => hs.map(h => +h.tagName[1])")
        assert all(b <= a + 1 for a, b in zip(levels, levels[1:])), (path, levels)
    page.goto(f"/{gated}")
    assert page.locator("h1").count() and page.locator("#try").count() == 0
    # Someone not admitted is told the card waits behind the gate (it said "No model card yet.").
    visitor = httpx.get(f"{live_hub.url}/{gated}", timeout=30).text
    assert "The card is shared with the files" in visitor and "card yet" not in visitor
    api.create_repo(f"{public}-data", repo_type="dataset")
    assert "No dataset card yet." in httpx.get(f"{live_hub.url}/datasets/{public}-data", timeout=30).text
