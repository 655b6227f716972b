"""Your account in a real browser (Playwright + Chromium): profile and avatar, password and
sessions, export of your data, and deleting the account."""

from __future__ import annotations

import io
import json
import zipfile

import httpx
import pytest
from PIL import ExifTags, Image

from tests.conftest import auth, unique_name
from tests.e2e.test_web_ui import LOADED_WIDTH, browser, page  # noqa: F401 - the fixtures

PASSWORD = "correct horse battery staple"


def new_user(live_hub, admin: bool = False) -> tuple[str, str]:
    """A fresh user with a password and a write token."""
    name = unique_name("u").replace("-", "")
    live_hub.cli("user", "create", name, "--password", PASSWORD, "--email", f"{name}@example.org",
                 *(["--admin"] if admin else []))
    token = live_hub.cli("token", "create", name, "--name", "laptop").stdout.strip().splitlines()[-1]
    return name, token


def sign_in(page, name: str, password: str = PASSWORD) -> None:  # noqa: F811
    page.goto("/login")
    page.get_by_label("User name").fill(name) if page.get_by_label("User name").count() else \
        page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("form.stack button")
    page.wait_for_url("**/")


def photo_with_gps() -> bytes:
    image = Image.new("RGB", (1200, 900), (30, 120, 200))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCam"
    exif[ExifTags.Base.GPSInfo] = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (52.0, 31.0, 12.5),
                                   ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: (13.0, 24.0, 1.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the upload does carry GPS
    return data


def test_profile_and_avatar_without_its_gps_position(page, live_hub, tmp_path):  # noqa: F811
    name, _ = new_user(live_hub)
    sign_in(page, name)
    page.click("header >> text=Settings")
    page.get_by_label("Full name").fill("Ada Example")
    page.get_by_label("Bio").fill("Trains small models.\nLikes tea.")
    page.get_by_label("Homepage").fill("https://ada.example.org/")
    page.click("text=Save profile")
    assert "Profile saved" in page.inner_text("[role=status]")
    photo = tmp_path / "me.jpg"
    photo.write_bytes(photo_with_gps())
    page.get_by_label("Image (PNG, JPEG").set_input_files(str(photo))
    page.click("text=Upload avatar")
    assert "Avatar saved" in page.inner_text("[role=status]")

    served = httpx.get(f"{live_hub.url}/avatars/{name}")
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    avatar = Image.open(io.BytesIO(served.content))
    assert avatar.format == "PNG" and max(avatar.size) == 256
    assert not avatar.getexif() and not avatar.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # GPS is gone
    assert b"SpyCam" not in served.content and b"Exif" not in served.content and b"eXIf" not in served.content

    page.goto(f"/{name}")
    assert "Ada Example" in page.inner_text("h1")
    assert "Likes tea." in page.inner_text(".bio")
    assert page.locator("a[href='https://ada.example.org/']").get_attribute("rel").startswith("nofollow")
    assert page.locator(f"img.avatar[src='/avatars/{name}']").evaluate(LOADED_WIDTH) == 256

    page.goto("/settings/profile")  # bad input: said on the page, nothing saved
    page.get_by_label("Homepage").fill("javascript:alert(1)")
    page.evaluate("document.querySelector('input[name=homepage]').type = 'text'")
    page.click("text=Save profile")
    assert "http:// or https://" in page.inner_text("[role=alert]")
    not_an_image = tmp_path / "x.png"
    not_an_image.write_bytes(b"<html><script>alert(1)</script></html>")
    page.get_by_label("Image (PNG, JPEG").set_input_files(str(not_an_image))
    page.click("text=Upload avatar")
    assert "must be a PNG, JPEG, GIF or WebP image" in page.inner_text("[role=alert]")
    assert httpx.get(f"{live_hub.url}/avatars/{name}").content == served.content

    page.set_viewport_size({"width": 375, "height": 800})  # phone width: nothing wider than the screen
    page.goto("/settings/profile")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_password_change_ends_other_sessions_and_sessions_can_be_signed_out(page, live_hub, browser):  # noqa: F811
    name, token = new_user(live_hub)
    other = browser.new_context(base_url=live_hub.url)
    elsewhere = other.new_page()
    sign_in(elsewhere, name)
    third = browser.new_context(base_url=live_hub.url)
    third_page = third.new_page()
    sign_in(third_page, name)
    sign_in(page, name)
    page.goto("/settings/account")
    assert page.locator("#sessions tr").count() == 4  # header + three sessions
    assert page.locator("#sessions >> text=this browser").count() == 1
    page.locator("#sessions tr", has_text="Sign out").first.locator("text=Sign out").click()
    assert "Session signed out" in page.inner_text("[role=status]")
    assert page.locator("#sessions tr").count() == 3

    page.get_by_label("Current password").fill("not my password")
    page.get_by_label("New password (at least").fill("a brand new passphrase")
    page.get_by_label("New password again").fill("a brand new passphrase")
    page.click("text=Change password")
    assert "current password is not right" in page.inner_text("[role=alert]")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password (at least").fill("a brand new passphrase")
    page.get_by_label("New password again").fill("a brand new passphrase")
    page.click("text=Change password")
    assert "Password changed" in page.inner_text("[role=status]")
    page.goto("/settings/account")  # still signed in here
    assert page.locator("#sessions tr").count() == 2
    for p in (elsewhere, third_page):  # signed out there
        p.goto("/settings/account")
        assert "/login" in p.url
    other.close()
    third.close()
    assert httpx.get(f"{live_hub.url}/api/whoami-v2", headers=auth(token)).status_code == 200  # tokens stay
    assert httpx.get(f"{live_hub.url}/api/whoami-v2", auth=(name, "a brand new passphrase")).status_code == 200
    assert httpx.get(f"{live_hub.url}/api/whoami-v2", auth=(name, PASSWORD)).status_code == 401


def test_export_my_data_is_a_zip_of_everything_but_secrets(page, live_hub, repo_id):  # noqa: F811
    name, token = new_user(live_hub)
    with httpx.Client(base_url=live_hub.url, headers=auth(token), timeout=30) as http:
        mine = f"{name}/{unique_name('model')}"
        assert http.post("/api/repos/create", json={"name": mine, "private": True}).status_code == 200
        assert http.put(f"/api/models/{mine}/settings", json={"gated": "manual"}).status_code == 200
        assert http.post(f"/api/models/{repo_id}/like").status_code == 200
        opened = http.post(f"/api/models/{repo_id}/discussions", json={"title": "export me", "description": "words I wrote"})
        assert http.post(f"/api/models/{repo_id}/discussions/{opened.json()['num']}/comment",
                         json={"comment": "and a comment"}).status_code == 200
        hook_secret = "hook-secret-" + unique_name("s")
        assert http.post("/api/settings/webhooks", json={"watched": [{"type": "user", "name": name}], "domains": ["repo"],
                                                        "url": "https://hooks.example.org/in", "secret": hook_secret}
                         ).status_code == 200
        made = http.post("/api/collections", json={"title": "Reading list", "namespace": name})
        assert made.status_code == 200
        assert http.post(f"/api/collections/{made.json()['slug']}/items",
                         json={"item": {"id": repo_id, "type": "model"}, "note": "start here"}).status_code == 200
        assert http.post("/api/users/alice/follow").status_code == 200
    sign_in(page, name)
    page.goto("/settings/account")
    with page.expect_download() as download:
        page.click("#export")
    archive = zipfile.ZipFile(download.value.path())
    names = set(archive.namelist())
    assert {"README.txt", "profile.json", "repos.json", "discussions.json", "comments.json", "likes.json",
            "access_requests.json", "tokens.json", "audit.json", "collections.json", "webhooks.json",
            "following.json", "org_join_requests.json", "sign_in_identities.json"} <= names
    data = {n: json.loads(archive.read(n)) for n in names if n.endswith(".json")}
    assert data["profile.json"]["name"] == name and data["profile.json"]["email"] == f"{name}@example.org"
    [repo] = data["repos.json"]
    assert repo["id"] == mine and repo["private"] is True and repo["gated"] == "manual"
    assert [d["title"] for d in data["discussions.json"]] == ["export me"]
    assert {"words I wrote", "and a comment"} <= {e["data"].get("latest", {}).get("raw") for e in data["comments.json"]}
    assert [like["repo_id"] for like in data["likes.json"]] == [repo_id]
    assert [t["name"] for t in data["tokens.json"]] == ["laptop"]
    [hook] = data["webhooks.json"]
    assert hook["url"] == "https://hooks.example.org/in" and hook["hasSecret"] is True
    assert hook["watched"] == [{"type": "user", "name": name}] and "secret" not in hook
    [collection] = data["collections.json"]
    assert collection["title"] == "Reading list"
    assert [(i["repo_id"], i["note"]) for i in collection["items"]] == [(repo_id, "start here")]
    assert [f["name"] for f in data["following.json"]] == ["alice"]
    assert data["org_join_requests.json"] == [] and data["sign_in_identities.json"] == []
    assert any(e["action"] == "POST /api/repos/create" for e in data["audit.json"])
    everything = b"".join(archive.read(n) for n in names)
    from hashlib import sha256

    for secret in (token, sha256(token.encode()).hexdigest(), PASSWORD, "argon2", "secret_key", hook_secret):
        assert secret.encode() not in everything, f"the export holds a secret: {secret[:12]}…"


def test_delete_my_account_transfers_or_deletes_repos_and_keeps_comments(page, live_hub, repo_id):  # noqa: F811
    name, token = new_user(live_hub)
    org = unique_name("lab").replace("-", "")
    live_hub.cli("org", "create", org, "--member", name)
    with httpx.Client(base_url=live_hub.url, headers=auth(token), timeout=30) as http:
        kept, gone = f"{name}/{unique_name('keep')}", f"{name}/{unique_name('drop')}"
        for rid in (kept, gone):
            assert http.post("/api/repos/create", json={"name": rid}).status_code == 200
        num = http.post(f"/api/models/{repo_id}/discussions", json={"title": "bye", "description": "stays"}).json()["num"]
    sign_in(page, name)
    page.goto("/settings/account")
    page.click("text=Delete my account…")
    page.get_by_label(kept.split("/")[1]).select_option(f"{org}")
    page.get_by_label(gone.split("/")[1]).select_option("delete")
    page.get_by_label("Your password").fill("wrong password")
    page.get_by_label("Type your user name").fill(name)
    page.click("button.danger")
    assert "current password is not right" in page.inner_text("[role=alert]")
    assert httpx.get(f"{live_hub.url}/api/whoami-v2", headers=auth(token)).status_code == 200
    page.get_by_label(kept.split("/")[1]).select_option(f"{org}")
    page.get_by_label(gone.split("/")[1]).select_option("delete")
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_label("Type your user name").fill(name)
    page.click("button.danger")
    assert "is deleted" in page.inner_text("[role=status]")
    assert "Sign in" in page.inner_text("header")

    assert httpx.get(f"{live_hub.url}/api/whoami-v2", headers=auth(token)).status_code == 401  # at once
    assert httpx.get(f"{live_hub.url}/api/models/{kept.replace(name, org, 1)}").status_code == 200
    assert httpx.get(f"{live_hub.url}/api/models/{gone}").status_code == 401
    thread = httpx.get(f"{live_hub.url}/api/models/{repo_id}/discussions/{num}").json()
    assert thread["author"]["name"] == "deleted user" and "stays" in json.dumps(thread["events"])
    page.goto("/settings/account")
    assert "/login" in page.url
    assert any(name in line and "/settings/account/delete" in line
               for line in live_hub.cli("audit", "--actor", name).stdout.splitlines())


@pytest.fixture(autouse=True)
def _phone_width_safe():
    yield
