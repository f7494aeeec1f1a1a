"""README.md opens with the two commands that work on a fresh machine, and .ci/run runs the second."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.S)
    return [block.strip() for block in blocks[:2]]


def test_readme_starts_with_the_main_job_and_the_test_command():
    text = (ROOT / "README.md").read_text()
    main_job, tests = readme_commands()
    assert text.index(main_job) < 200, "the two commands must open the README"
    for command in (main_job, tests):
        assert command.startswith('pip install torch==2.13.0 && pip install -e ".[all]" && ')
    assert main_job.endswith("signs verify")
    assert tests.endswith("python3 -m pytest -q")


def test_ci_installs_the_same_way_and_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    _, tests = readme_commands()
    test_command = tests.split(" && ")[-1]
    assert re.search(r'pip install .*"torch==2\.13\.0"', ci)
    assert ci.index("torch==2.13.0") < ci.index('-e ".[all]"'), "torch must be pinned before the project"
    assert f"\n{test_command}\n" in ci
