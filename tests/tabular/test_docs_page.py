"""docs/tabular.md: its python blocks run in order in one namespace, as a reader pastes them."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_tabular_page_runs(capsys):
    text = (ROOT / "docs" / "tabular.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    assert len(blocks) >= 3
    namespace = {"__name__": "docs_tabular"}
    for k, block in enumerate(blocks):
        exec(compile(block, f"tabular.md[block {k}]", "exec"), namespace)  # noqa: S102
    out = capsys.readouterr().out
    assert "nas-bench-graph:cora gnn val_accuracy 26206" in out
    assert "is not in the table" in out and "accepted ops: ['gcn', 'sage'" in out
