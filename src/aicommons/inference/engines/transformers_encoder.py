"""Encoder models on CPU/GPU through transformers (pipelines or the model itself), fed by the
micro-batcher: embeddings and similarity (a sentence-transformers model's pooling, run natively
when ``st_native`` can, else through sentence-transformers; mean pooling for a bare encoder), text
classification, fill-mask and token classification (transformers pipelines), and more."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import tasks as T
from ..batcher import MicroBatcher
from ..errors import InvalidRequest
from ..runtime import forward_pool, placement
from ..source import ResolvedModel
from ..tasks import estimate_weight_bytes
from . import st_native

# Client batches larger than this are counted on the tokenizer's thread pool.
_PARALLEL_COUNT_FROM = 16
# Speech windows run through one generate() at a time at most this many (bounds the memory of a
# batch of long recordings: Whisper pads every window to 30 s).
_AUDIO_WINDOWS_PER_PASS = 8
# On CPU, batches padded to at most this many tokens run attention eagerly; longer ones use SDPA.
# Measured with all-MiniLM-L6-v2 on 2 cores: eager is ~6 % faster at 32 x 21 tokens, even at 64-128
# and ~20 % slower at 256 (SDPA's fused kernel pays off once the score matrix is large).
_EAGER_ATTENTION_UP_TO = 64

_PIPELINE_CLASSES = {T.CLASSIFICATION: "AutoModelForSequenceClassification",
                     T.FILL_MASK: "AutoModelForMaskedLM",
                     T.TOKEN_CLASSIFICATION: "AutoModelForTokenClassification"}
# Tasks run on the model directly (no pipeline): batched pairs or generate().
_MODEL_CLASSES = {T.ZERO_SHOT: "AutoModelForSequenceClassification", T.RERANK: "AutoModelForSequenceClassification",
                  T.SUMMARIZATION: "AutoModelForSeq2SeqLM", T.TRANSLATION: "AutoModelForSeq2SeqLM"}


class TransformersEncoder:
    engine_name = "transformers-encoder"
    proxies_openai = False

    def __init__(self, task: str, tokenizer, *, st_model=None, model=None, pipe=None, footprint: int,
                 device: str, settings, max_input_tokens: int, on_batch=None,
                 sentence: st_native.NativeSentenceModel | None = None):
        self.task = task
        self.tokenizer = tokenizer
        self.st_model, self.model, self.pipe = st_model, model, pipe
        # A sentence-transformers model run natively: its pooling, Dense layers, normalisation, prompts.
        self.sentence = sentence
        self._dense: list = []
        self.device = device
        self.max_input_tokens = max_input_tokens
        self._footprint = footprint
        # Set by load() for the tasks that need them: images, speech.
        self.image_processor: Any = None
        self.feature_extractor: Any = None
        self.decoder_tokenizer: Any = None
        self._counter = _private_counter(tokenizer) if tokenizer is not None else None
        self._attention = _AttentionSwitch.for_model(
            st_model[0].auto_model if st_model is not None and hasattr(st_model[0], "auto_model") else model,
            device)
        self.batcher = MicroBatcher(self._run_batch, forward_pool(), max_wait_s=settings.batch_wait_ms / 1000,
                                    max_tokens=settings.max_batch_tokens, max_items=settings.max_batch_items,
                                    on_batch=on_batch)

    @classmethod
    def load(cls, resolved: ResolvedModel, task: str, settings, on_batch=None) -> TransformersEncoder:
        import transformers
        from transformers import AutoTokenizer

        device, dtype = placement(settings)
        path = Path(resolved.local_dir)
        footprint = int(estimate_weight_bytes(path) * 1.1) or 1
        common = dict(footprint=footprint, device=device, settings=settings, on_batch=on_batch)
        if task in (T.EMBEDDING, T.SIMILARITY):
            if (path / "modules.json").is_file():
                sentence = st_native.plan(path)
                if sentence is not None:
                    return cls._load_native(task, sentence, dtype, common)
                from sentence_transformers import SentenceTransformer

                st = SentenceTransformer(str(path), device=device, local_files_only=True,
                                         model_kwargs={"dtype": dtype})
                st.eval()
                return cls(task, st.tokenizer, st_model=st, max_input_tokens=int(st.max_seq_length or 512), **common)
            model = transformers.AutoModel.from_pretrained(path, dtype=dtype).to(device).eval()
            tokenizer = AutoTokenizer.from_pretrained(path)
            return cls(task, tokenizer, model=model, max_input_tokens=_max_len(model, tokenizer), **common)
        if task in T.IMAGE_TASKS:
            from transformers import AutoImageProcessor, AutoModelForImageClassification

            model = AutoModelForImageClassification.from_pretrained(path, dtype=dtype).to(device).eval()
            engine = cls(task, None, model=model, max_input_tokens=0, **common)
            engine.image_processor = AutoImageProcessor.from_pretrained(path)
            return engine
        if task in T.AUDIO_TASKS:
            from transformers import AutoFeatureExtractor, AutoModelForSpeechSeq2Seq

            model = AutoModelForSpeechSeq2Seq.from_pretrained(path, dtype=dtype).to(device).eval()
            engine = cls(task, None, model=model, max_input_tokens=0, **common)
            engine.feature_extractor = AutoFeatureExtractor.from_pretrained(path)
            engine.decoder_tokenizer = AutoTokenizer.from_pretrained(path)
            return engine
        model_cls = getattr(transformers, _MODEL_CLASSES.get(task) or _PIPELINE_CLASSES[task])
        model = model_cls.from_pretrained(path, dtype=dtype).to(device).eval()
        tokenizer = AutoTokenizer.from_pretrained(path)
        pipe = None
        if task in _PIPELINE_CLASSES:
            pipe = transformers.pipeline(task, model=model, tokenizer=tokenizer, device=device)  # type: ignore[call-overload]
        return cls(task, tokenizer, model=model, pipe=pipe, max_input_tokens=_max_len(model, tokenizer), **common)

    @classmethod
    def _load_native(cls, task: str, sentence: st_native.NativeSentenceModel, dtype,
                     common: dict) -> TransformersEncoder:
        """A sentence-transformers model with transformers alone, as its Transformer module loads it:
        the tokenizer's length is ``max_seq_length`` if the module sets one, else the tokenizer's
        own capped at the model's positions; no KV cache."""
        import transformers
        from transformers import AutoTokenizer

        model = transformers.AutoModel.from_pretrained(sentence.model_dir, dtype=dtype)
        if hasattr(model.config, "use_cache"):
            model.config.use_cache = False
        model = model.to(common["device"]).eval()
        if sentence.max_seq_length is not None:
            tokenizer = AutoTokenizer.from_pretrained(sentence.model_dir, model_max_length=sentence.max_seq_length)
        else:
            tokenizer = AutoTokenizer.from_pretrained(sentence.model_dir)
            positions = getattr(model.config, "max_position_embeddings", None)
            if positions is not None and positions != -1:
                tokenizer.model_max_length = min(tokenizer.model_max_length, positions)
        engine = cls(task, tokenizer, model=model, max_input_tokens=int(tokenizer.model_max_length or 512),
                     sentence=sentence, **common)
        engine._dense = st_native.load_dense(sentence, model.dtype, common["device"])
        return engine

    @property
    def encoder_info(self) -> dict:
        info: dict = {"max_input_tokens": self.max_input_tokens}
        text_model = self.st_model[0].auto_model if self.st_model is not None else self.model
        embeddings = getattr(text_model, "get_input_embeddings", lambda: None)() if self.tokenizer is not None else None
        if embeddings is not None:  # bounds the token ids a request may send (/v1/embeddings)
            info["vocab_size"] = int(embeddings.num_embeddings)
        if self.sentence is not None:  # feature-extraction's prompt_name
            info["prompts"] = dict(self.sentence.prompts)
        elif self.st_model is not None:
            info["prompts"] = {str(k): str(v) for k, v in (getattr(self.st_model, "prompts", None) or {}).items()}
        extractor = getattr(self, "feature_extractor", None)
        if extractor is not None:
            info.update(audio_info(self.model, extractor))
        return info

    # ---- called from the event loop ----------------------------------------------------------
    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens of each text, special tokens included, never truncated.

        Runs on the event loop while the forward thread tokenises batches, so it must not use
        ``self.tokenizer``: a fast tokenizer's call sets padding/truncation on the shared Rust
        tokenizer, and a count made during a batch's tokenisation switched that batch's padding off
        (500s under load: "Unable to create tensor..."). The counter is a private copy.
        """
        return count_tokens(self._counter, self.tokenizer, texts)

    async def run(self, task: str, inputs: list, params: dict, cost: int) -> list:
        key = (task, json.dumps(params, sort_keys=True))
        return await self.batcher.submit(key, inputs, cost)

    # ---- called on the forward thread --------------------------------------------------------
    def _run_batch(self, key, items: list) -> list:
        import torch

        task, params_json = key
        params = json.loads(params_json)
        with torch.inference_mode():
            if task == T.EMBEDDING:
                return list(self._embed_ids(items) if params.get("token_ids") else self._embed(items))
            if task == T.CLASSIFICATION:
                kwargs = {"function_to_apply": params["function_to_apply"]} if params.get("function_to_apply") else {}
                # top_k=None asks the pipeline for every label, sorted, as the HF API answers
                out = self.pipe(items, batch_size=len(items), top_k=params.get("top_k"), **kwargs)
                return [_plain(r if isinstance(r, list) else [r]) for r in out]
            if task == T.FILL_MASK:
                kwargs = {k: params[k] for k in ("top_k", "targets") if params.get(k) is not None}
                out = self.pipe(items, batch_size=len(items), **kwargs)
                return [_plain(r) for r in _per_input(out, len(items))]
            if task == T.TOKEN_CLASSIFICATION:
                kwargs = {k: params[k] for k in ("aggregation_strategy", "ignore_labels") if params.get(k) is not None}
                out = self.pipe(items, batch_size=len(items), **kwargs)
                return [_plain(r) for r in _per_input(out, len(items))]
            if task == T.RERANK:
                return self._rerank(items)
            if task == T.ZERO_SHOT:
                return self._zero_shot(items, params)
            if task in T.SEQ2SEQ_TASKS:
                return self._seq2seq(items, params)
            if task == T.IMAGE_CLASSIFICATION:
                return self._classify_images(items, params)
            if task == T.SPEECH_RECOGNITION:
                return self._transcribe(items, params)
        raise InvalidRequest(f"task {task} is not served by this model")

    def _pair_logits(self, firsts: list[str], seconds: list[str]):
        batch = self.tokenizer(firsts, seconds, padding=True, truncation="only_second",
                               max_length=self.max_input_tokens, return_tensors="pt").to(self.device)
        self._attention.choose(batch["input_ids"].shape[-1])
        return self.model(**batch).logits.float()

    def _rerank(self, pairs: list) -> list[float]:
        """Cross-encoder relevance in [0, 1]: the sigmoid of a one-logit model (as TEI and
        sentence-transformers' CrossEncoder answer), else the last class's probability."""
        import torch

        logits = self._pair_logits([q for q, _ in pairs], [d for _, d in pairs])
        scores = torch.sigmoid(logits[:, 0]) if logits.shape[-1] == 1 else torch.softmax(logits, -1)[:, -1]
        return scores.tolist()

    def _zero_shot(self, texts: list[str], params: dict) -> list[list[dict]]:
        """NLI zero-shot classification, as transformers' pipeline does it: each label becomes a
        hypothesis; its score is the entailment probability (against contradiction for
        ``multi_label``, else softmaxed across the labels)."""
        import torch

        labels, template = params["candidate_labels"], params["hypothesis_template"]
        label2id = {k.lower(): v for k, v in (self.model.config.label2id or {}).items()}
        entail = next((v for k, v in label2id.items() if k.startswith("entail")), self.model.config.num_labels - 1)
        contra = next((v for k, v in label2id.items() if k.startswith("contra")), 0)
        firsts = [t for t in texts for _ in labels]
        logits = self._pair_logits(firsts, [template.format(label) for _ in texts for label in labels])
        logits = logits.view(len(texts), len(labels), -1)
        if params["multi_label"] or len(labels) == 1:
            scores = torch.softmax(logits[..., [contra, entail]], -1)[..., 1]
        else:
            scores = torch.softmax(logits[..., entail], -1)
        out = []
        for row in scores.tolist():
            ranked = sorted(zip(labels, row), key=lambda x: -x[1])
            out.append([{"label": label, "score": score} for label, score in ranked])
        return out

    def _classify_images(self, images: list, params: dict) -> list[list[dict]]:
        """images: decoded RGB PIL images (the route decodes and checks them)."""
        import torch

        batch = self.image_processor(images=images, return_tensors="pt").to(self.device)
        logits = self.model(**batch).logits.float()
        fn = params.get("function_to_apply") or "softmax"  # as transformers' pipeline: softmax unless asked
        probs = torch.softmax(logits, -1) if fn == "softmax" else torch.sigmoid(logits) if fn == "sigmoid" else logits
        labels = self.model.config.id2label
        top = min(params.get("top_k") or 5, probs.shape[-1])
        values, ids = torch.topk(probs, top, dim=-1)
        return [[{"label": labels[i], "score": v} for v, i in zip(vs, js)]
                for vs, js in zip(values.tolist(), ids.tolist())]

    def _transcribe(self, windows: list, params: dict) -> list[str]:
        """windows: mono float32 arrays at the feature extractor's rate, each at most one window
        (30 s for Whisper; the route cuts longer audio). Greedy, as the OpenAI API's default."""
        out: list[str] = []
        kwargs = {"max_new_tokens": params["max_new_tokens"], "do_sample": False, "num_beams": 1}
        if params.get("language"):
            kwargs.update(language=params["language"], task="transcribe")
        dtype = next(self.model.parameters()).dtype
        for start in range(0, len(windows), _AUDIO_WINDOWS_PER_PASS):
            part = windows[start:start + _AUDIO_WINDOWS_PER_PASS]
            features = self.feature_extractor(part, sampling_rate=self.feature_extractor.sampling_rate,
                                              return_tensors="pt", return_attention_mask=True)
            ids = self.model.generate(features["input_features"].to(self.device, dtype),
                                      attention_mask=features["attention_mask"].to(self.device), **kwargs)
            out.extend(text.strip() for text in self.decoder_tokenizer.batch_decode(ids, skip_special_tokens=True))
        return out

    def _seq2seq(self, texts: list[str], params: dict) -> list[str]:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_input_tokens,
                               return_tensors="pt").to(self.device)
        out = self.model.generate(**batch, max_new_tokens=params["max_new_tokens"], do_sample=False,
                                  num_beams=1)
        return self.tokenizer.batch_decode(out, skip_special_tokens=True)

    def _embed(self, texts: list[str]):
        if self.st_model is not None:
            prepare = getattr(self.st_model, "preprocess", None) or self.st_model.tokenize  # renamed in ST 6
            features = prepare(texts)
            self._attention.choose(features["input_ids"].shape[-1])
            features = {k: (v.to(self.device) if hasattr(v, "to") else v) for k, v in features.items()}
            return self.st_model(features)["sentence_embedding"].float().cpu().numpy()
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_input_tokens,
                               return_tensors="pt").to(self.device)
        self._attention.choose(batch["input_ids"].shape[-1])
        return self._pool(self.model(**batch).last_hidden_state, batch["attention_mask"])

    def _embed_ids(self, inputs: list[list[int]]):
        """Embeddings of token id sequences, used as given (the route checked their range and
        length): padded into the features the text path's tokenizer would have produced."""
        import torch

        width = max(len(ids) for ids in inputs)
        pad = self.tokenizer.pad_token_id or 0
        input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids in inputs])
        mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in inputs])
        features = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in getattr(self.tokenizer, "model_input_names", ()):
            features["token_type_ids"] = torch.zeros_like(input_ids)
        features = {k: v.to(self.device) for k, v in features.items()}
        self._attention.choose(width)
        if self.st_model is not None:
            return self.st_model(features)["sentence_embedding"].float().cpu().numpy()
        return self._pool(self.model(**features).last_hidden_state, features["attention_mask"])

    def _pool(self, hidden, attention_mask):
        if self.sentence is not None:
            return st_native.sentence_embeddings(hidden, attention_mask, self.sentence,
                                                 self._dense).float().cpu().numpy()
        return _mean_pool(hidden, attention_mask)

    def footprint_bytes(self) -> int:
        return self._footprint

    def detach(self) -> None:
        self.batcher.close()  # on the event loop: cancels the batching task and waiting requests

    def close(self) -> None:
        self.st_model = self.model = self.pipe = None
        self._dense = []


