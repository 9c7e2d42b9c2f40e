"""What the pages need to be safe: a session secret, CSRF, security headers.

- The session cookie (the pages' API key) is signed with ``SECRET_KEY``; when
  none is configured, one is made once and kept in the instance folder, so
  that every worker and every restart share it. Replicas that share no
  instance folder set ``HOUSING_SECRET_KEY`` to one value.
- Every form of the pages carries a CSRF token (Flask-WTF); the API, which
  takes no cookies, is not affected.
- Every response says ``X-Content-Type-Options: nosniff``; every HTML page
  has a Content-Security-Policy that allows its own origin only, and may not
  be framed by another.
"""
import os
import secrets
from pathlib import Path

from flask import request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()

#: The pages' policy: this origin only; no inline script or style.
PAGE_POLICY = ("default-src 'self'; img-src 'self' data:; object-src 'none'; "
               "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
#: Swagger UI and ReDoc style their elements inline, ReDoc searches in a
#: worker made from a blob: still nothing from another origin.
DOCS_POLICY = ("default-src 'self'; img-src 'self' data:; "
               "style-src 'self' 'unsafe-inline'; worker-src 'self' blob:; "
               "object-src 'none'; base-uri 'self'; form-action 'self'; "
               "frame-ancestors 'none'")
DOCS_PATHS = ("/docs", "/redoc")


def secret_key(instance: Path) -> str:
    """The instance folder's session secret, made on first use (mode 0600)."""
    path = Path(instance) / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    try:  # exclusive: two processes starting at once keep the first one's
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with no signer made for a request
    that sends no session cookie (every API call): 15 us a request."""

    def open_session(self, app, request):
        if app.secret_key and self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def init_app(app) -> None:
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secret_key(app.instance_path)
    app.session_interface = CookieSessions()
    # The pages call csrf.protect() themselves (web.ui): the API takes no
    # cookies, so a forged cross-site request there carries no credentials.
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    csrf.init_app(app)
    app.after_request(headers)


def headers(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html":
        docs = request.path in DOCS_PATHS
        response.headers.setdefault("Content-Security-Policy",
                                    DOCS_POLICY if docs else PAGE_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
    return response
