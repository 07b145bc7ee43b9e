"""Pseudonymous subject ids: a keyed hash of a site's normalised URL.

A site's `subject_id` is `s_` + the first 16 hex digits of HMAC-SHA256(CASCADE_SUBJECT_KEY,
normalised URL). Without the key nobody can tell which URL an id belongs to, and the mapping
(name, URL -> id) lives only in the registry (`ops.sites`), so raw, silver and gold carry ids
alone. The id is computed once, when a site is added, and stored: changing the key later
changes no existing id.

Where the key comes from: CASCADE_SUBJECT_KEY (a secret setting, at least 8 characters). On
the local profile, when it is unset, a random key is generated once and kept in
`$CASCADE_HOME/subject.key` (mode 0600). On the scale profile many machines add sites to one
registry and must agree on the key, so a missing key is refused instead.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from urllib.parse import urlsplit

from cascade.settings import Settings

PREFIX = "s_"
DIGITS = 16
KEY_FILE = "subject.key"


class SubjectKeyError(RuntimeError):
    """No usable subject key; the message says what to set."""


def normalise_url(url: str) -> str:
    """The canonical form of a site URL: lower-case scheme and host, no default port, no
    trailing slash; the path is kept (sites behind a reverse proxy live under one).

    Raises ValueError for what cannot be a site's base URL: another scheme, credentials in the
    URL, a query or fragment (a token belongs in an environment variable, see --token-env).
    """
    parts = urlsplit((url or "").strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"site URL {url!r} must be http(s)://host[:port][/path]")
    if parts.username or parts.password:
        raise ValueError("a site URL must not carry credentials: use --api-secret-env/--token-env")
    if parts.query or parts.fragment:
        raise ValueError(
            "a site URL must not carry a query or fragment (a token goes in --token-env)"
        )
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"site URL {url!r} has an invalid port") from None
    default = {"http": 80, "https": 443}[scheme]
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, default) else f"{host}:{port}"
    path = parts.path.rstrip("/")
    return f"{scheme}://{netloc}{path}"


def subject_id(key: bytes, url: str) -> str:
    """The pseudonymous subject id of the site at `url` under `key`."""
    digest = hmac.new(key, normalise_url(url).encode(), hashlib.sha256).hexdigest()
    return PREFIX + digest[:DIGITS]


def subject_key(settings: Settings) -> bytes:
    """The HMAC key: CASCADE_SUBJECT_KEY, else (local profile only) the generated key file."""
    if settings.subject_key is not None:
        return settings.subject_key.get_secret_value().encode()
    if settings.profile == "scale":
        raise SubjectKeyError(
            "CASCADE_SUBJECT_KEY is not set: on the scale profile every machine must derive "
            "the same subject ids, so set one shared secret of at least 8 characters "
            "(e.g. `openssl rand -hex 32`) in every machine's environment"
        )
    return _local_key(settings)


def _local_key(settings: Settings) -> bytes:
    """The key in `$CASCADE_HOME/subject.key`, made once (0600); written aside and linked into
    place, so a process racing to create it reads a whole key, never a half-written file."""
    path = settings.home / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        aside = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
        try:
            os.link(aside, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            aside.unlink()
    key = path.read_text().strip()
    if len(key) < 8:
        raise SubjectKeyError(f"{path} holds no usable key: restore it, or set CASCADE_SUBJECT_KEY")
    return key.encode()
