"""What a model repo's files say about the model, in the Hub's shapes: ``safetensors`` (parameters per
dtype from the safetensors headers), ``gguf`` (architecture, context length, parameters and chat
template from the first GGUF file's header), ``config`` (``config.json``'s architectures and model
type, with the tokenizer's special tokens and chat template), ``transformersInfo`` (the Auto class
and task the architecture implies), and ``baseModels`` (the card's ``base_model``, with its relation).

Only headers are read (a few KiB per file, bounded), once per commit: what a commit holds never
changes, so the answer is remembered by (repo folder, commit id) and needs no invalidation. The
repo page and ``model_info`` / ``list_models(expand=...)`` read the same answer.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import pygit2

from aicommons.hub import content
from aicommons.hub.cards import Card, base_models
from aicommons.hub.file_tags import architecture_task
from aicommons.hub.objects import ObjectReader
from aicommons.hub.repos import WeightedLru
from aicommons.scanning.gguf import GgufHeaderError, read_gguf_header
from aicommons.scanning.limits import ScanLimits
from aicommons.scanning.safetensors_header import parameters_by_dtype

Json = dict[str, Any]
MAX_SAFETENSORS_FILES = 512
MAX_CONFIG_BYTES = 1 << 20

TOKENIZER_FIELDS = ("bos_token", "eos_token", "pad_token", "unk_token", "chat_template")


@dataclass(frozen=True)
class ModelMetadata:
    safetensors: Json | None
    gguf: Json | None
    config: Json | None
    transformers_info: Json | None
    base_models: Json | None

    def fields(self) -> Json:
        """The Hub's keys, for the ones this model has."""
        named = {"safetensors": self.safetensors, "gguf": self.gguf, "config": self.config,
                 "transformersInfo": self.transformers_info, "baseModels": self.base_models}
        return {k: v for k, v in named.items() if v is not None}


class ModelMetadataReader:
    def __init__(self, objects: ObjectReader, limits: ScanLimits | None = None, capacity: int = 2048) -> None:
        self.objects = objects
        self.limits = limits or ScanLimits()
        self._known = WeightedLru(capacity)

    def of(self, storage_key: str, git_repo: pygit2.Repository, commit_id: str, siblings: list[list[Any]],
           card: Card) -> ModelMetadata:
        """The metadata of the commit whose files are ``siblings`` (``RepoHead`` rows)."""
        key = (storage_key, commit_id)
        known: ModelMetadata | None = self._known.get(key)
        if known is None:
            known = self._read(git_repo, siblings, card)
            self._known.put(key, known)
        return known

    def _read(self, git_repo: pygit2.Repository, siblings: list[list[Any]], card: Card) -> ModelMetadata:
        files = {str(row[0]): row for row in siblings}

        def opener(path: str) -> Callable[[], BinaryIO]:
            row = files[path]
            if row[3] is not None:
                return lambda: self.objects.open(str(row[3]))
            return lambda: io.BytesIO(content.read_blob(git_repo, str(row[2])))

        config = _json_file(files, "config.json", opener)
        tokenizer = _json_file(files, "tokenizer_config.json", opener)
        safetensors = self._safetensors([p for p in files if p.endswith(".safetensors")], files, opener)
        ggufs = sorted(p for p in files if p.endswith(".gguf"))
        gguf = self._gguf(ggufs[0], int(files[ggufs[0]][1]), opener) if ggufs else None
        return ModelMetadata(safetensors, gguf, _config(config, tokenizer), _transformers_info(config, files, card),
                             base_models(card, files, config, bool(ggufs)))

    def _safetensors(self, paths: list[str], files: dict[str, list[Any]],
                     opener: Callable[[str], Callable[[], BinaryIO]]) -> Json | None:
        """Parameters per dtype over every safetensors file of the commit (shards included), each
        header validated as the scanner validates it; nothing if one is not a valid file."""
        if not paths or len(paths) > MAX_SAFETENSORS_FILES:
            return None
        parameters: dict[str, int] = {}
        for path in sorted(paths):
            try:
                with opener(path)() as stream:
                    counts = parameters_by_dtype(stream, int(files[path][1]), self.limits)
            except (OSError, ValueError):
                return None
            for dtype, count in counts.items():
                parameters[dtype] = parameters.get(dtype, 0) + count
        return {"parameters": parameters, "total": sum(parameters.values())}

    def _gguf(self, path: str, size: int, opener: Callable[[str], Callable[[], BinaryIO]]) -> Json | None:
        try:
            with opener(path)() as stream:
                header = read_gguf_header(stream, size, self.limits)
        except (GgufHeaderError, OSError, ValueError):
            return None
        out: Json = {"total": header.total_elements}
        if header.architecture:
            out["architecture"] = header.architecture
            context = header.numbers.get(f"{header.architecture}.context_length")
            if context is not None:
                out["context_length"] = context
        template = dict(header.templates).get("tokenizer.chat_template")
        if template is not None:
            out["chat_template"] = template
        return out


def _json_file(files: dict[str, list[Any]], path: str, opener: Callable[[str], Callable[[], BinaryIO]]) -> Json | None:
    if path not in files or int(files[path][1]) > MAX_CONFIG_BYTES:
        return None
    try:
        with opener(path)() as stream:
            value = json.loads(stream.read(MAX_CONFIG_BYTES))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _config(config: Json | None, tokenizer: Json | None) -> Json | None:
    out: Json = {}
    if config is not None:
        for key in ("architectures", "model_type", "quantization_config"):
            if key in config:
                out[key] = config[key]
    if tokenizer is not None:
        kept = {k: _token_text(tokenizer[k]) for k in TOKENIZER_FIELDS if k in tokenizer}
        if kept:
            out["tokenizer_config"] = kept
    return out or None


def _token_text(value: Any) -> Any:
    """A special token as text (tokenizer configs also write them as ``{"content": ...}``)."""
    return value.get("content") if isinstance(value, dict) and "content" in value else value


def _transformers_info(config: Json | None, files: dict[str, list[Any]], card: Card) -> Json | None:
    found = architecture_task(config)
    if found is None:
        return None
    auto, task = found
    has_tokenizer = "tokenizer.json" in files or "tokenizer_config.json" in files
    has_image_processor = "preprocessor_config.json" in files or "processor_config.json" in files
    processor = "AutoProcessor" if has_tokenizer and has_image_processor else \
        "AutoTokenizer" if has_tokenizer else "AutoImageProcessor" if has_image_processor else None
    out: Json = {"auto_model": auto, "pipeline_tag": card.pipeline_tag or task}
    if processor:
        out["processor"] = processor
    return out
