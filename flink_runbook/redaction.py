"""Credentials kept out of what leaves the runbook: events, notifications and logs (pure).

The inventory refuses a URL that carries credentials (user:password@, a token in its query), but text
from elsewhere still holds URLs: an error from requests names the URL it asked (and one it was
redirected to), a JobManager's answer quotes its own. Every such text passes through redact_urls on
its way out: user:password@ becomes ***@, each query value and a fragment with a value become ***.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

MASK = "***"
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@?#'\"<>]*@")
# A query glued to what comes before it (a URL or a path, not a question in prose): "...?a=1&b=2".
_QUERY = re.compile(r"(?<=[^\s?])\?(?P<query>[^\s#'\"<>]+)")
_FRAGMENT = re.compile(r"(?<=[^\s#])#(?=[^\s'\"<>]*=)[^\s'\"<>]+")  # #access_token=... (OAuth's implicit flow)
# Query parameters that carry a credential, by name: ?token=, ?access_token=, ?api_key=, ?sig=, ...
CREDENTIAL_NAME = re.compile(r"token|key|secret|pass|pwd|auth|sig|credential|session|jwt|code", re.IGNORECASE)


def _masked_query(match: re.Match) -> str:
    parts = (part.partition("=") for part in match.group("query").split("&"))
    return "?" + "&".join(f"{name}={MASK}" if sep else MASK for name, sep, _ in parts)


def redact_urls(text: str) -> str:
    """The text with every URL's user:password@, query values and fragment masked (names kept: they say
    what was asked, never with what)."""
    if "@" not in text and "?" not in text and "#" not in text:  # most lines: nothing to look at
        return text
    text = _USERINFO.sub(rf"\g<scheme>{MASK}@", text)
    text = _QUERY.sub(_masked_query, text)
    return _FRAGMENT.sub(f"#{MASK}", text)


def redacted(value: Any) -> Any:
    """`value` (an event's payload, a label set) with redact_urls applied to every string in it."""
    if isinstance(value, str):
        return redact_urls(value)
    if isinstance(value, dict):
        return {key: redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redacted(item) for item in value)
    return value


def credentials_in_url(url: str) -> list[str]:
    """What in `url` is a credential, said without its value: 'user:password@', 'token=' (empty: none)."""
    parts = urlsplit(url)
    found = ["user:password@"] if parts.username is not None or parts.password is not None else []
    found += [f"{name}=" for name, _ in parse_qsl(parts.query, keep_blank_values=True) if CREDENTIAL_NAME.search(name)]
    if CREDENTIAL_NAME.search(parts.fragment.partition("=")[0]) and "=" in parts.fragment:
        found.append(f"#{parts.fragment.partition('=')[0]}=")
    return found
