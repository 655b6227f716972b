"""Image inputs of the HF task API: raw bytes (``InferenceClient`` posts the file as the body) or
base64 in JSON ``inputs``; decoded with Pillow off the event loop, refused with a 400 when they are
not an image or when they would decode to more pixels than ``MAX_PIXELS`` (decompression bombs)."""

from __future__ import annotations

import base64
import binascii
import io
import warnings

from .errors import InvalidRequest

MAX_PIXELS = 40_000_000
TOKENS_PER_IMAGE = 256  # what one image costs at admission (a ViT-base sees 197 patches)


def image_bytes(inputs, kind: str = "an image") -> list[bytes]:
    """JSON ``inputs``: one base64 string or a list of them (images; audio uses the same forms)."""
    items = inputs if isinstance(inputs, list) else [inputs]
    out = []
    for item in items:
        if isinstance(item, bytes):
            out.append(item)
            continue
        if not isinstance(item, str) or not item:
            raise InvalidRequest(f"'inputs' must be {kind}: raw bytes as the body, or base64 in JSON",
                                 param="inputs")
        if item.startswith("data:"):
            item = item.split(",", 1)[-1]
        try:
            out.append(base64.b64decode(item, validate=True))
        except (binascii.Error, ValueError):
            raise InvalidRequest("'inputs' is not valid base64", param="inputs") from None
    return out


def decode(blobs: list[bytes]) -> list:
    from PIL import Image

    images = []
    for i, blob in enumerate(blobs):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(blob)) as img:
                    if img.width * img.height > MAX_PIXELS:
                        raise InvalidRequest(f"image {i} has more than {MAX_PIXELS} pixels", param="inputs")
                    images.append(img.convert("RGB"))
        except InvalidRequest:
            raise
        except (OSError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise InvalidRequest(f"input {i} is not an image this server can read", param="inputs") from None
    return images


# ---- images in chat messages (vision-language chat) -------------------------------------------------
MAX_CHAT_IMAGES = 8  # per request
MAX_IMAGE_FILE_BYTES = 20 * 1024 * 1024  # per image read from the hub (OpenAI's limit)
_HUB_PREFIXES = {"datasets": "dataset", "spaces": "space"}


def chat_image_bytes(urls: list[str], origins: set[str], read_file=None) -> list[bytes]:
    """The bytes of each ``image_url``: a ``data:image/...;base64,`` URL, or a ``/resolve/`` URL of a
    file on this hub (``origins``: this hub's own ``scheme://host`` forms), read through
    ``read_file(repo_type, repo_id, revision, path, limit)`` with the caller's access. Nothing is
    fetched from any other host. Runs on a worker thread."""
    from urllib.parse import unquote, urlsplit

    if len(urls) > MAX_CHAT_IMAGES:
        raise InvalidRequest(f"at most {MAX_CHAT_IMAGES} images per request", param="messages")
    out = []
    for i, url in enumerate(urls):
        if url.startswith("data:"):
            head, _, data = url.partition(",")
            if not head.startswith("data:image/") or not head.endswith(";base64"):
                raise InvalidRequest(f"image {i}: a data URL must be data:image/...;base64,...", param="messages")
            out.extend(image_bytes(data, "an image"))
            continue
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        if parts.scheme not in ("http", "https") or origin not in origins or read_file is None:
            raise InvalidRequest(f"image {i}: only data: URLs and URLs of files on this hub are accepted "
                                 "(this server fetches nothing from other hosts)", param="messages")
        segments = parts.path.strip("/").split("/")
        repo_type = _HUB_PREFIXES.get(segments[0], "model")
        if repo_type != "model":
            segments = segments[1:]
        if len(segments) < 5 or segments[2] != "resolve":
            raise InvalidRequest(f"image {i}: a hub URL must name a file: /[datasets/]NS/NAME/resolve/REV/PATH",
                                 param="messages")
        repo_id = f"{unquote(segments[0])}/{unquote(segments[1])}"
        revision, path = unquote(segments[3]), unquote("/".join(segments[4:]))
        try:
            out.append(read_file(repo_type, repo_id, revision, path, MAX_IMAGE_FILE_BYTES))
        except ValueError:
            raise InvalidRequest(f"image {i} is larger than {MAX_IMAGE_FILE_BYTES} bytes", param="messages") from None
        except Exception:  # noqa: BLE001 - missing and unreadable answer alike, whatever the cause
            raise InvalidRequest(f"image {i}: {url} does not exist or is not readable with these credentials",
                                 param="messages") from None
    return out
