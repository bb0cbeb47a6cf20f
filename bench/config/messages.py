"""Hydra and OmegaConf error messages made into one readable line (below everything that composes)."""

from __future__ import annotations

import re

_INVALID_CHOICE = re.compile(r"Invalid value '(?P<value>.*)', expected one of \[(?P<valid>.*)\]")


# OmegaConf: "Value 'abc' of type 'str' could not be converted to Integer"
_WRONG_TYPE = re.compile(
    r"Value '(?P<value>[^']*)' "
    r"(?:of type '[^']*' could not be converted to (?P<type>\w+)|is not a valid (?P<bool>bool))"
)
_TYPE_NAMES = {"Integer": "an integer, e.g. 20", "Float": "a number, e.g. 0.01", "Boolean": "true or false"}


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
        wrong = _WRONG_TYPE.search(str(cause))
        if wrong and key:  # TRIALS=abc: name the key, the value and the type it needs
            kind = "Boolean" if wrong["bool"] else wrong["type"]
            expected = _TYPE_NAMES.get(kind, kind.lower())
            return f"{prefix}{key.group(1)}='{wrong['value']}': expected {expected}"
        cause = cause.__cause__ or cause.__context__
    text = str(e)
    skip = ("reference_type", "object_type", "Config search path", "provider=")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return "; ".join(ln for ln in lines if not ln.startswith(skip))
