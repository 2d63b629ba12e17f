// The session-proxy demo app in Express: sign in, who am I, sign out.
//
// It never reads a cookie. Everything it knows about the visitor arrives as X-Session-* request
// headers from session-proxy (which strips any a client sent), and it changes the session with
// X-Session-* response headers. Run: PORT=3000 node app.js, with session-proxy in front.
const express = require("express");

const app = express();
app.use(express.urlencoded({ extended: false }));
const FORM = '<p id="status">You are not signed in.</p>\n<form method="post" action="/login">' +
  '<label>Name <input name="name" id="name" autofocus required></label> ' +
  '<button type="submit" id="login">Sign in</button></form>';

// Whether to trust this request's X-Session-* headers. Only the proxy can reach the app, so yes;
// issue 14 will check the signed X-Session-Assertion here when SESSION_PROXY_JWKS is set.
function verifyAssertion(headers) {
  return true;
}

// The session as session-proxy sent it, {} without one. X-Session-Data (the whole map as JSON) is
// exact for every value, where an X-Session-<Key> header cannot tell the name `"Ann"` (sent as it
// is, being printable ASCII) from the JSON for Ann.
function sessionData(req) {
  const raw = req.get("X-Session-Data");
  if (raw === undefined || !verifyAssertion(req.headers)) return {};
  try {
    const data = JSON.parse(raw);
    return data !== null && typeof data === "object" ? data : {};
  } catch {
    return {};
  }
}

const ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escape = (s) => String(s).replace(/[&<>"']/g, (c) => ENTITIES[c]);
const page = (body) => '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>' +
  'session-proxy demo (Node)</title></head>\n<body><h1>session-proxy demo (Node)</h1>\n' +
  `${body}\n</body></html>\n`;

app.get("/", (req, res) => {
  const { user, visits: seen } = sessionData(req);
  if (typeof user !== "string") return res.type("html").send(page(FORM));
  const visits = (Number.isInteger(seen) ? seen : 0) + 1;
  res.set("X-Session-Set", `visits=${visits}`).type("html").send(page(
    `<p id="status">Signed in as <strong id="user">${escape(user)}</strong>. ` +
    `Visits this session: <span id="visits">${visits}</span>.</p>\n` +
    '<p>The session headers this app got (never a cookie):</p>\n<table id="headers">\n' +
    Object.entries(req.headers).filter(([k]) => k.startsWith("x-session-")).sort()
      .map(([k, v]) => `<tr><th>${escape(k)}</th><td>${escape(v)}</td></tr>\n`).join("") +
    "</table>\n" +
    '<form method="post" action="/logout"><button type="submit" id="logout">Sign out</button></form>'));
});

app.post("/login", (req, res) => {
  const name = String((req.body && req.body.name) || "").trim();
  if (name) {
    // A JSON string, so that a name like `42` stays text; ASCII-only JSON (JSON.stringify keeps
    // non-ASCII, so escape it) is always a legal header value. A new session ID at sign-in
    // defeats session fixation.
    const user = JSON.stringify(name).replace(/[\u007f-\uffff]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
    res.append("X-Session-Set", [`user=${user}`, "visits=0"]).set("X-Session-Regenerate", "1");
  }
  res.redirect(303, "/");
});

app.post("/logout", (req, res) => res.set("X-Session-Clear", "1").redirect(303, "/"));

app.listen(Number(process.env.PORT || 3000), "127.0.0.1");
