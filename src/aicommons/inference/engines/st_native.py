"""Sentence-transformers models without sentence-transformers: reads a model folder's
``modules.json`` and, when it lists only a plain Transformer, a Pooling, optionally Dense layers
and a Normalize, with options this module reproduces exactly, says how to run it with transformers
and torch alone.

Importing sentence-transformers costs a worker ~3.4 CPU-seconds once torch and transformers are in
(about 1.5 s of which a first load saves: docs/benchmarks.md, ``cold_load --embedding-first``); the
forward pass is transformers' either way. Anything else (custom modules, Dense layers with a residual
or another activation, lower-casing, adapters, encoder-decoder backbones, processing options, ...) is
``None``: the engine falls back to ``SentenceTransformer``. The pooling below computes what
sentence-transformers 6's pooling modes compute on a padded batch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# The class names modules.json uses for each module: the legacy aliases (ST <= 5) and ST 6's paths.
_TRANSFORMER = {"sentence_transformers.models.Transformer", "sentence_transformers.base.modules.Transformer",
                "sentence_transformers.base.modules.transformer.Transformer"}
_POOLING = {"sentence_transformers.models.Pooling", "sentence_transformers.sentence_transformer.modules.Pooling",
            "sentence_transformers.sentence_transformer.modules.pooling.Pooling"}
_DENSE = {"sentence_transformers.models.Dense", "sentence_transformers.base.modules.Dense",
          "sentence_transformers.base.modules.dense.Dense"}
# Dense activations by the name its config saves (``fullname`` of the module); absent means Tanh.
_ACTIVATIONS = {"torch.nn.modules.activation.Tanh": "tanh", "torch.nn.Tanh": "tanh",
                "torch.nn.modules.linear.Identity": "identity", "torch.nn.Identity": "identity"}
_NORMALIZE = {"sentence_transformers.models.Normalize", "sentence_transformers.base.modules.Normalize",
              "sentence_transformers.base.modules.normalize.Normalize"}

# sentence_bert_config.json keys and the values under which the Transformer module is a plain
# AutoModel + AutoTokenizer whose last_hidden_state feeds the pooling.
_PLAIN_TRANSFORMER: dict[str, tuple] = {
    "do_lower_case": (False, None),
    "transformer_task": ("feature-extraction",),
    "modality_config": ({"text": {"method": "forward", "method_output_name": "last_hidden_state"}},),
    "module_output_name": ("token_embeddings",),
    "unpad_inputs": (None, False),
    "query_length": (None,), "document_length": (None,), "query_expansion": (None,),
    "tokenizer_name_or_path": (None,),
    **{k: ({}, None) for k in ("model_args", "model_kwargs", "tokenizer_args", "processor_kwargs",
                              "config_args", "config_kwargs", "processing_kwargs")},
}
# The older names sentence-transformers still reads when sentence_bert_config.json is absent.
_TRANSFORMER_CONFIGS = ("sentence_bert_config.json", "sentence_roberta_config.json",
                        "sentence_distilbert_config.json", "sentence_camembert_config.json",
                        "sentence_albert_config.json", "sentence_xlm-roberta_config.json",
                        "sentence_xlnet_config.json")
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
# Pooling's legacy boolean keys, in the order sentence-transformers concatenates them.
_LEGACY_POOLING = {"pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max",
                   "pooling_mode_mean_tokens": "mean", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
                   "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken"}
_POOLING_KEYS = {"embedding_dimension", "word_embedding_dimension", "pooling_mode", "include_prompt",
                 *_LEGACY_POOLING}


class _Unsupported(Exception):
    pass


@dataclass(frozen=True)
class DenseLayer:
    """A Dense module after the pooling: ``activation(linear(x))``."""

    folder: Path
    in_features: int
    out_features: int
    bias: bool
    activation: str  # "tanh" or "identity"


@dataclass(frozen=True)
class NativeSentenceModel:
    """How to run a sentence-transformers folder with transformers alone."""

    model_dir: Path  # the Transformer module's folder: config, weights and tokenizer
    max_seq_length: int | None  # sentence_bert_config.json's, else the tokenizer's (capped as ST does)
    pooling: tuple[str, ...]
    normalize: bool
    prompts: dict[str, str] = field(default_factory=dict)
    dense: tuple[DenseLayer, ...] = ()


def plan(path: Path) -> NativeSentenceModel | None:
    """The native plan for a sentence-transformers folder, or None (with the reason logged) when
    some module or option is one this module does not reproduce exactly."""
    try:
        return _plan(Path(path))
    except _Unsupported as exc:
        log.warning("%s loads through sentence-transformers (not natively): %s", path, exc)
        return None


def _plan(path: Path) -> NativeSentenceModel:
    settings = _json(path / "config_sentence_transformers.json") or {}
    if settings.get("model_type", "SentenceTransformer") != "SentenceTransformer":
        raise _Unsupported(f"model_type {settings.get('model_type')!r}")
    modules = _json(path / "modules.json")
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise _Unsupported("modules.json is not a list of modules")
    kinds = [m.get("type") for m in modules]
    if len({str(m.get("name")) for m in modules}) != len(modules):  # sentence-transformers keeps one of each name
        raise _Unsupported("modules.json names a module twice")
    normalize = bool(kinds) and kinds[-1] in _NORMALIZE
    middle = kinds[2:len(kinds) - normalize]
    if len(kinds) < 2 or kinds[0] not in _TRANSFORMER or kinds[1] not in _POOLING \
            or any(k not in _DENSE for k in middle):
        raise _Unsupported(f"modules {kinds}")
    folders = [_subfolder(path, m.get("path")) for m in modules]
    max_seq_length = _transformer(folders[0])
    pooling = _pooling(folders[1])
    dense = tuple(_dense(folder) for folder in folders[2:2 + len(middle)])
    if normalize:
        _normalize(folders[-1])
    prompts = settings.get("prompts") or {}
    if not isinstance(prompts, dict) or not all(isinstance(v, (str, type(None))) for v in prompts.values()):
        raise _Unsupported("prompts is not an object of strings")
    # As SentenceTransformer: "query" and "document" always exist, empty unless the model names them.
    merged = {"query": "", "document": "", **{str(k): v or "" for k, v in prompts.items()}}
    return NativeSentenceModel(folders[0], max_seq_length, pooling, normalize, merged, dense)


def _transformer(folder: Path) -> int | None:
    config: Any = next((c for c in (_json(folder / name) for name in _TRANSFORMER_CONFIGS) if c is not None), {})
    if not isinstance(config, dict):
        raise _Unsupported("the Transformer module's config is not an object")
    for key, value in config.items():
        if key == "max_seq_length":
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise _Unsupported(f"max_seq_length {value!r}")
        elif key not in _PLAIN_TRANSFORMER or value not in _PLAIN_TRANSFORMER[key]:
            raise _Unsupported(f"Transformer option {key}={value!r}")
    model_config = _json(folder / "config.json")
    if not isinstance(model_config, dict):
        raise _Unsupported("no config.json")
    if model_config.get("is_encoder_decoder") or model_config.get("auto_map"):
        raise _Unsupported("an encoder-decoder or remote-code backbone")
    if (folder / "adapter_config.json").exists():
        raise _Unsupported("a PEFT adapter")
    return config.get("max_seq_length")


def _pooling(folder: Path) -> tuple[str, ...]:
    config = _json(folder / "config.json")
    if not isinstance(config, dict) or set(config) - _POOLING_KEYS:
        raise _Unsupported(f"Pooling config {config!r}")
    if "pooling_mode" in config:
        mode = config["pooling_mode"]
        modes = (mode,) if isinstance(mode, str) else tuple(mode) if isinstance(mode, list) else ()
    else:
        modes = tuple(m for k, m in _LEGACY_POOLING.items() if config.get(k)) or ("mean",)
    if not modes or any(m not in POOLING_MODES for m in modes):
        raise _Unsupported(f"pooling mode {config.get('pooling_mode')!r}")
    # include_prompt=False only acts on a prompt sentence-transformers tokenises apart; the engine
    # prepends prompts to the text (as it did through SentenceTransformer), so it changes nothing.
    return modes


def _dense(folder: Path) -> DenseLayer:
    config = _json(folder / "config.json")
    if not isinstance(config, dict) or set(config) - {"in_features", "out_features", "bias", "activation_function",
                                                      "module_input_name", "module_output_name", "use_residual"}:
        raise _Unsupported(f"Dense config {config!r}")
    sizes: tuple[Any, Any] = (config.get("in_features"), config.get("out_features"))
    activation = _ACTIVATIONS.get(config.get("activation_function", "torch.nn.modules.activation.Tanh"))
    if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in sizes) or activation is None \
            or config.get("bias", True) not in (True, False) or config.get("use_residual", False) is not False \
            or config.get("module_input_name", "sentence_embedding") != "sentence_embedding" \
            or config.get("module_output_name") not in (None, "sentence_embedding") \
            or not any((folder / name).is_file() for name in ("model.safetensors", "pytorch_model.bin")):
        raise _Unsupported(f"Dense config {config!r}")
    return DenseLayer(folder, int(sizes[0]), int(sizes[1]), bool(config.get("bias", True)), activation)


def load_dense(model: NativeSentenceModel, dtype, device: str) -> list:
    """The Dense layers as torch modules, in the backbone's dtype and on its device (as
    SentenceTransformer moves the modules after its first)."""
    import torch

    layers = []
    for dense in model.dense:
        weights_file = dense.folder / "model.safetensors"
        if weights_file.is_file():
            from safetensors.torch import load_file

            weights = load_file(str(weights_file))
        else:
            weights = torch.load(dense.folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
        linear = torch.nn.Linear(dense.in_features, dense.out_features, bias=dense.bias)
        linear.load_state_dict({k.removeprefix("linear."): v for k, v in weights.items()}, strict=True)
        activation = torch.nn.Tanh() if dense.activation == "tanh" else torch.nn.Identity()
        layers.append(torch.nn.Sequential(linear, activation).to(device=device, dtype=dtype).eval())
    return layers


def _normalize(folder: Path) -> None:
    config = _json(folder / "config.json") or {}
    if not isinstance(config, dict) or config.get("module_input_name", "sentence_embedding") != "sentence_embedding" \
            or config.get("module_output_name") not in (None, "sentence_embedding"):
        raise _Unsupported(f"Normalize config {config!r}")


def _subfolder(root: Path, sub: Any) -> Path:
    if not isinstance(sub, str) or Path(sub).is_absolute() or ".." in Path(sub).parts:
        raise _Unsupported(f"module path {sub!r}")
    return root / sub if sub else root


def _json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _Unsupported(f"{path.name}: {exc}") from exc


def sentence_embeddings(token_embeddings, attention_mask, model: NativeSentenceModel, dense: Sequence = ()):
    """The pooled embeddings through the Dense layers (``load_dense``), L2-normalised if the model
    says so, as sentence-transformers' modules compute them for right- or left-padded batches."""
    import torch
    import torch.nn.functional as F

    pooled = torch.cat(_pool(token_embeddings, attention_mask, model.pooling), dim=-1)
    for layer in dense:
        pooled = layer(pooled)
    return F.normalize(pooled, p=2, dim=-1) if model.normalize else pooled


