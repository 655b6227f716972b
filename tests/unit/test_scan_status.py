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

