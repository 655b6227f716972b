"""Which task a model serves and which APIs that enables (pure: reads only small JSON files)."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import UnsupportedTask
from .source import ResolvedModel

GENERATION = "text-generation"
EMBEDDING = "feature-extraction"
SIMILARITY = "sentence-similarity"
CLASSIFICATION = "text-classification"
FILL_MASK = "fill-mask"
TOKEN_CLASSIFICATION = "token-classification"
ZERO_SHOT = "zero-shot-classification"
RERANK = "text-ranking"  # cross-encoders; served at /v1/rerank
SUMMARIZATION = "summarization"
TRANSLATION = "translation"
IMAGE_CLASSIFICATION = "image-classification"
IMAGE_TASKS = {IMAGE_CLASSIFICATION}
SPEECH_RECOGNITION = "automatic-speech-recognition"  # Whisper-family; also /v1/audio/transcriptions
AUDIO_TASKS = {SPEECH_RECOGNITION}
MEDIA_TASKS = IMAGE_TASKS | AUDIO_TASKS  # inputs are not text: no tokenizer on the hub's side

VISION_CHAT = "image-text-to-text"  # vision-language chat: image parts in chat messages
SEQ2SEQ_TASKS = {SUMMARIZATION, TRANSLATION}
ENCODER_TASKS = {EMBEDDING, SIMILARITY, CLASSIFICATION, FILL_MASK, TOKEN_CLASSIFICATION, ZERO_SHOT, RERANK} \
    | SEQ2SEQ_TASKS | MEDIA_TASKS
SUPPORTED_TASKS = ENCODER_TASKS | {GENERATION, VISION_CHAT}
_ALIASES = {"text2text-generation": SUMMARIZATION, "conversational": GENERATION,
            "sentiment-analysis": CLASSIFICATION, "ner": TOKEN_CLASSIFICATION}

# Tasks that a model loaded for task K can also answer (an embedding model can score similarity,
# a sequence classifier with one output can rank, an NLI classifier can classify zero-shot).
COMPATIBLE = {EMBEDDING: {EMBEDDING, SIMILARITY}, SIMILARITY: {EMBEDDING, SIMILARITY},
              CLASSIFICATION: {CLASSIFICATION, RERANK, ZERO_SHOT}, RERANK: {RERANK, CLASSIFICATION},
              SUMMARIZATION: SEQ2SEQ_TASKS, TRANSLATION: SEQ2SEQ_TASKS}


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def detect_task(model: ResolvedModel) -> str:
    """The model's primary task: the card's ``pipeline_tag`` if set, else guessed from its files."""
    if model.variant is not None:
        return GENERATION  # a GGUF file (gguf.py): llama.cpp's formats are language models
    tag = model.pipeline_tag or model.card_data.get("pipeline_tag")
    if tag in _ALIASES:
        tag = _ALIASES[tag]
    if tag in SUPPORTED_TASKS:
        return tag
    if tag is not None and tag not in _ALIASES:
        raise UnsupportedTask(f"model '{model.repo_id}' has pipeline_tag '{tag}', which this hub cannot serve "
                              f"(supported: {', '.join(sorted(SUPPORTED_TASKS))})", param="model")
    library = model.library_name or model.card_data.get("library_name")
    if library == "sentence-transformers" or (model.local_dir / "modules.json").is_file():
        return EMBEDDING
    config = _read_json(model.local_dir / "config.json")
    if config.get("model_type") == "whisper":
        return SPEECH_RECOGNITION
    if isinstance(config.get("vision_config"), dict) and any(
            a.endswith(("ForConditionalGeneration", "ForImageTextToText")) for a in config.get("architectures") or []):
        return VISION_CHAT  # LLaVA, Idefics3/SmolVLM, Qwen2-VL... (a vision tower in front of an LM)
    for arch in config.get("architectures") or []:
        # GPT-2 and its kin name their causal LM head "...LMHeadModel" (GPT2LMHeadModel, GPTJ's...)
        if arch.endswith("ForCausalLM") or (arch.endswith("LMHeadModel") and not config.get("is_encoder_decoder")):
            return GENERATION
        if arch.endswith("ForSequenceClassification"):
            return CLASSIFICATION
        if arch.endswith("ForMaskedLM"):
            return FILL_MASK
        if arch.endswith("ForTokenClassification"):
            return TOKEN_CLASSIFICATION
        if arch.endswith("ForSpeechSeq2Seq"):
            return SPEECH_RECOGNITION
        if arch.endswith("ForImageClassification"):
            return IMAGE_CLASSIFICATION
        if arch.endswith("ForConditionalGeneration") and config.get("is_encoder_decoder"):
            return SUMMARIZATION
    if config:
        return EMBEDDING  # a bare encoder (AutoModel): mean-pooled embeddings
    raise UnsupportedTask(f"model '{model.repo_id}' has no config.json and no supported pipeline_tag",
                          param="model")


def require_task(model: ResolvedModel, wanted: set[str], api: str) -> str:
    task = detect_task(model)
    if task not in wanted and not (COMPATIBLE.get(task, set()) & wanted):
        raise UnsupportedTask(f"model '{model.repo_id}' is a {task} model and cannot serve {api}", param="model")
    return task


def estimate_weight_bytes(local_dir: Path) -> int:
    """Bytes of the weight files (the largest part of a model's resident size)."""
    files = list(local_dir.glob("*.safetensors")) or list(local_dir.glob("*.bin"))
    return sum(f.stat().st_size for f in files if f.is_file())


def task_catalog(listings) -> dict[str, dict]:
    """``GET /api/tasks`` in the Hub's shape: one entry per task this hub serves, its ``models`` the
    hosted ones the caller may use (``listings``: ``ModelListing`` rows, newest first; gated ones
    without access left out). ``widgetModels`` stays empty on purpose: ``InferenceClient`` without a
    model takes ``widgetModels[0]`` and posts the call, with the caller's token, to huggingface.co's
    router whatever ``HF_ENDPOINT`` says; empty, it stops with "Task X has no recommended model",
    and nothing leaves for a third party."""
    hosted: dict[str, list[dict]] = {task: [] for task in sorted(SUPPORTED_TASKS)}
    for row in listings:
        tag = _ALIASES.get(row.pipeline_tag, row.pipeline_tag)
        if row.usable and tag in hosted:
            hosted[tag].append({"id": row.repo_id, "description": f"{row.repo_id}, hosted on this hub"})
    return {task: {"id": task, "label": task.replace("-", " ").title(), "libraries": ["transformers"],
                   "widgetModels": [], "models": models, "datasets": [], "spaces": [], "metrics": []}
            for task, models in hosted.items()}
