"""What the routes share: the service, the calling token (authenticated and rate-limited), size hiding."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict

from huaxiang.serve.auth import Principal

bearer = HTTPBearer(auto_error=False, description="An API token: 'huaxiang token create --role ...'.")


class Strict(BaseModel):
    """Request bodies refuse unknown fields (422 naming the field)."""

    model_config = ConfigDict(extra="forbid")


def service_of(request: Request) -> Any:
    return request.app.state.service


async def caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """The token's principal; 401 without a valid token, 429 over its rate."""
    service = request.app.state.service
    token = credentials.credentials if credentials else console_token(request)
    principal: Principal = service.tokens.verify(token)
    service.limiter.check(principal)
    return principal


def authenticate(request: Request) -> Principal:
    """What :func:`caller` does, called directly by the lookup route: FastAPI's dependency
    resolution was a third of that route's time (profiled); the route declares the same
    security scheme in OpenAPI through :data:`BEARER_SECURITY`."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    service = request.app.state.service
    principal: Principal = service.tokens.verify(
        token.strip() if scheme.lower() == "bearer" else console_token(request)
    )
    service.limiter.check(principal)
    return principal


#: The console's sign-in cookie (HttpOnly, SameSite=Strict) holds the token it was given.
CONSOLE_COOKIE = "hx_console"
#: The header the console's scripts send with every API call. A cross-site page cannot set it
#: without a CORS preflight (which the service never grants), so the cookie alone cannot be
#: used by another site's form (CSRF).
CONSOLE_HEADER = "x-huaxiang-console"


def console_token(request: Request) -> str | None:
    """The token of a signed-in console, for API calls made by the console's own scripts."""
    if request.headers.get(CONSOLE_HEADER) != "1":
        return None
    return request.cookies.get(CONSOLE_COOKIE) or None


BEARER_SECURITY: dict[str, Any] = {"security": [{"HTTPBearer": []}]}


Caller = Annotated[Principal, Depends(caller)]


def shown_size(principal: Principal, size: int) -> tuple[int | None, bool]:
    """``(size, withheld)``: a merchant never sees a size below its minimum (withheld, not rounded)."""
    if principal.is_merchant and size < principal.min_audience:
        return None, True
    return size, False
