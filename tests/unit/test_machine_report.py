"""The report a browser crash attaches to its failure (tests/conftest.py) reads this machine."""

from tests.conftest import machine_report


def test_the_report_names_memory_and_the_largest_processes():
    report = machine_report()
    assert "MemAvailable:" in report and "loadavg:" in report
    section = report.split("--- largest processes", 1)[1].splitlines()[1:]
    assert section and all(line.split()[0].isdigit() for line in section)
