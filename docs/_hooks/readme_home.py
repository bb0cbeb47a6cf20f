"""mkdocs hook: the site's home page is README.md, so the two never drift apart.

README.md links to the guides as ``docs/<guide>.md``; on the site, where the home page lives in
``docs/``, those links are rewritten to ``<guide>.md`` so that ``mkdocs build --strict`` checks them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[2] / "README.md"
DOCS_LINK = re.compile(r"\]\(docs/")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri != "index.md":
        return markdown
    return DOCS_LINK.sub("](", README.read_text(encoding="utf-8"))
