"""The README's two set-up commands and `.ci/run` must not drift apart."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text)


def test_readme_starts_with_install_and_run_and_install_and_test():
    install_run, install_test = _readme_commands()[:2]
    assert install_run.startswith("pip install") and install_run.endswith("gnntrack quickstart")
    assert install_test.startswith("pip install") and "pytest" in install_test


def test_ci_runs_the_readme_test_command_verbatim():
    install_test = _readme_commands()[1]
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert install_test in ci_lines
