"""docs/lifecycle.md shows the case machine exactly as the transition table defines it.

After changing `TRANSITIONS`, regenerate the document with
`REGENERATE_DOCS=1 .venv/bin/python -m pytest tests/unit/test_diagram.py`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from restitution.domain.cases import TRANSITIONS, mermaid_diagram

DOC = Path(__file__).resolve().parents[2] / "docs" / "lifecycle.md"

INTRO = """\
# The case lifecycle

Every status a case can be in, and every action that moves it, with the roles allowed to
take it. `system` is the clock firing a deadline (D1 to D6); `operator` is the marketplace's
own systems. The diagram is generated from the transition table in
`src/restitution/domain/cases.py`; do not edit it by hand. After changing the table, run

    REGENERATE_DOCS=1 .venv/bin/python -m pytest tests/unit/test_diagram.py

"""


def render() -> str:
    return f"{INTRO}```mermaid\n{mermaid_diagram()}```\n"


def _mermaid_block(text: str) -> str:
    blocks = re.findall(r"```mermaid\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 1, "docs/lifecycle.md must hold exactly one mermaid block"
    return blocks[0]


def test_lifecycle_doc_holds_the_generated_diagram():
    if os.environ.get("REGENERATE_DOCS") == "1":
        DOC.write_text(render(), encoding="utf-8")
    assert _mermaid_block(DOC.read_text(encoding="utf-8")) == mermaid_diagram(), (
        "docs/lifecycle.md is out of date: run "
        "REGENERATE_DOCS=1 .venv/bin/python -m pytest tests/unit/test_diagram.py"
    )


def test_diagram_draws_every_transition():
    diagram = mermaid_diagram()
    for row in TRANSITIONS.values():
        for target in row.targets:
            assert re.search(
                rf"^    {row.status} --> {target}: .*\b{row.action} \(", diagram, re.MULTILINE
            ), (row.status, row.action, target)
