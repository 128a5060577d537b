"""The example of docs/search.md, "Searches at the channel and neuron levels", runs as
written."""

import pathlib
import re

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "search.md"


def test_unit_level_search_example_runs(capsys):
    text = DOC.read_text()
    section = text.split("## Searches at the channel and neuron levels", 1)[1]
    blocks = re.findall(r"^```python\n(.*?)^```", section, flags=re.S | re.M)
    assert blocks, "the section has no python example"
    namespace = {"__name__": "docs_search_units"}
    for block in blocks:
        exec(compile(block, "docs/search.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "neuron_removal" in out and "torch.Size([2, 3])" in out
