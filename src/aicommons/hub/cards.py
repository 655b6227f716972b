"""Model and dataset cards: README.md YAML front matter → ``cardData`` and filterable tags."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml


class CardError(ValueError):
    pass


@dataclass
class Card:
    data: dict[str, Any] | None
    tags: list[str] = field(default_factory=list)
    library_name: str | None = None
    pipeline_tag: str | None = None


def split_card(text: str) -> tuple[str | None, str]:
    """(the YAML between the leading ``---`` fences or None, the markdown body after them)."""
    # Blank lines may come before the opening fence, as huggingface_hub's own parser allows.
    lines = text.lstrip("\ufeff").lstrip().splitlines()
    if not lines or lines[0].strip() != "---":
        return None, text
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1:])
    raise CardError("The YAML front matter is not closed with '---'")


def split_front_matter(text: str) -> str | None:
    """The YAML between the leading ``---`` fences, or None when the card has none."""
    return split_card(text)[0]


def parse_metadata(text: str) -> dict[str, Any] | None:
    """Parse the front matter; raise CardError with a readable reason when it is invalid."""
    block = split_front_matter(text)
    if block is None:
        return None
    try:
        data = yaml.safe_load(block)
    except yaml.YAMLError as exc:
        raise CardError(f"Invalid YAML in README.md metadata: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CardError("README.md metadata must be a YAML mapping (key: value)")
    return data


def as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v is not None and not isinstance(v, (dict, list))]
    if isinstance(value, (dict,)):
        return []
    return [str(value)]


def card_from_readme(text: str | None, repo_type: str) -> Card:
    """Build the card of a repo; an invalid front matter gives an empty card (as the Hub shows it)."""
    if text is None:
        return Card(data=None)
    try:
        data = parse_metadata(text)
    except CardError:
        return Card(data=None)
    if not data:
        return Card(data=data)
    tags = as_list(data.get("tags"))
    library, pipeline = _name(data.get("library_name")), _name(data.get("pipeline_tag"))
    if library:
        tags.append(library)
    if pipeline:
        tags.append(pipeline)
    tags += [f"license:{v}" for v in as_list(data.get("license"))]
    tags += [f"base_model:{v}" for v in as_list(data.get("base_model"))]
    tags += [f"dataset:{v}" for v in as_list(data.get("datasets"))]
    language = as_list(data.get("language"))
    tags += language
    if repo_type == "dataset":
        tags += [f"language:{v}" for v in language]
        tags += [f"task_categories:{v}" for v in as_list(data.get("task_categories"))]
    # A tag is a name, stored and indexed (at most MAX_TAG characters): a longer one is no tag.
    seen: dict[str, None] = dict.fromkeys(t for t in tags if len(t) <= MAX_TAG)
    return Card(data=data, tags=list(seen), library_name=library, pipeline_tag=pipeline)


MAX_TAG = 256
MAX_NAME = 64  # a library or task name


def _name(value: object) -> str | None:
    """A card's ``library_name`` / ``pipeline_tag``: a string of a name's length, else nothing."""
    return value if isinstance(value, str) and 0 < len(value) <= MAX_NAME else None


def validate_yaml(content: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What ``POST /api/validate-yaml`` answers: (errors, warnings)."""
    try:
        data = parse_metadata(content)
    except CardError as exc:
        return [{"message": str(exc)}], []
    warnings = []
    if not data:
        warnings.append({"message": "Empty or missing YAML metadata in the card: add a front matter with at "
                                    "least a license (see the model/dataset card documentation)"})
    errors = _model_index_errors(data["model-index"]) if data and "model-index" in data else []
    if errors:
        return errors, warnings
    if data and "license" in data and not isinstance(data["license"], (str, list)):
        warnings.append({"message": "'license' should be a string or a list of strings"})
    return [], warnings


def _model_index_errors(value: object) -> list[dict[str, Any]]:
    """``model-index`` (evaluation results) must be a list of ``{name, results: [...]}``."""
    if not isinstance(value, list) or not value:
        return [{"message": "'model-index' must be a list of models with their evaluation results"}]
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) \
                or not isinstance(item.get("results", []), list):
            return [{"message": "each 'model-index' entry needs a 'name' and a list of 'results'"}]
    return []


BASE_MODEL_RELATIONS = ("adapter", "merge", "quantized", "finetune")


def base_models(card: Card, files: Mapping[str, object], config: dict[str, Any] | None,
                has_gguf: bool) -> dict[str, Any] | None:
    """``baseModels``: the card's ``base_model`` ids and how this model derives from them (its
    ``base_model_relation``, else: several bases a merge, an ``adapter_config.json`` an adapter, a
    GGUF file or a ``quantization_config`` a quantization, otherwise a fine-tune)."""
    data = card.data or {}
    raw = data.get("base_model")
    models = [raw] if isinstance(raw, str) else [m for m in raw if isinstance(m, str)] if isinstance(raw, list) else []
    if not models:
        return None
    relation = data.get("base_model_relation")
    if relation not in BASE_MODEL_RELATIONS:
        if len(models) > 1:
            relation = "merge"
        elif "adapter_config.json" in files:
            relation = "adapter"
        elif has_gguf or (config is not None and "quantization_config" in config):
            relation = "quantized"
        else:
            relation = "finetune"
    return {"relation": relation, "models": [{"id": m} for m in models]}
