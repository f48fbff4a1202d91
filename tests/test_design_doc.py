"""docs/design.md's layer table says what tests/test_import_graph.py enforces."""

import importlib.util
import re
from pathlib import Path

_spec = importlib.util.spec_from_file_location("import_graph_rules", Path(__file__).with_name("test_import_graph.py"))
assert _spec is not None and _spec.loader is not None
_rules = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_rules)
MAY_IMPORT, ORDER = _rules.MAY_IMPORT, _rules.ORDER
DOC = Path(__file__).resolve().parents[1] / "docs" / "design.md"


def _table():
    rows = {}
    for line in DOC.read_text().splitlines():
        m = re.match(r"\| `(\w+)` \| .* \| ([^|]*) \|$", line)
        if m:
            rows[m.group(1)] = m.group(2).strip()
    return rows


def test_every_layer_is_in_the_table_with_its_rule():
    rows = _table()
    assert set(rows) == set(ORDER) - {"top"}
    for layer, allowed in MAY_IMPORT.items():
        listed = {w.strip() for w in rows[layer].split(",")}
        assert listed == allowed, layer
    for layer in set(rows) - set(MAY_IMPORT):
        assert rows[layer] == "(no rule)", layer


def test_no_file_points_outside_the_repository():
    root = DOC.parents[1]
    hits = [
        str(p.relative_to(root))
        for folder in ("src", "tests", "docs")
        for p in (root / folder).rglob("*")
        if p.suffix in (".py", ".md") and "DESIGN.md" in p.read_text(errors="ignore") and p.name != "test_design_doc.py"
    ]
    assert hits == []
