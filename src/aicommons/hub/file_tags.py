"""What a model repo's files say about its library, task and tags, where its card does not say it.

A repo with a ``config.json`` naming its architecture gets, as on the Hub, the library
``transformers``, the task its architecture implies (``GPT2LMHeadModel`` -> ``text-generation``) and
the tags clients filter by: the library, the weight formats present (``safetensors``, ``pytorch``,
``gguf``...), the ``model_type`` (``gpt2``), the task, ``custom_code`` and ``conversational``. The
card wins wherever it says something (its ``library_name``, its ``pipeline_tag``, its tags); the files
fill only what it leaves out. A repo of GGUF files and no other library's layout is ``gguf``, as on the Hub.
Pure: the caller reads the (small) files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from aicommons.hub.cards import Card

Json = dict[str, Any]

# The architecture's suffix -> (Auto class, task), in the order they are tried. "LMHeadModel" is the
# causal LM of the older families transformers still maps to AutoModelForCausalLM (GPT2LMHeadModel,
# OpenAIGPTLMHeadModel, XLNetLMHeadModel, CTRLLMHeadModel...); both it and "MTModel" come before
# "Model", which they also end with.
ARCHITECTURE_SUFFIXES = (
    ("ForCausalLM", "AutoModelForCausalLM", "text-generation"),
    ("LMHeadModel", "AutoModelForCausalLM", "text-generation"),
    ("ForSequenceClassification", "AutoModelForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "AutoModelForTokenClassification", "token-classification"),
    ("ForQuestionAnswering", "AutoModelForQuestionAnswering", "question-answering"),
    ("ForMaskedLM", "AutoModelForMaskedLM", "fill-mask"),
    ("ForImageClassification", "AutoModelForImageClassification", "image-classification"),
    ("ForSpeechSeq2Seq", "AutoModelForSpeechSeq2Seq", "automatic-speech-recognition"),
    ("ForCTC", "AutoModelForCTC", "automatic-speech-recognition"),
    ("ForImageTextToText", "AutoModelForImageTextToText", "image-text-to-text"),
    ("ForConditionalGeneration", "AutoModelForSeq2SeqLM", "text2text-generation"),
    ("MTModel", "AutoModelForSeq2SeqLM", "translation"),  # MarianMTModel (the opus-mt models)
    ("Model", "AutoModel", "feature-extraction"),
)
# Model types whose "...ForConditionalGeneration" is not a text-to-text model.
CONDITIONAL_GENERATION = {
    "whisper": ("AutoModelForSpeechSeq2Seq", "automatic-speech-recognition"),
    "llava": ("AutoModelForImageTextToText", "image-text-to-text"),
    "idefics3": ("AutoModelForImageTextToText", "image-text-to-text"),
    "smolvlm": ("AutoModelForImageTextToText", "image-text-to-text"),
    "qwen2_vl": ("AutoModelForImageTextToText", "image-text-to-text"),
    "paligemma": ("AutoModelForImageTextToText", "image-text-to-text"),
}
# A weight file's name (prefix, suffix; in any folder) -> the tag the Hub gives the repo for it.
WEIGHT_FORMATS = (
    ("", ".safetensors", "safetensors"),
    ("pytorch_model", ".bin", "pytorch"),
    ("tf_model", ".h5", "tf"),
    ("flax_model", ".msgpack", "jax"),
    ("", ".onnx", "onnx"),
    ("", ".gguf", "gguf"),
)
CHAT_TASKS = ("text-generation", "image-text-to-text")
MODEL_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
# The files read for this (besides the card), each small and in git.
READ_FILES = ("config.json", "tokenizer_config.json")


def architecture_task(config: Json | None) -> tuple[str, str] | None:
    """(Auto class, task) that ``config.json``'s first architecture implies, or None."""
    architectures = config.get("architectures") if config else None
    if not isinstance(architectures, list) or not architectures or not isinstance(architectures[0], str):
        return None
    architecture, model_type = architectures[0], str((config or {}).get("model_type") or "")
    found = next(((auto, task) for suffix, auto, task in ARCHITECTURE_SUFFIXES if architecture.endswith(suffix)),
                 None)
    if found is not None and architecture.endswith("ForConditionalGeneration") and model_type in CONDITIONAL_GENERATION:
        return CONDITIONAL_GENERATION[model_type]
    return found


def _library(paths: set[str], config: Json | None) -> str | None:
    """The library the files are laid out for (at the repo's root, as each library saves them)."""
    if "model_index.json" in paths:
        return "diffusers"
    if "config_sentence_transformers.json" in paths or "sentence_bert_config.json" in paths:
        return "sentence-transformers"
    if "adapter_config.json" in paths:
        return "peft"
    if config is not None and (config.get("architectures") or config.get("model_type")):
        return "transformers"
    if any(p.endswith(".gguf") for p in paths):
        return "gguf"  # GGUF files and no other library's layout: the Hub's llama.cpp repos
    return None


def with_file_metadata(card: Card, paths: Iterable[str], config: Json | None, tokenizer: Json | None) -> Card:
    """``card`` with the library, task and tags the files imply added where the card is silent."""
    paths = set(paths)
    library = card.library_name or _library(paths, config)
    task = card.pipeline_tag
    if task is None and library == "transformers":
        found = architecture_task(config)
        task = found[1] if found else None
    elif task is None and library == "sentence-transformers":
        task = "sentence-similarity"
    names = {p.rsplit("/", 1)[-1] for p in paths}
    tags: list[str] = [library] if library else []
    tags += [tag for prefix, suffix, tag in WEIGHT_FORMATS
             if any(n.startswith(prefix) and n.endswith(suffix) for n in names)]
    if library == "transformers" and config is not None:
        model_type = config.get("model_type")
        if isinstance(model_type, str) and MODEL_TYPE.fullmatch(model_type):  # a name, never a stored essay
            tags.append(model_type)
        if config.get("auto_map"):
            tags.append("custom_code")
    if task:
        tags.append(task)
    chat = "chat_template.jinja" in paths or "chat_template.json" in paths \
        or bool((tokenizer or {}).get("chat_template"))
    if chat and task in CHAT_TASKS:
        tags.append("conversational")
    merged = list(dict.fromkeys(card.tags + [t for t in tags if isinstance(t, str)]))
    return replace(card, tags=merged, library_name=library, pipeline_tag=task)
