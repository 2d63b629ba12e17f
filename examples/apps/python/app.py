"""The session-proxy demo app in Flask: sign in, who am I, sign out.

It never reads a cookie. Everything it knows about the visitor arrives as X-Session-* request
headers from session-proxy (which strips any a client sent), and it changes the session with
X-Session-* response headers. Run: PORT=3000 python app.py, with session-proxy in front.
"""
import html
import json
import os

import jwt
from flask import Flask, redirect, request

app = Flask(__name__)
# With SESSION_PROXY_JWKS set, the session comes only from the proxy's signed X-Session-Assertion:
# whatever reaches the app some other way can forge plain X-Session-* headers, not a token.
# PyJWKClient fetches the JWKS on first use, caches it, and refetches when a token names a new kid.
JWKS_URL = os.environ.get("SESSION_PROXY_JWKS")
JWKS = jwt.PyJWKClient(JWKS_URL) if JWKS_URL else None
AUDIENCE = os.environ.get("SESSION_PROXY_AUDIENCE")  # aud is checked only when this is set
FORM = ('<p id="status">You are not signed in.</p>\n<form method="post" action="/login">'
        '<label>Name <input name="name" id="name" autofocus required></label> '
        '<button type="submit" id="login">Sign in</button></form>')


def verify_assertion(headers):
    """The `session` claim of a valid X-Session-Assertion (EdDSA signature by a key of the JWKS,
    iss, aud when SESSION_PROXY_AUDIENCE is set, exp), else None: a missing, forged or expired
    token, or a JWKS that cannot be fetched, is anonymous (fail closed)."""
    token = headers.get("X-Session-Assertion")
    if token is None:
        return None
    try:
        claims = jwt.decode(token, JWKS.get_signing_key_from_jwt(token).key, algorithms=["EdDSA"],
                            issuer="session-proxy", audience=AUDIENCE,
                            options={"verify_aud": AUDIENCE is not None,
                                     "require": ["iss", "exp", "session"]})
    except jwt.PyJWTError:
        return None
    return claims["session"] if isinstance(claims["session"], dict) else None


def session_data():
    """(session, verified): the session as session-proxy sent it, {} without one. With
    SESSION_PROXY_JWKS set, only a verified assertion counts. Without, X-Session-Data (the whole
    map as JSON) is exact for every value, where an X-Session-<Key> header cannot tell the name
    `"Ann"` (sent as it is, being printable ASCII) from the JSON for Ann."""
    if JWKS is not None:
        session = verify_assertion(request.headers)
        return (session, True) if session is not None else ({}, False)
    raw = request.headers.get("X-Session-Data")
    if raw is None:
        return {}, False
    try:
        data = json.loads(raw)
    except ValueError:
        return {}, False
    return (data if isinstance(data, dict) else {}), False


def page(body):
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>session-proxy '
            f'demo (Python)</title></head>\n<body><h1>session-proxy demo (Python)</h1>\n{body}\n'
            '</body></html>\n')


@app.get("/")
def who_am_i():
    session, verified = session_data()
    user, visits = session.get("user"), session.get("visits")
    if not isinstance(user, str):
        return page(FORM)
    visits = (visits if isinstance(visits, int) else 0) + 1
    body = (f'<p id="status">Signed in as <strong id="user">{html.escape(user)}</strong>. '
            f'Visits this session: <span id="visits">{visits}</span>.</p>\n'
            + ('<p id="assertion">assertion: verified</p>\n' if verified else '')
            + '<p>The session headers this app got (never a cookie):</p>\n<table id="headers">\n'
            + "".join(f"<tr><th>{html.escape(k.lower())}</th><td>{html.escape(v)}</td></tr>\n"
                      for k, v in sorted(request.headers.items())
                      if k.lower().startswith("x-session-"))
            + '</table>\n<form method="post" action="/logout"><button type="submit" id="logout">Sign out'
            '</button></form>')
    return page(body), {"X-Session-Set": f"visits={visits}"}


@app.post("/login")
def login():
    response = redirect("/", 303)
    name = request.form.get("name", "").strip()
    if name:
        # A JSON string, so that a name like `42` stays text; json.dumps writes ASCII only (DEL
        # as \u007f too), always a legal header value. A new session ID at sign-in defeats
        # session fixation.
        response.headers.add("X-Session-Set", f"user={json.dumps(name)}")
        response.headers.add("X-Session-Set", "visits=0")
        response.headers.add("X-Session-Regenerate", "1")
    return response


@app.post("/logout")
def logout():
    response = redirect("/", 303)
    response.headers["X-Session-Clear"] = "1"
    return response


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "3000")))
