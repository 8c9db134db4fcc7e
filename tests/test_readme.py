"""The README's examples run as written against a fresh ``bin/serve``, in document order.

Runs every block fenced as ```sh (with bash, ``set -euo pipefail``) or ```python (with
``manage.py shell -c`` on the served instance's database), unless the line before the
fence is ``<!-- not run -->``. Other fences (YAML, diagrams) are not commands. The only
substitutions: the README's URL http://127.0.0.1:8000 becomes the served instance's, and
``$ADMIN_PASSWORD`` / ``$TOKEN`` are set in the environment, as a reader sets them.
"""

import subprocess
import sys
from dataclasses import dataclass

from tests.support import ROOT

README = ROOT / "README.md"
README_URL = "http://127.0.0.1:8000"
NOT_RUN = "<!-- not run -->"
RUN = {"sh", "python"}


@dataclass
class Example:
    language: str
    code: str
    line: int
    skip: bool = False


def readme_examples(text: str) -> list[Example]:
    examples, block, previous = [], None, ""
    for number, line in enumerate(text.splitlines(), start=1):
        if block is None and line.startswith("```"):
            block = Example(language=line[3:].strip(), code="", line=number)
            block.skip = previous.strip() == NOT_RUN or block.language not in RUN
        elif block is not None and line.startswith("```"):
            if not block.skip:
                examples.append(block)
            block = None
        elif block is not None:
            block.code += line + "\n"
        if line.strip():
            previous = line
    assert block is None, f"README.md: the block opened at line {block.line} is not closed"
    return examples


def test_the_extraction_rule():
    text = ("```sh\necho 1\n```\n<!-- not run -->\n```sh\nbin/serve\n```\n"
            "```yaml\na: 1\n```\n```python\nprint(2)\n```\n")

    assert [(e.language, e.code, e.line) for e in readme_examples(text)] == [
        ("sh", "echo 1\n", 1), ("python", "print(2)\n", 11)]


def run_example(example: Example, *, base_url: str, env: dict) -> subprocess.CompletedProcess:
    code = example.code.replace(README_URL, base_url)
    if example.language == "sh":
        command = ["bash", "-c", "set -euo pipefail\n" + code]
    else:
        command = [sys.executable, "manage.py", "shell", "-c", code]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)


def test_readme_examples_run_against_a_fresh_serve(served):
    examples = readme_examples(README.read_text())
    languages = {e.language for e in examples}
    assert languages == RUN and len(examples) >= 8, examples  # the README still has them
    password = served.admin_password()
    served.wait_ready()
    env = {**served.env, "ADMIN_PASSWORD": password, "TOKEN": served.token(password)}

    for example in examples:
        completed = run_example(example, base_url=served.base_url, env=env)
        assert completed.returncode == 0, (
            f"README.md line {example.line} ({example.language}) failed with "
            f"{completed.returncode}:\n{example.code}\n--- stdout:\n{completed.stdout[-3000:]}"
            f"\n--- stderr:\n{completed.stderr[-3000:]}\n--- bin/serve:\n{served.log()[-6000:]}"
        )
        assert "Traceback" not in completed.stderr, completed.stderr
