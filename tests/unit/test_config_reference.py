"""The README's configuration reference is generated from Settings and must stay in step."""

from __future__ import annotations

from pathlib import Path

from config.reference import END, START, main, replace_block, table
from config.settings import Settings, env_name

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_configuration_reference_is_up_to_date():
    readme = README.read_text()
    assert replace_block(readme, table()) == readme, (
        "stale README table: run `python -m config.reference --write README.md`"
    )


def test_every_setting_has_a_row_with_its_variable_and_a_description():
    generated = table()
    for field, info in Settings.model_fields.items():
        assert f"| `{env_name(field)}` |" in generated
        assert info.description, f"Settings.{field} needs a description="


def test_check_fails_on_a_stale_file_and_write_fixes_it(tmp_path, capsys):
    stale = tmp_path / "README.md"
    stale.write_text(f"# x\n{START}\n| old | table |\n{END}\nafter\n")
    assert main(["--check", str(stale)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main(["--write", str(stale)]) == 0
    assert main(["--check", str(stale)]) == 0
    assert stale.read_text().endswith(f"{END}\nafter\n")


def test_a_file_without_markers_is_a_clear_error(tmp_path, capsys):
    plain = tmp_path / "README.md"
    plain.write_text("# no markers\n")
    assert main(["--check", str(plain)]) == 2
    assert "markers not found" in capsys.readouterr().err
