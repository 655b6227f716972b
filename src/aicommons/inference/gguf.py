"""GGUF repos (issue 17): which file of a repo of GGUF files a request means, as Ollama and the Hub's
local-apps name them: ``ns/name:Q4_K_M`` picks the file whose name carries that quantisation tag
(``...-Q4_K_M.gguf``, ``....q4_k_m.gguf``); without a tag, Q4_K_M if the repo has it (Ollama's
default), else the repo's only GGUF file. The file is served by transformers' GGUF loader
(``gguf_file=``: weights dequantised to the serving dtype, tokenizer and chat template from the
file's metadata) on the same engines as any causal LM.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from .errors import InvalidRequest
from .source import ResolvedModel

DEFAULT_TAG = "Q4_K_M"
_TAG = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_SHARD = re.compile(r"-\d{5}-of-\d{5}\.gguf$", re.I)
# Bits per weight of the common types, to estimate the dequantised (float32) size from the file's.
_BITS = (("Q2", 2.6), ("Q3", 3.4), ("IQ4", 4.5), ("Q4", 4.5), ("Q5", 5.5), ("Q6", 6.6), ("Q8", 8.5),
         ("BF16", 16.0), ("F16", 16.0), ("F32", 32.0))


def split_tag(model_ref: str) -> tuple[str, str | None]:
    """"ns/name:TAG" or "ns/name@rev:TAG" -> (the reference without it, TAG). Git refs cannot hold
    ':', so a colon always starts a tag."""
    ref, sep, tag = model_ref.rpartition(":")
    if not sep or "/" not in ref:
        return model_ref, None
    if not _TAG.match(tag):
        raise InvalidRequest(f"'{tag}' is not a quantisation tag (like Q4_K_M or Q8_0)", param="model")
    return ref, tag


@lru_cache(maxsize=1024)
def files(local_dir: Path) -> tuple[str, ...]:
    """A snapshot folder is one commit's and never changes: listed once."""
    return tuple(sorted(p.name for p in Path(local_dir).glob("*.gguf") if p.is_file()))


def _matches(name: str, tag: str) -> bool:
    stem = name[: -len(".gguf")]
    return re.search(rf"(^|[-_.]){re.escape(tag)}$", stem, re.I) is not None


def choose(resolved: ResolvedModel, tag: str | None) -> ResolvedModel:
    """The resolution with the GGUF file to serve as ``variant`` (unchanged for a repo without GGUF
    files and no tag). A tag that matches no file, or several files without one, is a 400 that
    lists the tags there are."""
    names = files(resolved.local_dir)
    if not names:
        if tag is not None:
            raise InvalidRequest(f"model '{resolved.repo_id}' has no GGUF files to choose '{tag}' from",
                                 param="model")
        return resolved
    if any(_SHARD.search(n) for n in names):
        raise InvalidRequest(f"model '{resolved.repo_id}' has GGUF files split in parts, which this server "
                             "does not load", param="model")
    wanted = tag or DEFAULT_TAG
    matching = [n for n in names if _matches(n, wanted)]
    if len(matching) == 1:
        return replace(resolved, variant=matching[0])
    if tag is None and len(names) == 1:
        return replace(resolved, variant=names[0])
    tags = ", ".join(n[: -len(".gguf")].rsplit("-", 1)[-1] for n in names)
    what = f"no GGUF file for '{tag}'" if tag else "several GGUF files"
    raise InvalidRequest(f"model '{resolved.repo_id}' has {what}; name one as '{resolved.repo_id}:TAG' "
                         f"(files end in: {tags})", param="model")


def dequantised_bytes(path: Path) -> int:
    """What the file's weights take once dequantised to float32 (the loader's default on CPU)."""
    size = path.stat().st_size
    upper = path.name.upper()
    bits = next((b for key, b in _BITS if key in upper), 4.5)
    return int(size * 32 / bits)
