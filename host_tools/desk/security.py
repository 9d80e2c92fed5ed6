"""The desk's guards around every request (kept libraries; no hand-written crypto):

- FormCSRF: starlette-csrf's double-submit token (signed with itsdangerous, compared in
  constant time by the library), taken from the form field ``csrf_token`` of a page's
  form as well as from the header the library reads: the pages need no JavaScript. The
  body of a POST is read once here, bounded (BODY_MAX), and handed on unchanged. The
  token is made when the cookie is missing, so the first page's form carries it.
- SecurityHeaders: CSP default-src 'self' (no inline script or style), frame-ancestors
  'none' and X-Frame-Options DENY, nosniff, no referrer.
"""
from __future__ import annotations

import http.cookies
import urllib.parse

from starlette.datastructures import MutableHeaders
from starlette.responses import PlainTextResponse
from starlette_csrf import CSRFMiddleware

__all__ = ["FormCSRF", "SecurityHeaders", "BODY_MAX", "CSRF_COOKIE", "CSRF_FIELD"]

BODY_MAX = 64 * 1024        # bytes of a form the desk reads
CSRF_COOKIE = "sealcam_csrf"
CSRF_FIELD = "csrf_token"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "media-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")


FORM_FIELDS_MAX = 64           # no desk form has more fields


class FormCSRF(CSRFMiddleware):
    def __init__(self, app, secret, **kw):
        kw.setdefault("cookie_name", CSRF_COOKIE)
        kw.setdefault("cookie_httponly", True)
        kw.setdefault("cookie_samesite", "strict")
        super().__init__(app, secret, **kw)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        cookies = http.cookies.SimpleCookie()
        for k, v in scope.get("headers", ()):
            if k == b"cookie":
                try:
                    cookies.load(v.decode("latin-1"))
                except http.cookies.CookieError:
                    pass
        have = cookies.get(self.cookie_name)
        if have is not None and self._valid(have.value):
            scope["csrf_token"] = have.value
        else:
            scope["csrf_token"] = self._generate_csrf_token()
            scope["csrf_new"] = True
        if scope["method"] not in self.safe_methods:
            body, too_big = await _read_body(receive)
            if too_big:
                await PlainTextResponse("request too large", status_code=413)(
                    scope, receive, send)
                return
            ctype = dict(scope.get("headers", ())).get(b"content-type", b"")
            if ctype.split(b";")[0].strip() == b"application/x-www-form-urlencoded":
                try:
                    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"),
                                                 max_num_fields=FORM_FIELDS_MAX)
                except ValueError:      # more fields than any desk form has
                    await PlainTextResponse("too many form fields", status_code=413)(
                        scope, receive, send)
                    return
                scope["csrf_form"] = (form.get(CSRF_FIELD) or [None])[0]
            sent = False

            async def replay():
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()
            receive = replay
        await super().__call__(scope, receive, send)

    def _valid(self, token):
        try:
            self.serializer.loads(token)
            return True
        except Exception:       # noqa: BLE001 - itsdangerous: any bad token is no token
            return False

    async def _get_submitted_csrf_token(self, request):
        return request.headers.get(self.header_name) or request.scope.get("csrf_form")

    async def send(self, message, send, scope):
        if message["type"] == "http.response.start" and scope.get("csrf_new"):
            headers = MutableHeaders(scope=message)
            c = http.cookies.SimpleCookie()
            c[self.cookie_name] = scope["csrf_token"]
            c[self.cookie_name]["path"] = self.cookie_path
            c[self.cookie_name]["httponly"] = self.cookie_httponly
            c[self.cookie_name]["samesite"] = self.cookie_samesite
            headers.append("set-cookie", c.output(header="").strip())
        await send(message)

    def _get_error_response(self, request):
        return PlainTextResponse(
            "403: the form's token is missing or wrong (CSRF); reload the page and try "
            "again", status_code=403)


async def _read_body(receive):
    chunks, size = [], 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            break
        b = msg.get("body", b"")
        size += len(b)
        if size > BODY_MAX:
            return b"", True
        chunks.append(b)
        if not msg.get("more_body"):
            break
    return b"".join(chunks), False


class SecurityHeaders:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_h(message):
            if message["type"] == "http.response.start":
                h = MutableHeaders(scope=message)
                h["content-security-policy"] = CSP
                h["x-frame-options"] = "DENY"
                h["x-content-type-options"] = "nosniff"
                h["referrer-policy"] = "no-referrer"
                h["cross-origin-opener-policy"] = "same-origin"
                h["cross-origin-resource-policy"] = "same-origin"
            await send(message)
        await self.app(scope, receive, send_h)
