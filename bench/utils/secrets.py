"""Masking credentials in storage URLs before anything is printed or written."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(//[^:/@\s]+:)[^@\s]*(@)")
_QUERY = re.compile(r"((?:password|passwd|pwd|token|secret)=)[^&\s]*", re.IGNORECASE)


def mask_url(url: str | None) -> str | None:
    """``postgresql://user:secret@host/db`` → ``postgresql://user:***@host/db`` (also ``?password=``)."""
    if url is None:
        return None
    return _QUERY.sub(r"\1***", _USERINFO.sub(r"\1***\2", url))


def mask_in(text: str, url: str | None) -> str:
    """``text`` with any credential of ``url`` replaced, e.g. in a driver's error message."""
    if not url:
        return text
    masked = mask_url(url)
    text = text.replace(url, masked)
    for match in list(_USERINFO.finditer(url)) + list(_QUERY.finditer(url)):
        secret = url[match.end(1) : match.end() - (1 if match.re is _USERINFO else 0)]
        if secret:
            text = text.replace(secret, "***")
    return text
