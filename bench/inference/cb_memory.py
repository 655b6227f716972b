"""Resident memory of a text-generation model's continuous batching, before and after it starts.

Builds the dev Llama (devmodels.build_llama), loads it with transformers, creates the engine's CB
manager (engines/transformers_lm.py ``cb_manager``) with the default settings and starts it: the
manager allocates its KV cache and its attention mask when it starts. Prints the process's resident
memory at each step and the cache's size.

    PYTHONPATH=src:. python -m bench.inference.cb_memory
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path


def resident_mib() -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) // 1024  # type: ignore[union-attr]


def main() -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from aicommons.inference import devmodels
    from aicommons.inference.engines.transformers_lm import _PAGE_SIZE, _model_cache_blocks, cb_manager
    from aicommons.inference.settings import InferenceSettings

    folder = devmodels.build_llama(Path(tempfile.mkdtemp(prefix="cb-memory-")) / "llama")
    model = AutoModelForCausalLM.from_pretrained(str(folder), attn_implementation="sdpa").eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    settings = InferenceSettings()
    print(f"model loaded: {resident_mib()} MiB resident, {model.num_parameters():,} parameters")
    blocks = _model_cache_blocks(model, settings, "cpu")
    manager, _ = cb_manager(model, tokenizer, settings, "cpu")
    manager.start()
    time.sleep(3)  # the manager's thread allocates the cache and the mask
    print(f"batching started: {resident_mib()} MiB resident; cache {blocks} pages = {blocks * _PAGE_SIZE:,} tokens")
    manager.stop(block=True)


if __name__ == "__main__":
    main()
