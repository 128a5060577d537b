"""The documentation's code blocks run: each page's ```python blocks, in order, in one
namespace, as a reader would paste them."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = ["tutorial_custom_space.md", "spaces.md", "../README.md", "cli.md", "search.md",
         "creation.md", "levels.md", "lowering.md", "crosslevel.md"]


def blocks(page: str) -> list[str]:
    text = (DOCS / page).read_text()
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


@pytest.mark.parametrize("page", PAGES)
def test_code_blocks_run(page, capsys):
    code = blocks(page)
    assert code, f"{page} has no python block"
    namespace = {"__name__": f"docs_{page}"}
    for k, block in enumerate(code):
        try:
            exec(compile(block, f"{page}[block {k}]", "exec"), namespace)
        except Exception as exc:  # name the block that failed
            raise AssertionError(f"{page}, python block {k} failed: {exc!r}\n{block}") from exc
