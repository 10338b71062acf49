"""The README's two set-up commands are the ones the project actually uses."""

import re

from mamllib.paths import ROOT


def _commands():
    readme = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", readme.split("## Set up", 1)[1].split("\n## ", 1)[0])


def test_readme_has_exactly_two_setup_commands():
    commands = _commands()
    assert len(commands) == 2, commands
    assert "jupyter lab" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert _commands()[1] in ci.splitlines()


def test_requirements_admit_the_local_torch():
    requirements = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^torch>=[\d.]+,<=2\.14\.1$", requirements, re.M)
    assert re.search(r"^torchvision>=[\d.]+,<=0\.29\.1$", requirements, re.M)


def test_readme_library_example_runs():
    readme = (ROOT / "README.md").read_text()
    (example,) = re.findall(r"```python\n(.+?)\n```", readme, re.S)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert namespace["prediction"].shape == (100, 1)
    assert namespace["support_losses"].shape == (10,)


def test_course_requirements_leave_out_the_test_tools():
    course = (ROOT / "requirements.txt").read_text()
    test = (ROOT / "requirements-test.txt").read_text().splitlines()
    for tool in ("pytest", "nbval", "playwright"):
        assert not re.search(rf"^{tool}\b", course, re.M), tool
        assert any(line.startswith(tool) for line in test), tool
    assert "-r requirements.txt" in test
    assert "requirements.txt -e ." in _commands()[0]
    assert "requirements-test.txt -e ." in _commands()[1]
