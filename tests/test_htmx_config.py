"""htmx 2 reads only the first ``meta[name=htmx-config]`` of a page: a second one, in a page's
head block, is ignored without a word (the inbox's and analytics' 422 rules were, once)."""

from __future__ import annotations

import json
import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
META = re.compile(r"""<meta name="htmx-config" content='([^']*)'>""")


def test_only_base_html_configures_htmx_and_it_swaps_422s():
    found = {
        path.relative_to(TEMPLATES).as_posix(): META.findall(path.read_text())
        for path in TEMPLATES.rglob("*.html")
        if "htmx-config" in path.read_text()
    }
    assert list(found) == ["base.html"]
    (content,) = found["base.html"]
    config = json.loads(content)
    assert config["includeIndicatorStyles"] is False
    rules = config["responseHandling"]
    codes = [r["code"] for r in rules]
    # the first rule that matches wins: 422 must come before the [45].. catch-all
    assert codes.index("422") < codes.index("[45]..")
    assert rules[codes.index("422")]["swap"] is True
