"""The session-proxy demo app in Flask: sign in, who am I, sign out.

It never reads a cookie. Everything it knows about the visitor arrives as X-Session-* request
headers from session-proxy (which strips any a client sent), and it changes the session with
X-Session-* response headers. Run: PORT=3000 python app.py, with session-proxy in front.
"""
import html
import json
import os

from flask import Flask, redirect, request

app = Flask(__name__)
FORM = ('<p id="status">You are not signed in.</p>\n<form method="post" action="/login">'
        '<label>Name <input name="name" id="name" autofocus required></label> '
        '<button type="submit" id="login">Sign in</button></form>')


def verify_assertion(headers):
    """Whether to trust this request's X-Session-* headers. Only the proxy can reach the app, so
    yes; issue 14 will check the signed X-Session-Assertion here when SESSION_PROXY_JWKS is set."""
    return True


def session_value(name):
    """A session value from X-Session-<Name>: a printable ASCII string arrives as it is, anything
    else (non-ASCII text, numbers) as ASCII JSON, which a leading quote marks for a string."""
    raw = request.headers.get("X-Session-" + name)
    if raw is None or not verify_assertion(request.headers):
        return None
    return json.loads(raw) if raw.startswith('"') else raw


def page(body):
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>session-proxy '
            f'demo (Python)</title></head>\n<body><h1>session-proxy demo (Python)</h1>\n{body}\n'
            '</body></html>\n')


@app.get("/")
def who_am_i():
    user = session_value("User")
    if user is None:
        return page(FORM)
    visits = str(session_value("Visits") or 0)
    visits = (int(visits) if visits.isdigit() else 0) + 1
    body = (f'<p id="status">Signed in as <strong id="user">{html.escape(str(user))}</strong>. '
            f'Visits this session: <span id="visits">{visits}</span>.</p>\n'
            '<form method="post" action="/logout"><button type="submit" id="logout">Sign out'
            '</button></form>')
    return page(body), {"X-Session-Set": f"visits={visits}"}


@app.post("/login")
def login():
    response = redirect("/", 303)
    name = request.form.get("name", "").strip()
    if name:
        # A JSON string, so that a name like `42` stays text; ASCII-only JSON (DEL escaped too)
        # is always a legal header value. A new session ID at sign-in defeats session fixation.
        user = json.dumps(name).replace("\x7f", "\\u007f")
        response.headers.add("X-Session-Set", f"user={user}")
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