def _mean_pool(hidden, attention_mask):
    """A bare encoder's sentence embedding: the mean of its unpadded token states."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return ((hidden * mask).sum(1) / torch.clamp(mask.sum(1), min=1e-9)).float().cpu().numpy()


def audio_info(model, extractor) -> dict:
    """What the hub's side needs to cut and check audio for a speech model."""
    config = model.config
    languages = sorted(k.strip("<|>") for k in (getattr(model.generation_config, "lang_to_id", None) or {}))
    return {"sampling_rate": int(extractor.sampling_rate),
            "window_seconds": float(getattr(extractor, "chunk_length", 30) or 30),
            # Whisper refuses a decoder prompt (start, language, task, no-timestamps) plus new
            # tokens beyond its positions.
            "max_new_tokens": max(1, int(getattr(config, "max_target_positions", 448) or 448) - 4),
            "languages": languages}


class _AttentionSwitch:
    """Picks the attention kernel per batch from its padded length (see ``_EAGER_ATTENTION_UP_TO``).

    Only for a transformers model on CPU that loaded with SDPA; anything else is left as loaded.
    Called on the forward thread only, the one thread that runs the model.
    """

    def __init__(self, model):
        self._model = model
        self._current = "sdpa"

    @classmethod
    def for_model(cls, model, device: str) -> _AttentionSwitch | _KeepAttention:
        config = getattr(model, "config", None)
        if device != "cpu" or getattr(config, "_attn_implementation", None) != "sdpa" \
                or not hasattr(model, "set_attn_implementation"):
            return _KeepAttention()
        return cls(model)

    def choose(self, padded_length: int) -> None:
        wanted = "eager" if padded_length <= _EAGER_ATTENTION_UP_TO else "sdpa"
        if wanted != self._current:  # ~0.1 ms, so only on a change
            self._model.set_attn_implementation(wanted)
            self._current = wanted


