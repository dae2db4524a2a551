"""The README's Python tour runs as written (its numbers are printed, not asserted: the
figures it shows are covered by their own tests)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no Python tour"
    namespace: dict = {}
    for code in blocks:
        exec(compile(code, str(README), "exec"), namespace)    # noqa: S102 - our own README
    out = capsys.readouterr().out
    assert "Memory" in out                                    # ResNet-50 on A100, batch 1
