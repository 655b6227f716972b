"""How stored scan results read in the Hub's ``securityFileStatus`` shape."""

from aicommons.hub.scans import security_file_status


def test_a_file_not_scanned_yet_is_queued():
    status = security_file_status(None)
    assert status["status"] == "queued" and status["avScan"] is None and status["pickleImportScan"] is None


def test_pickle_findings_become_the_hubs_pickle_import_scan():
    result = {"status": "unsafe", "scanner": "pickle", "findings": [
        {"kind": "pickle-import", "severity": "unsafe", "message": "imports posix.system",
         "detail": {"module": "posix", "name": "system"}}]}
    status = security_file_status(result)
    assert status["pickleImportScan"] == {"highestSafetyLevel": "dangerous",
                                          "imports": [{"module": "posix", "name": "system", "safety": "unsafe"}]}
    clean = security_file_status({"status": "safe", "scanner": "pickle", "findings": []})
    assert clean["pickleImportScan"] == {"highestSafetyLevel": "innocuous", "imports": []}
    text = security_file_status({"status": "suspicious", "scanner": "text", "findings": [
        {"kind": "secret", "severity": "suspicious", "message": "line 1: what looks like a token"}]})
    assert text["pickleImportScan"] is None and text["findings"][0]["kind"] == "secret"


def test_load_verdict_refuses_unsafe_unscanned_pickles_and_unclear_pickles_only():
    from aicommons.hub.content import Entry
    from aicommons.hub.scans import load_verdict, scan_key

    files = {name: Entry("file", name, f"{i:040x}", 10) for i, name in enumerate(
        ["evil.pkl", "odd.bin", "broken.pt", "new.ckpt", "README.md", "model.safetensors", "config.json",
         "tokenizer.json"])}
    results = {"evil.pkl": ("unsafe", "pickle"), "odd.bin": ("suspicious", "pickle"), "broken.pt": ("error", "zip"),
               "README.md": ("suspicious", "text"), "model.safetensors": ("error", "safetensors"),
               "config.json": ("safe", "config")}
    stored = {scan_key(files[n]): {"status": st, "scanner": sc, "findings": []} for n, (st, sc) in results.items()}
    verdict = load_verdict(list(files.values()), stored)
    assert not verdict.ok
    assert {f["path"]: f["status"] for f in verdict.refused} == {
        "evil.pkl": "unsafe", "odd.bin": "suspicious", "broken.pt": "error", "new.ckpt": "queued"}
    assert "evil.pkl (scanned unsafe)" in verdict.message()
    clean = [files["README.md"], files["model.safetensors"], files["config.json"], files["tokenizer.json"]]
    assert load_verdict(clean, stored).ok
