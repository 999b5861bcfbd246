"""API tokens, roles and rate limits of the tag service.

A token is ``hx_<key>_<secret>``: ``key`` (8 hex characters) finds the row, and only the
SHA-256 of the whole token is stored, so the database never holds a usable token. Roles:

- ``admin``: everything, including the audit log;
- ``analyst``: catalog, user lookups, every audience call (plain or hashed exports);
- ``service`` (customer service, checkout, app slots): catalog, user lookups, events;
- ``merchant`` (the DMP): catalog and audiences restricted to ``tag_categories``, sizes
  below ``min_audience`` withheld, exports only as salted SHA-256, no user lookups.

Tokens live in the metadata database (``service_tokens``) next to saved audiences.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import DateTime, Integer, String, Text, create_engine, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from huaxiang.audience.store import utcnow
from huaxiang.catalog import Category
from huaxiang.errors import HuaxiangError, NotFoundError, RequestError, did_you_mean

Role = Literal["admin", "analyst", "service", "merchant"]
ROLES: tuple[Role, ...] = ("admin", "analyst", "service", "merchant")
#: Requests per second a token may make by default (a burst of the same size is allowed).
DEFAULT_RATE: dict[str, float] = {"admin": 100.0, "analyst": 50.0, "service": 5_000.0, "merchant": 10.0}
TOKEN = re.compile(r"^hx_([0-9a-f]{8})_([A-Za-z0-9_-]{20,64})$")
NAME = re.compile(r"^[^\W\d][\w\-.@]{0,63}$")


class AuthError(HuaxiangError, PermissionError):
    """No token, or a token that is malformed, unknown or revoked (HTTP 401)."""

    http_status = 401


class ForbiddenError(HuaxiangError, PermissionError):
    """The token's role may not make this call (HTTP 403)."""

    http_status = 403


class RateLimitError(HuaxiangError, RuntimeError):
    """The token made more requests than its rate allows (HTTP 429)."""

    http_status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Base(DeclarativeBase):
    pass


class _TokenRow(_Base):
    __tablename__ = "service_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(8), unique=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    token_sha256: Mapped[str] = mapped_column(String(64))
    tag_categories: Mapped[str | None] = mapped_column(Text, nullable=True)
    min_audience: Mapped[int] = mapped_column(Integer, default=0)
    export_salt: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rate_per_s: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's name, role and limits (never the token itself)."""

    key: str
    name: str
    role: Role
    tag_categories: frozenset[str] | None
    """Categories a merchant may use; ``None`` for the other roles (all)."""
    min_audience: int
    export_salt: str | None
    rate_per_s: float
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None

    @property
    def is_merchant(self) -> bool:
        return self.role == "merchant"

    def require(self, *roles: Role, what: str) -> None:
        """A 403 unless the role is one of ``roles``."""
        if self.role not in roles:
            allowed = ", ".join(roles)
            raise ForbiddenError(
                f"role '{self.role}' (token '{self.name}') may not {what}; allowed: {allowed}."
            )


@dataclass(frozen=True)
class CreatedToken:
    """A new token: the secret is shown once, only its hash is kept."""

    token: str
    principal: Principal


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_categories(text: str | None) -> frozenset[str] | None:
    """``"basic,scene"`` → the categories, checked against the catalog's (``scene`` = ``category_scene``)."""
    if text is None:
        return None
    known = [c.value for c in Category]
    aliases = {"scene": "category_scene", "brand": "brand_shop", "trait": "consumption_trait"}
    found: set[str] = set()
    for raw in (part.strip() for part in text.split(",")):
        if not raw:
            continue
        name = aliases.get(raw, raw)
        if name not in known:
            raise RequestError(
                f"unknown tag category {raw!r}.{did_you_mean(raw, known)} Categories: {', '.join(known)}."
            )
        found.add(name)
    if not found:
        raise RequestError("give at least one tag category, e.g. --tag-categories basic,category_scene.")
    return frozenset(found)


