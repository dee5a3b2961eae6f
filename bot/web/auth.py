"""Staff sign-in and sign-out, the session cookie, CSRF, and who is asking.

- **Sessions** live in the database (``storage.staff_sessions``): the cookie holds a random token,
  the row its SHA-256. The cookie is ``HttpOnly`` and ``SameSite=Lax``; when the public base URL
  is https it is also ``Secure`` and named ``__Host-...`` (so no other host or path can set it).
  A session ends at sign-out, when the same browser signs in again, when its staff member is
  deactivated, after ``STIFINDER_SESSION_IDLE_MINUTES`` without a request, and at the latest
  ``STIFINDER_SESSION_MAX_HOURS`` after sign-in.
- **CSRF**: every POST of a signed-in page carries the session's own token (a hidden field
  ``csrf_token``, or the ``X-CSRF-Token`` header for scripts), compared in constant time; missing
  or wrong answers 403 before anything runs. The routers of signed-in pages check it for every
  unsafe method, so a new form cannot forget it. The sign-in form, which has no session yet,
  carries a random token that must match a cookie of its own (so another site cannot sign a
  browser in to an account of its choosing).
- **Who is asking**: :func:`current_staff` is the signed-in staff member; without a live session
  a page redirects to ``/sign-in?next=...`` and an API-like request (``/api/...``, htmx, JSON)
  gets 401. :func:`require_role` answers 403 to the other roles. What a staff member may *see* is
  decided in ``storage.access``, never here.
- ``next=`` only ever leads to a path on this site.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from bot import signin
from bot.runtime import Runtime
from bot.settings import Settings
from bot.web.pages import Pages
from dialogs.i18n import N_
from dialogs.types import Role
from storage import audit, staff_sessions
from storage.models import Municipality, StaffUser, utcnow
from storage.staff_sessions import Lifetime, Lockout

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
HOME = "/staff"
SIGN_IN = "/sign-in"
SIGN_OUT = "/sign-out"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_NEXT = 2000
FORM_EXPIRED = N_(
    "Formularen kunne ikke sendes, fordi den er for gammel eller ikke kom fra Stifinder. "
    "Gå tilbage, genindlæs siden og prøv igen."
)


# ---------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class Policy:
    """Everything sign-in needs from the settings, read once."""

    secure: bool
    lifetime: Lifetime
    lockout: Lockout
    secret_key: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            secure=settings.secure_cookies,
            lifetime=Lifetime(
                idle=timedelta(minutes=settings.session_idle_minutes),
                absolute=timedelta(hours=settings.session_max_hours),
            ),
            lockout=Lockout(
                max_failures=settings.sign_in_max_failures,
                period=timedelta(minutes=settings.sign_in_lockout_minutes),
            ),
            secret_key=settings.secret_key.get_secret_value(),
        )

    def _cookie(self, name: str) -> str:
        # "__Host-": only a secure cookie for this very host, path "/", may carry the name.
        return f"__Host-{name}" if self.secure else name

    @property
    def session_cookie(self) -> str:
        return self._cookie("stifinder_session")

    @property
    def sign_in_cookie(self) -> str:
        return self._cookie("stifinder_sign_in")

    def set_cookie(self, response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def clear_cookie(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/", secure=self.secure, httponly=True, samesite="lax")


def policy_of(request: Request) -> Policy:
    policy: Policy = request.app.state.auth_policy
    return policy


# ---------------------------------------------------------------------------- who is asking


@dataclass(frozen=True)
class SignedIn:
    """The signed-in staff member, read once per request (a snapshot, not a live row)."""

    id: int
    name: str
    email: str
    role: Role
    municipality_id: int | None
    municipality_name: str | None
    session_id: int
    csrf_token: str

    @property
    def audit_name(self) -> str:
        return f"staff:{self.id}"

    def load(self, session: Session) -> StaffUser:
        """The staff member's row in ``session`` (for ``storage.access``)."""
        return session.get_one(StaffUser, self.id)


class SignInRequired(Exception):  # noqa: N818 - it is not an error, it is where to go
    """No live session: a page goes to the sign-in form, an API-like request gets 401."""

    def __init__(self, next_path: str | None, *, api: bool, had_cookie: bool) -> None:
        super().__init__("sign in")
        self.next_path = next_path
        self.api = api
        self.had_cookie = had_cookie


