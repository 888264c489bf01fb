"""URLs as inputs: telling them from local paths, their path arithmetic, and keeping their secrets.

Pure string work, no fsspec: the CLI masks messages and the readers join paths whether or not a
remote file system is installed.

A URL's secrets are its password (`https://user:secret@host/…`) and its query string (a signed
URL's `?X-Amz-Signature=…`, an Azure SAS token `?sv=…&sig=…`). Above remote.py a URL is only ever
seen in its *display* form, the password masked and the query left off; remote.py puts both back
on every URL of the same origin when it makes a request. So messages, results and output names
never hold a secret, and a checkpoint's shards derive from its prefix by plain string arithmetic.
"""

from __future__ import annotations

import posixpath
import re
import threading

__all__ = [
    "display_url",
    "is_url",
    "local_path",
    "mask_secrets",
    "real_url",
    "url_join",
    "url_split",
]

# "s3://…", "gs://…", "https://…", and fsspec's chains ("simplecache::s3://…"). A single letter
# before ":" is a Windows drive, never a scheme.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+(://|::)")
_ANY_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]+://[^\s'\"<>]+")
_MASK = "***"

# (scheme, display netloc) -> (real netloc, real query), filled as URLs are displayed.
_SECRETS: dict[tuple[str, str], tuple[str, str]] = {}
_SECRETS_LOCK = threading.Lock()


def is_url(path: str) -> bool:
    """Whether `path` names a remote (or fsspec) location rather than a local file."""
    return _URL.match(path) is not None and not path.startswith("file://")


def local_path(path: str) -> str:
    """A `file://` URL as the local path it names (read natively, like any path); anything else unchanged."""
    if path.startswith("file://"):
        from urllib.parse import unquote, urlsplit  # here: a local path never needs urllib (start-up time)

        parts = urlsplit(path)
        if parts.netloc in ("", "localhost"):
            return unquote(parts.path)
    return path


def _masked_netloc(netloc: str) -> str:
    if "@" not in netloc:
        return netloc
    userinfo, host = netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0] + ":" if ":" in userinfo else ""
    return f"{user}{_MASK}@{host}"


def display_url(url: str) -> str:
    """The form of `url` that may be shown and passed around: password masked, query left off.
    The secrets are remembered for its origin (real_url puts them back)."""
    if "://" not in url or "::" in url:
        return url  # fsspec chains carry their options elsewhere
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    shown = _masked_netloc(parts.netloc)
    if shown != parts.netloc or parts.query:
        with _SECRETS_LOCK:
            _SECRETS[(parts.scheme, shown)] = (parts.netloc, parts.query)
    return f"{parts.scheme}://{shown}{parts.path}"


def real_url(url: str) -> str:
    """The URL to request for a display URL: its origin's password and query put back."""
    if "://" not in url or "::" in url:
        return url
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    with _SECRETS_LOCK:
        secret = _SECRETS.get((parts.scheme, parts.netloc))
    if secret is None:
        return url
    netloc, query = secret
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def mask_secrets(text: str) -> str:
    """`text` with the password and query values of every URL in it masked: the last guard on what
    the CLI prints, for messages that came from a file system's own exceptions."""

    def one(match: re.Match[str]) -> str:
        url = match[0]
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        query = "&".join(f"{p.split('=', 1)[0]}={_MASK}" if "=" in p else _MASK for p in parts.query.split("&"))
        return f"{parts.scheme}://{_masked_netloc(parts.netloc)}{parts.path}" + (f"?{query}" if parts.query else "")

    return _ANY_URL.sub(one, text)


def url_split(url: str) -> tuple[str, str]:
    """(directory, name), as os.path.split does for a path: "s3://b/d/m.ckpt" -> ("s3://b/d", "m.ckpt")."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return posixpath.split(url)
    root, slash, path = rest.partition("/")
    if not slash:
        return url, ""
    directory, name = posixpath.split(path)
    return f"{scheme}://{root}/{directory}".rstrip("/") if directory else f"{scheme}://{root}", name


def url_join(directory: str, *names: str) -> str:
    """`directory`/name/…; names are relative parts of a URL's path."""
    return "/".join([directory.rstrip("/"), *(name.strip("/") for name in names)])
