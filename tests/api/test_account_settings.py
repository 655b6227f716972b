"""``/settings/account`` and ``/settings/profile`` over HTTP: one user can never end another's
session; avatar uploads are bounded and re-encoded."""

from __future__ import annotations

import hashlib
import io
import re

import httpx
from PIL import Image

from tests.api.test_account_admin_cli import PASSWORD, _user, _web_session


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_a_user_cannot_end_someone_elses_session(live_hub):
    alice, _ = _user(live_hub)
    mallory, _ = _user(live_hub)
    victim = _web_session(live_hub.url, alice)
    attacker = _web_session(live_hub.url, mallory)
    victim_hash = hashlib.sha256(victim.cookies["aicommons_session"].encode()).hexdigest()
    page = attacker.get("/settings/account").text
    assert victim_hash not in page
    sent = attacker.post("/settings/account", data={"csrf": _csrf(page), "action": "end-session", "session": victim_hash})
    assert sent.status_code == 200
    assert victim.get("/settings/account").status_code == 200  # still signed in
    mine = victim.get("/settings/account").text
    assert "this browser" in mine
    victim.close()
    attacker.close()


def test_avatar_limits_and_reencoding(live_hub):
    name, _ = _user(live_hub)
    browser = _web_session(live_hub.url, name)
    csrf = _csrf(browser.get("/settings/profile").text)

    def upload(data: bytes, filename: str = "a.png") -> httpx.Response:
        return browser.post("/settings/profile", data={"csrf": csrf, "action": "avatar"},
                            files={"avatar": (filename, data, "image/png")})

    too_big = upload(b"\x89PNG" + b"\0" * (5 * 1024 * 1024 + 10))
    assert too_big.status_code == 413
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, "PNG")  # 400 megapixels in a few kilobytes
    refused = upload(bomb.getvalue())
    assert refused.status_code == 400 and "too many pixels" in refused.text
    assert browser.get(f"/avatars/{name}").status_code == 404
    frames = [Image.new("RGB", (64, 32), color) for color in ("red", "blue")]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:])
    assert upload(gif.getvalue(), "a.gif").status_code == 200
    served = Image.open(io.BytesIO(browser.get(f"/avatars/{name}").content))
    assert served.format == "PNG" and served.size == (64, 32) and not getattr(served, "is_animated", False)
    assert served.convert("RGB").getpixel((0, 0)) == (255, 0, 0)
    # A password is never accepted where the form does not ask for one, and the pages name no secret.
    assert PASSWORD not in browser.get("/settings/account").text
    browser.close()