def _pool(token_embeddings, attention_mask, modes: tuple[str, ...]) -> list:
    import torch

    accumulate = torch.float32 if token_embeddings.dtype in (torch.float16, torch.bfloat16) else token_embeddings.dtype
    out = []
    for mode in modes:
        if mode == "cls":  # the first unpadded token
            first = attention_mask.to(torch.int).argmax(dim=1)
            index = first.unsqueeze(-1).unsqueeze(1).expand(-1, 1, token_embeddings.shape[-1])
            out.append(torch.gather(token_embeddings, 1, index).squeeze(1))
        elif mode == "max":
            mask = attention_mask.unsqueeze(-1).expand_as(token_embeddings).to(token_embeddings.dtype)
            out.append(token_embeddings.masked_fill(mask == 0, float("-inf")).max(dim=1).values)
        elif mode in ("mean", "mean_sqrt_len_tokens"):
            mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
            total = (token_embeddings * mask).sum(dim=1, dtype=accumulate)
            count = torch.clamp(mask.sum(dim=1, dtype=accumulate), min=1e-9)
            out.append((total / (count if mode == "mean" else torch.sqrt(count))).to(token_embeddings.dtype))
        elif mode == "weightedmean":  # weights 1, 2, ... from the first unpadded token
            mask = attention_mask.unsqueeze(-1).to(accumulate)
            weights = torch.arange(1, token_embeddings.shape[1] + 1, device=token_embeddings.device,
                                   dtype=accumulate).view(1, -1, 1)
            weights = weights - attention_mask.to(torch.int32).argmax(dim=1).view(-1, 1, 1)
            weighted = mask * weights
            total = (token_embeddings * weighted).sum(dim=1)
            out.append((total / torch.clamp(weighted.sum(dim=1), min=1e-9)).to(token_embeddings.dtype))
        else:  # lasttoken: the last unpadded token
            length = token_embeddings.shape[1]
            values, indices = attention_mask.flip(1).max(1)
            indices = torch.where(values == 0, length - 1, indices)
            index = (length - indices - 1).unsqueeze(-1).unsqueeze(1).expand(-1, 1, token_embeddings.shape[-1])
            mask = attention_mask.unsqueeze(-1).expand_as(token_embeddings).to(token_embeddings.dtype)
            out.append(torch.gather(token_embeddings * mask, 1, index).squeeze(dim=1))
    return out
