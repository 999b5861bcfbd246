"""Who may open which console page, and the signed-in viewer of a request.

The console signs in with an API token (the same tokens as the service, ``huaxiang token
create``); the token is kept in an HttpOnly, SameSite=Strict cookie. Pages follow the API's
role table (docs/service.md): a merchant sees the tag catalog and the audience builder,
limited to its tag categories and minimum audience; service tokens are for machines and
open no page.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from huaxiang.serve.auth import AuthError, ForbiddenError, Principal, Role
from huaxiang.serve.routes.common import CONSOLE_COOKIE


@dataclass(frozen=True)
class Page:
    """A page of the navigation: its key (``nav.<key>`` is its title), path and allowed roles."""

    key: str
    path: str
    roles: tuple[Role, ...]


PEOPLE: tuple[Role, ...] = ("admin", "analyst")
PAGES: tuple[Page, ...] = (
    Page("overview", "/console/", PEOPLE),
    Page("catalog", "/console/catalog", ("admin", "analyst", "merchant")),
    Page("builder", "/console/audiences", ("admin", "analyst", "merchant")),
    Page("segments", "/console/segments", PEOPLE),
    Page("experiments", "/console/experiments", PEOPLE),
    Page("users", "/console/users", PEOPLE),
    Page("scenes", "/console/scenes", PEOPLE),
)
PAGE = {page.key: page for page in PAGES}


class SignInRequired(AuthError):
    """No valid console cookie: the page answers with a redirect to the sign-in form."""

    def __init__(self, message: str, next_path: str) -> None:
        super().__init__(message)
        self.next_path = next_path


def viewer(request: Request) -> Principal:
    """The signed-in principal of a console request, or :class:`SignInRequired`."""
    service = request.app.state.service
    token = request.cookies.get(CONSOLE_COOKIE)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if not token:
        raise SignInRequired("sign in with an API token to use the console.", target)
    try:
        principal: Principal = service.tokens.verify(token)
    except AuthError as error:
        raise SignInRequired(error.message, target) from error
    service.limiter.check(principal)
    return principal


def require_page(principal: Principal, key: str) -> None:
    """A 403 naming the page and the roles that may open it."""
    page = PAGE[key]
    principal.require(*page.roles, what=f"open the console page '{key}' ({page.path})")


def visible_pages(principal: Principal) -> list[Page]:
    return [page for page in PAGES if principal.role in page.roles]


def first_page(principal: Principal) -> str:
    pages = visible_pages(principal)
    if not pages:
        raise ForbiddenError(
            f"role '{principal.role}' (token '{principal.name}') opens no console page: "
            "service tokens are for the API; sign in with an admin, analyst or merchant token."
        )
    return pages[0].path
