"""Hydra and OmegaConf error messages made into one readable line (below everything that composes)."""

from __future__ import annotations

import re

_INVALID_CHOICE = re.compile(r"Invalid value '(?P<value>.*)', expected one of \[(?P<valid>.*)\]")


def error_text(e: Exception, prefix: str = "") -> str:
    """Hydra/OmegaConf messages with their internal reference/object-type lines dropped.

    A value outside a typed (enum) key reads ``key='value'; valid: a, b`` like every other config
    error; ``prefix`` is prepended to the key (``method.terms.cwd_feat.``).
    """
    cause: BaseException | None = e
    while cause is not None:  # Hydra wraps OmegaConf's error ("Error merging override ...")
        choice, key = _INVALID_CHOICE.search(str(cause)), re.search(r"full_key: (\S+)", str(cause))
        if choice and key:
            return f"{prefix}{key.group(1)}='{choice['value']}'; valid: {choice['valid']}"
        cause = cause.__cause__ or cause.__context__
    text = str(e)
    skip = ("reference_type", "object_type", "Config search path", "provider=")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return "; ".join(ln for ln in lines if not ln.startswith(skip))
