"""Xet: the chunk-level storage protocol huggingface_hub uses for large-file uploads.

Pure format modules (no hub, no I/O): ``hashing`` (keyed BLAKE3 chunk hashes and their Merkle
aggregation), ``xorb`` (the compressed chunk container) and ``shard`` (a client's description of the
files it uploaded). ``tokens`` signs the short-lived CAS access tokens; ``service`` is the hub-facing
side: it stores verified xorbs and turns an uploaded shard into ordinary LFS objects.
"""