class _KeepAttention:
    def choose(self, padded_length: int) -> None:
        pass


def count_tokens(counter, tokenizer, texts: list[str]) -> list[int]:
    """Tokens of each text with a private counter (``_private_counter``), else the tokenizer."""
    if counter is None:
        if tokenizer is None:
            raise InvalidRequest("this model takes no text")
        return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=True)["input_ids"]]
    if len(texts) > _PARALLEL_COUNT_FROM:
        return [len(e.ids) for e in counter.encode_batch(list(texts), add_special_tokens=True)]
    # One by one: encode_batch hands even one text to the Rust thread pool, whose threads then
    # fight the forward pass's for the two cores (0.4 ms a request under load, not 40 us).
    return [len(counter.encode(text, add_special_tokens=True).ids) for text in texts]


def _private_counter(tokenizer):
    """A copy of a fast tokenizer's Rust tokenizer, with no padding or truncation, for counting;
    None for a slow (pure Python) tokenizer, which keeps no such shared state."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    from tokenizers import Tokenizer

    counter = Tokenizer.from_str(backend.to_str())
    counter.no_padding()
    counter.no_truncation()
    return counter


def _max_len(model, tokenizer) -> int:
    limit = getattr(model.config, "max_position_embeddings", None) or 512
    tok_limit = getattr(tokenizer, "model_max_length", None)
    if tok_limit and tok_limit < 1_000_000:
        limit = min(limit, tok_limit)
    return int(limit)


def _per_input(out, n: int) -> list:
    """Pipelines unwrap a one-item batch inconsistently (fill-mask does, NER does not)."""
    if n == 1 and (not out or isinstance(out[0], dict)):
        return [out]
    return out


def _plain(value):
    """numpy scalars -> Python numbers, so results are JSON-serialisable."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value
