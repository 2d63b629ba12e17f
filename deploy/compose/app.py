"""The compose demo's app: it knows nothing of cookies, only session-proxy's header protocol.

The same app as examples/demo.rs, in the Python standard library so the compose file needs no
build step for it (python:3.12-slim runs this file as it is):
- GET /        the login form, or who you are: every X-Session-* header received, and a visit
               counter bumped with `X-Session-Set: visits=<n+1>`;
- POST /login  form field `name`: `X-Session-Regenerate: 1` (a new ID at the privilege change)
               and `X-Session-Set` for the user and the counter;
- POST /logout `X-Session-Clear: 1`.
"""

import html
import json
import os
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class App(BaseHTTPRequestHandler):
    def answer(self, status, body, session=(), location=None):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if location:
            self.send_header("Location", location)
        for name, value in session:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path != "/":
            return self.answer(404, "not found\n")
        user = self.headers.get("X-Session-User")
        if user is None:
            return self.answer(200, '<form method="post" action="/login">'
                               '<input name="name" placeholder="your name"> '
                               "<button>log in</button></form>\n")
        visits = int(self.headers.get("X-Session-Visits", "0")) + 1
        seen = "".join(f"<li>{html.escape(k)}: {html.escape(v)}</li>"
                       for k, v in self.headers.items() if k.lower().startswith("x-session-"))
        self.answer(200, f"<p>hello {html.escape(user)}, visit {visits}</p><ul>{seen}</ul>"
                    '<form method="post" action="/logout"><button>log out</button></form>\n',
                    session=[("X-Session-Set", f"visits={visits}")])

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        if self.path == "/login":
            name = form.get("name", ["anonymous"])[0]
            # JSON-encoded (ASCII), so any name survives the header; the proxy stores the string.
            return self.answer(303, "", location="/", session=[
                ("X-Session-Regenerate", "1"),
                ("X-Session-Set", f"user={json.dumps(name)}"),
                ("X-Session-Set", "visits=0"),
            ])
        if self.path == "/logout":
            return self.answer(303, "", location="/", session=[("X-Session-Clear", "1")])
        self.answer(404, "not found\n")


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "3000"))
    ThreadingHTTPServer(("0.0.0.0", port), App).serve_forever()