class Refused(Exception):  # noqa: N818 - an answer, 403 by default
    """The request is understood and refused; ``message`` is a Danish source text."""

    def __init__(self, message: str, *, api: bool, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.api = api
        self.status = status


def is_api_like(request: Request) -> bool:
    """Programs get status codes, people get pages."""
    if request.url.path.startswith("/api/") or "hx-request" in request.headers:
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _next_of(request: Request) -> str | None:
    if request.method != "GET":
        return None
    path = request.url.path
    if request.url.query:
        path += "?" + request.url.query
    return safe_next(path, default="") or None


def current_staff(request: Request) -> SignedIn:
    """The staff member of this request's live session, or :class:`SignInRequired`."""
    cached: SignedIn | None = getattr(request.state, "signed_in", None)
    if cached is not None:
        return cached
    policy = policy_of(request)
    token = request.cookies.get(policy.session_cookie, "")
    runtime: Runtime = request.app.state.runtime
    me: SignedIn | None = None
    if token:
        with runtime.database.session() as session:
            found = staff_sessions.find(session, token, now=utcnow(), lifetime=policy.lifetime)
            if found is not None:
                row, staff = found
                place = (
                    session.get(Municipality, staff.municipality_id)
                    if staff.municipality_id is not None
                    else None
                )
                me = SignedIn(
                    id=staff.id,
                    name=staff.name,
                    email=staff.email,
                    role=staff.role,
                    municipality_id=staff.municipality_id,
                    municipality_name=place.name if place is not None else None,
                    session_id=row.id,
                    csrf_token=row.csrf_secret,
                )
    if me is None:
        raise SignInRequired(_next_of(request), api=is_api_like(request), had_cookie=bool(token))
    request.state.signed_in = me
    return me


Staff = Annotated[SignedIn, Depends(current_staff)]


def require_role(*roles: Role) -> Callable[..., SignedIn]:
    """A dependency: the signed-in staff member if they have one of ``roles``, else 403."""
    allowed = frozenset(roles)

    def dependency(request: Request, me: Staff) -> SignedIn:
        if me.role not in allowed:
            raise Refused(N_("Du har ikke adgang til denne side."), api=is_api_like(request))
        return me

    return dependency


async def check_csrf(request: Request, me: Staff) -> None:
    """Signed in, and for every unsafe method the session's CSRF token with the request.

    Put on a router (``dependencies=[Depends(check_csrf)]``), it guards every route of it: all
    need a session, and no POST, PUT, PATCH or DELETE runs without the token.
    """
    if request.method not in UNSAFE_METHODS:
        return
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get(CSRF_FIELD)
            given = value if isinstance(value, str) else None
    if not staff_sessions.csrf_matches(me.csrf_token, given):
        raise Refused(FORM_EXPIRED, api=is_api_like(request))


def safe_next(value: str | None, *, default: str = HOME) -> str:
    """``value`` if it is a path on this site (never another host, scheme or sign-in itself)."""
    if not value or len(value) > MAX_NEXT:
        return default
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path in (SIGN_IN, SIGN_OUT):
        return default
    return value


# ---------------------------------------------------------------------------- answers


def private(pages: Pages, request: Request, name: str, **context: object) -> HTMLResponse:
    """A page for a signed-in reader: rendered, and never kept by a browser or proxy cache.

    It carries where the live stream stood when it was rendered, so that its first connection
    to /live misses nothing that happened in between.
    """
    from bot.web.live import position  # the live stream builds on this module

    context.setdefault("live_since", position(request.app.state.runtime.database))
    response = pages.render(request, name, **context)
    response.headers["Cache-Control"] = "no-store"
    return response


def install(app: FastAPI, runtime: Runtime, pages: Pages) -> None:
    """Sign-in's policy and the answers to :class:`SignInRequired` and :class:`Refused`."""
    policy = Policy.from_settings(runtime.settings)
    app.state.auth_policy = policy
    signin.dummy_hash()  # made now, so the first unknown address costs no more than the rest

    async def sign_in_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        response: Response
        if exc.api:
            response = JSONResponse({"detail": "sign in first"}, status_code=401)
        else:
            target = SIGN_IN
            if exc.next_path:
                target += "?next=" + quote(exc.next_path, safe="")
            response = RedirectResponse(target, status_code=303)
        if exc.had_cookie:
            policy.clear_cookie(response, policy.session_cookie)
        return response

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        if exc.api:
            return JSONResponse({"detail": "refused"}, status_code=exc.status)
        me: SignedIn | None = getattr(request.state, "signed_in", None)
        response = private(pages, request, "refused.html", me=me, message=exc.message)
        response.status_code = exc.status
        return response

    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(Refused, refused)


# ---------------------------------------------------------------------------- routes


def _minutes_left(until: datetime | None, now: datetime) -> int:
    if until is None:
        return 0
    return max(1, math.ceil((until - now).total_seconds() / 60))


def router(runtime: Runtime, pages: Pages) -> APIRouter:
    """``/sign-in`` (open to all) and ``/sign-out``."""
    routes = APIRouter()
    database = runtime.database

    def _form(
        request: Request,
        *,
        policy: Policy,
        next_path: str,
        email: str = "",
        error: str | None = None,
        notice: str | None = None,
        status: int = 200,
        **params: object,
    ) -> Response:
        token = request.cookies.get(policy.sign_in_cookie, "")
        if not 20 <= len(token) <= 100:
            token = staff_sessions.new_token()
        response = pages.render(
            request,
            "sign_in.html",
            csrf_token=token,
            next_path=next_path,
            email=email,
            error=error,
            error_params=params,
            notice=notice,
        )
        response.status_code = status
        response.headers["Cache-Control"] = "no-store"
        # A browser-session cookie: the form works as long as the browser keeps it.
        policy.set_cookie(response, policy.sign_in_cookie, token, max_age=None)
        return response

    @routes.get(SIGN_IN, response_class=HTMLResponse)
    def sign_in_form(
        request: Request,
        next: str | None = None,
        signed_out: str | None = None,
    ) -> Response:
        policy = policy_of(request)
        target = safe_next(next)
        try:
            current_staff(request)
        except SignInRequired:
            notice = N_("Du er logget ud.") if signed_out else None
            return _form(request, policy=policy, next_path=target, notice=notice)
        return RedirectResponse(target, status_code=303)

    @routes.post(SIGN_IN, response_class=HTMLResponse)
    def sign_in(
        request: Request,
        email: Annotated[str, Form(max_length=1000)] = "",
        password: Annotated[str, Form(max_length=signin.MAX_PASSWORD * 4)] = "",
        next: Annotated[str, Form(max_length=MAX_NEXT * 2)] = "",
        csrf_token: Annotated[str, Form(max_length=200)] = "",
    ) -> Response:
        policy = policy_of(request)
        target = safe_next(next)
        expected = request.cookies.get(policy.sign_in_cookie, "")
        if not staff_sessions.csrf_matches(expected, csrf_token):
            raise Refused(FORM_EXPIRED, api=False)
        now = utcnow()
        with database.session() as session:
            result = signin.check(
                session,
                email=email,
                password=password,
                now=now,
                rule=policy.lockout,
                secret_key=policy.secret_key,
            )
            token: str | None = None
            if result.staff is not None:
                previous = staff_sessions.by_token(
                    session, request.cookies.get(policy.session_cookie, "")
                )
                if previous is not None:
                    staff_sessions.revoke(session, previous, now=now, reason="signed_in_again")
                _, token = staff_sessions.start(
                    session, result.staff, now=now, lifetime=policy.lifetime
                )
        shown = signin.normalise_email(email)
        if result.outcome is signin.Outcome.WRONG:
            return _form(
                request,
                policy=policy,
                next_path=target,
                email=shown,
                error=N_("E-mailadressen eller adgangskoden er forkert. Prøv igen."),
                status=400,
            )
        if result.outcome is signin.Outcome.LOCKED:
            return _form(
                request,
                policy=policy,
                next_path=target,
                email=shown,
                error=N_(
                    "Der har været for mange forkerte forsøg, så der er lukket for login med "
                    "denne e-mailadresse i {minutes} min. Prøv igen derefter, eller bed en "
                    "administrator om at låse op."
                ),
                status=429,
                minutes=_minutes_left(result.locked_until, now),
            )
        if result.outcome is signin.Outcome.INACTIVE or token is None:
            return _form(
                request,
                policy=policy,
                next_path=target,
                email=shown,
                error=N_(
                    "Din konto er lukket. Kontakt din koordinator eller en administrator, hvis "
                    "det er en fejl."
                ),
                status=403,
            )
        response = RedirectResponse(target, status_code=303)
        policy.set_cookie(
            response,
            policy.session_cookie,
            token,
            max_age=int(policy.lifetime.absolute.total_seconds()),
        )
        policy.clear_cookie(response, policy.sign_in_cookie)
        return response

    @routes.post(SIGN_OUT, dependencies=[Depends(check_csrf)])
    def sign_out(request: Request, me: Staff) -> Response:
        policy = policy_of(request)
        with database.session() as session:
            row = staff_sessions.by_id(session, me.session_id)
            if row is not None and staff_sessions.revoke(
                session, row, now=utcnow(), reason="signed_out"
            ):
                audit.record(
                    session,
                    actor=me.audit_name,
                    action="staff.signed_out",
                    staff_id=me.id,
                    municipality_id=me.municipality_id,
                )
        response = RedirectResponse(SIGN_IN + "?signed_out=1", status_code=303)
        policy.clear_cookie(response, policy.session_cookie)
        return response

    return routes
