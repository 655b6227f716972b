"""Generated artefacts stay in sync with the code."""

from pathlib import Path

from aicommons.cli.main import settings_reference
from aicommons.config import SETTINGS

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_reference_is_up_to_date():
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == settings_reference(), "run: aicommons settings-doc > docs/configuration.md"


def test_every_setting_is_mentioned_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    assert "docs/configuration.md" in readme
    for setting in SETTINGS:
        assert setting.help.strip(), setting.name


def test_cli_help_does_not_import_heavy_modules():
    import subprocess
    import sys

    code = ("import sys; from aicommons.cli.main import build_parser; build_parser(); "
            "heavy = [m for m in ('torch', 'transformers', 'sqlalchemy', 'starlette', 'pygit2') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
