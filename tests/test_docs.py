"""The README's CLI reference is generated from the commands' --help: it must match them."""

from tools import cli_reference


def test_readme_cli_reference_matches_the_commands():
    readme = cli_reference.README.read_text(encoding="utf-8")
    assert cli_reference.START in readme and cli_reference.END in readme
    assert cli_reference.replaced(readme) == readme, "run `make docs` to regenerate the CLI reference in README.md"
