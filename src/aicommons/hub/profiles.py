"""A user's public profile: full name, bio, homepage and avatar.

Avatars are never served as uploaded. The upload is refused past ``max_avatar_bytes``; Pillow opens
it with only the PNG, JPEG, GIF and WebP decoders, refuses more than ``MAX_AVATAR_PIXELS`` pixels
before decoding (decompression bombs), applies the EXIF orientation, and re-encodes the first frame,
at most ``AVATAR_SIZE`` pixels a side, as a fresh PNG. What the camera wrote (EXIF with GPS position,
XMP, ICC profiles, comments) is not copied, and a file that only pretends to be an image (a
polyglot, HTML) does not survive the re-encoding.
"""

from __future__ import annotations

import io
from urllib.parse import urlsplit

from aicommons.db.accounts import Account, AccountStore
from aicommons.db.avatars import AvatarStore
from aicommons.errors import BadRequest, NotFound, PayloadTooLarge
from aicommons.hub.names import unsafe_char
from aicommons.times import utcnow

AVATAR_SIZE = 256
MAX_AVATAR_PIXELS = 40_000_000
AVATAR_FORMATS = ("PNG", "JPEG", "GIF", "WEBP")
MAX_FULLNAME = 256
MAX_BIO = 2000
MAX_HOMEPAGE = 512


def reencode_avatar(data: bytes, max_bytes: int) -> bytes:
    """The uploaded image as a new PNG without metadata, or BadRequest / PayloadTooLarge."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"The image is larger than {max_bytes} bytes")
    import warnings

    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=AVATAR_FORMATS) as image:
                width, height = image.size
                if width * height > MAX_AVATAR_PIXELS:
                    raise BadRequest(f"The image has too many pixels ({width}x{height})")
                image.seek(0)
                upright = ImageOps.exif_transpose(image)  # honour the orientation, then drop the EXIF
                upright.thumbnail((AVATAR_SIZE, AVATAR_SIZE))
                clean = Image.new("RGBA", upright.size)
                clean.paste(upright.convert("RGBA"))  # pixels only: no info, EXIF, XMP or ICC profile
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadRequest("The image has too many pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise BadRequest("The avatar must be a PNG, JPEG, GIF or WebP image") from None
    out = io.BytesIO()
    clean.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _text(value: str, what: str, limit: int, multiline: bool = False) -> str:
    value = (value or "").strip()
    if len(value) > limit:
        raise BadRequest(f"The {what} is longer than {limit} characters")
    bad = unsafe_char(value.replace("\n", " ").replace("\r", " ") if multiline else value)
    if bad:
        raise BadRequest(f"The {what} contains a {bad}")
    return value


def check_homepage(value: str) -> str:
    value = _text(value, "homepage", MAX_HOMEPAGE)
    if not value:
        return ""
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or " " in value:
        raise BadRequest("The homepage must be an http:// or https:// address")
    return value


class ProfileService:
    def __init__(self, accounts: AccountStore, avatars: AvatarStore, max_avatar_bytes: int):
        self.accounts = accounts
        self.avatars = avatars
        self.max_avatar_bytes = max_avatar_bytes

    def update(self, user: Account, fullname: str, bio: str, homepage: str) -> Account:
        values = {"fullname": _text(fullname, "full name", MAX_FULLNAME), "bio": _text(bio, "bio", MAX_BIO, True),
                  "homepage": check_homepage(homepage)}
        self.accounts.update(user.id, **values)
        updated = self.accounts.get_by_id(user.id)
        if updated is None:
            raise NotFound("This account no longer exists")
        return updated

    def set_avatar(self, user: Account, data: bytes) -> None:
        self.avatars.put(user.id, "image/png", reencode_avatar(data, self.max_avatar_bytes), utcnow())

    def remove_avatar(self, user: Account) -> None:
        self.avatars.delete(user.id)

    def has_avatar(self, user: Account) -> bool:
        return self.avatars.get(user.id) is not None

    def avatar(self, name: str) -> tuple[str, bytes]:
        account = self.accounts.get(name)
        found = self.avatars.get(account.id) if account is not None else None
        if found is None:
            raise NotFound(f"No avatar for {name!r}")
        return found[0], found[1]