class TokenStore:
    """Tokens in the metadata database, with a short in-memory cache of verified tokens."""

    def __init__(self, url: str, *, cache_s: float = 5.0) -> None:
        self.engine: Engine = create_engine(url, connect_args=_sqlite_args(url))
        _Base.metadata.create_all(self.engine)
        self.cache_s = cache_s
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.engine.dispose()

    def create(
        self,
        name: str,
        role: str,
        *,
        tag_categories: str | None = None,
        min_audience: int = 0,
        rate_per_s: int | None = None,
    ) -> CreatedToken:
        """Create a token; merchants need ``tag_categories`` and get a random export salt."""
        if role not in ROLES:
            raise RequestError(
                f"unknown role {role!r}.{did_you_mean(role, ROLES)} Roles: {', '.join(ROLES)}."
            )
        if not NAME.match(name):
            raise RequestError(
                f"token name {name!r} is not allowed: a letter first, then letters, digits, _ - . @, "
                "at most 64 characters (e.g. crm-checkout)."
            )
        categories = parse_categories(tag_categories)
        if role == "merchant" and categories is None:
            raise RequestError("a merchant token needs --tag-categories (e.g. basic,category_scene).")
        if role != "merchant" and (categories is not None or min_audience):
            raise RequestError("--tag-categories and --min-audience apply to merchant tokens only.")
        if min_audience < 0:
            raise RequestError(f"--min-audience must be 0 or more, got {min_audience}.")
        rate = rate_per_s if rate_per_s is not None else int(DEFAULT_RATE[role])
        if rate < 1:
            raise RequestError(f"--rate-limit must be at least 1 request per second, got {rate}.")
        with Session(self.engine) as session, session.begin():
            if session.scalars(select(_TokenRow).where(_TokenRow.name == name)).first() is not None:
                raise RequestError(
                    f"a token named '{name}' already exists; choose another name or revoke it."
                )
            key = secrets.token_hex(4)
            while session.scalars(select(_TokenRow).where(_TokenRow.key == key)).first() is not None:
                key = secrets.token_hex(4)  # pragma: no cover - 1 in 4 billion
            token = f"hx_{key}_{secrets.token_urlsafe(30)}"
            row = _TokenRow(
                key=key,
                name=name,
                role=role,
                token_sha256=token_hash(token),
                tag_categories=json.dumps(sorted(categories)) if categories is not None else None,
                min_audience=min_audience,
                export_salt=secrets.token_hex(16) if role == "merchant" else None,
                rate_per_s=rate,
                created_at=utcnow(),
            )
            session.add(row)
            session.flush()
            principal = _principal(row)
        return CreatedToken(token, principal)

    def list(self) -> list[Principal]:
        with Session(self.engine) as session:
            return [_principal(row) for row in session.scalars(select(_TokenRow).order_by(_TokenRow.id))]

    def has_admin(self) -> bool:
        with Session(self.engine) as session:
            query = select(_TokenRow).where(_TokenRow.role == "admin", _TokenRow.revoked_at.is_(None))
            return session.scalars(query).first() is not None

    def revoke(self, name: str) -> Principal:
        with Session(self.engine) as session, session.begin():
            row = session.scalars(select(_TokenRow).where(_TokenRow.name == name)).first()
            if row is None:
                names = list(session.scalars(select(_TokenRow.name)))
                raise NotFoundError(f"no token named '{name}'.{did_you_mean(name, names)}")
            row.revoked_at = row.revoked_at or utcnow()
            principal = _principal(row)
        with self._lock:
            self._cache = {h: item for h, item in self._cache.items() if item[1].key != principal.key}
        return principal

    def verify(self, token: str | None) -> Principal:
        """The principal of a bearer token, or an :class:`AuthError` saying what is wrong."""
        if not token:
            raise AuthError(
                "no API token: send 'Authorization: Bearer hx_...' (create one with "
                "'huaxiang token create --role ...')."
            )
        digest = token_hash(token)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < self.cache_s:
            return cached[1]
        match = TOKEN.match(token)
        if match is None:
            raise AuthError("the API token is malformed: tokens look like hx_<8 hex>_<secret>.")
        with Session(self.engine) as session:
            row = session.scalars(select(_TokenRow).where(_TokenRow.key == match.group(1))).first()
            if row is None or not hmac.compare_digest(row.token_sha256, digest):
                raise AuthError("unknown API token (it may have been mistyped or deleted).")
            if row.revoked_at is not None:
                raise AuthError(
                    f"the API token '{row.name}' was revoked at {row.revoked_at:%Y-%m-%d %H:%M} UTC."
                )
            principal = _principal(row)
        with self._lock:
            self._cache[digest] = (now, principal)
        return principal


def _principal(row: _TokenRow) -> Principal:
    categories = frozenset(json.loads(row.tag_categories)) if row.tag_categories else None
    return Principal(
        key=row.key,
        name=row.name,
        role=row.role,  # type: ignore[arg-type]
        tag_categories=categories,
        min_audience=row.min_audience,
        export_salt=row.export_salt,
        rate_per_s=float(row.rate_per_s),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _sqlite_args(url: str) -> dict[str, object]:
    # Several service processes share the file: wait for a writer instead of failing at once.
    return {"timeout": 30, "check_same_thread": False} if url.startswith("sqlite") else {}


class RateLimiter:
    """A token bucket per token: ``rate`` requests a second, bursts up to ``rate`` (per process)."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, principal: Principal) -> None:
        rate = principal.rate_per_s
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(principal.key, (rate, now))
            tokens = min(rate, tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[principal.key] = (tokens, now)
                wait = (1.0 - tokens) / rate
                raise RateLimitError(
                    f"token '{principal.name}' is limited to {rate:g} requests per second; "
                    f"retry after {wait:.2f} s.",
                    retry_after=wait,
                )
            self._buckets[principal.key] = (tokens - 1.0, now)
