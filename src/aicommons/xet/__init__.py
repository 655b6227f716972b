"""Xet: the chunk-level storage protocol huggingface_hub uses for large files.

Pure format modules (no hub, no I/O): ``hashing`` (keyed BLAKE3 chunk hashes and their Merkle
aggregation), ``xorb`` (the compressed chunk container), ``shard`` (a client's description of the
files it uploaded), ``terms`` (planning a download: which xorb ranges rebuild a file range) and
``wire`` (the JSON of those plans). ``tokens`` signs the short-lived CAS access tokens and
``fetch_urls`` the URLs of xorb byte ranges. ``service`` is the hub-facing upload side: it stores
verified xorbs and turns an uploaded shard into ordinary LFS objects; ``reads`` the download side.
"""
