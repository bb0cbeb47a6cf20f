"""The log format of every entry point and worker process."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="[%(name)s] %(message)s", stream=sys.stderr)
    for noisy in ("timm", "urllib3", "httpx", "huggingface_hub", "fontTools"):  # fontTools: PDF fonts
        logging.getLogger(noisy).setLevel(logging.WARNING)
