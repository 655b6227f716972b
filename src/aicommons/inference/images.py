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
