"""How much a scan may read and build: every scanner stops at these bounds and reports ``error``
(never a crash, never an unbounded read). A scan runs in a background job on the hub, on files
anyone can upload, so each number bounds memory or time that a hostile file could claim."""

from __future__ import annotations

from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@dataclass(frozen=True)
class ScanLimits:
    # Bytes one pickle walk may read: a raw pickle file (a legacy PyTorch checkpoint's pickles are
    # at its start, so its tensor data does not count), a decompressed .pkl.gz, one archive member.
    max_pickle_bytes: int = 512 * MiB
    # Concatenated pickles read from one stream (legacy torch files hold five).
    max_pickles_per_stream: int = 1000
    # Headers read whole into memory: a safetensors header (the reference implementation refuses
    # more than 100 MB) and a zip central directory.
    max_header_bytes: int = 100_000_000
    # JSON values in a safetensors header parsed (each becomes a Python object; ~8 per tensor).
    max_safetensors_header_values: int = 4_000_000
    # numpy writes .npy headers of a few hundred bytes (and refuses more than 10,000 by default).
    max_npy_header_bytes: int = 64 * KiB
    # Archives: members listed, bytes read out of members to inspect them (pickles, nested
    # archives, the first bytes of each member), archives inside archives.
    max_archive_members: int = 100_000
    # Archive metadata read whole into memory: tar pax/long-name headers and member names (a real
    # tar's are a few hundred bytes per member).
    max_archive_metadata_bytes: int = 64 * MiB
    max_archive_inspected_bytes: int = 2 * GiB
    max_archive_depth: int = 3
    # Zip bombs: a member (or the whole archive) that expands more than this ratio is unsafe once
    # it expands past compression_check_min_bytes (deflate's own maximum is about 1032x; Warehouse
    # refuses 50x past 64 MB).
    max_compression_ratio: int = 100
    compression_check_min_bytes: int = 16 * MiB
    # A compressed tar must be decompressed to walk to its next header: at most this many bytes.
    max_tar_expanded_bytes: int = 16 * GiB
    # GGUF: the metadata and tensor-info section (real files: a few MB, with the vocabulary).
    max_gguf_metadata_bytes: int = 256 * MiB
    max_gguf_kv_count: int = 100_000
    max_gguf_tensor_count: int = 1_000_000
    max_gguf_string_bytes: int = 64 * MiB  # one string (tokenizer.huggingface.json can be tens of MB)
    max_gguf_array_length: int = 16 * MiB
    # Chat templates are parsed (never rendered); real ones are a few KB.
    max_template_bytes: int = 1 * MiB
    # Text files searched for secrets; larger text (datasets) is not searched.
    max_text_bytes: int = 1 * MiB
    # config.json / tokenizer_config.json parsed for chat templates and auto_map (added-token
    # tables make some tokenizer configs several MB).
    max_config_bytes: int = 16 * MiB


DEFAULT_LIMITS = ScanLimits()


@dataclass(frozen=True)
class WorkerLimits:
    """What a scan worker process may use (``worker.py``): the settings' SCAN_MEMORY_MB,
    SCAN_CPU_SECONDS and SCAN_TIMEOUT_SECONDS. Here, not in worker.py, so that reading the settings
    (``config.py``) imports nothing of the worker's (it reads git objects)."""

    memory_mb: int = 1024
    cpu_seconds: int = 120
    timeout_seconds: float = 300.0
