// Headless Chromium against the running demo (examples/demo.rs): log in, see the name, reload and
// still see it, log out and see it gone; the session cookie is HttpOnly (invisible to JavaScript).
// Runs against either store: with DEMO_STORE=memory the page also lists this one active session.
//
// Usage: DEMO_URL=http://127.0.0.1:8080/ [DEMO_STORE=memory] node demo.spec.mjs   (run.sh starts
// the demo for you)
// Prints one line per check and, last, `N passed, N failed`. Exit status 0 only if all passed.

import assert from "node:assert/strict";
import { STORE, URL, check, device, finish, launch } from "./harness.mjs";

const COOKIE = "session_id";
const NAME = "José Lovelace";

const browser = await launch();
const { context, page } = await device(browser);
const sessionCookie = async () => (await context.cookies(URL)).find((c) => c.name === COOKIE);
const status = () => page.locator("#status").innerText();

await check("the demo opens signed out, with no session cookie", async () => {
  const res = await page.goto(URL);
  assert.equal(res.status(), 200);
  assert.match(await status(), /not signed in/);
  assert.equal(await sessionCookie(), undefined);
});

await check("logging in shows the name", async () => {
  await page.fill("#name", NAME);
  await Promise.all([page.waitForURL(URL), page.click("#login")]);
  assert.equal(await page.locator("#user").innerText(), NAME);
  assert.equal(await page.locator("#visits").innerText(), "1");
});

await check("the session cookie is HttpOnly and invisible to document.cookie", async () => {
  const c = await sessionCookie();
  assert.ok(c, "the browser holds the session cookie");
  assert.ok(c.value.length > 0);
  assert.equal(c.httpOnly, true);
  assert.equal(c.sameSite, "Lax");
  assert.ok(c.expires > Date.now() / 1000, "a persistent cookie with an expiry");
  const visible = await page.evaluate(() => document.cookie);
  assert.ok(!visible.includes(COOKIE), `document.cookie = ${JSON.stringify(visible)}`);
});

await check("the app saw the session as headers, not the cookie", async () => {
  const table = await page.locator("#headers").innerText();
  assert.match(table, /x-session-id/);
  assert.match(table, /x-session-user/);
  assert.ok(!table.includes(COOKIE), table);
});

await check("the page says since when, and what this store can list", async () => {
  const table = await page.locator("#headers").innerText();
  const created = table.match(/x-session-created\s+(\S+)/)?.[1];
  assert.match(created ?? "", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, table);
  assert.equal(await page.locator("#since").innerText(), created);
  if (STORE === "memory") {
    const rows = page.locator("#sessions tbody tr");
    assert.equal(await rows.count(), 1, await page.locator("#sessions").innerText());
    const id = table.match(/x-session-id\s+(\S+)/)?.[1] ?? "";
    assert.equal(id.length, 43, table);
    assert.equal(await rows.first().locator("td").first().innerText(), id.slice(0, 8));
    assert.match(await rows.first().innerText(), /this device/);
  } else {
    assert.equal(
      await page.locator("#no-store").innerText(),
      "Active sessions and sign-out-everywhere need a server-side store: run with DEMO_STORE=memory",
    );
    assert.equal(await page.locator("#sessions").count(), 0);
    assert.equal(await page.locator("#logout-everywhere").count(), 0);
  }
});

await check("after a reload the name is still there and the counter went up", async () => {
  await page.reload();
  assert.equal(await page.locator("#user").innerText(), NAME);
  assert.equal(await page.locator("#visits").innerText(), "2");
});

await check("logging out shows the name gone and drops the cookie", async () => {
  await Promise.all([page.waitForURL(URL), page.click("#logout")]);
  assert.match(await status(), /not signed in/);
  assert.equal(await page.locator("#user").count(), 0);
  assert.ok(!(await page.content()).includes(NAME));
  assert.equal(await sessionCookie(), undefined);
});

await check("still signed out after another reload", async () => {
  await page.reload();
  assert.match(await status(), /not signed in/);
});

await finish(browser);
