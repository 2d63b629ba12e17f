// Headless Chromium against the running demo (examples/demo.rs): log in, see the name, reload and
// still see it, log out and see it gone; the session cookie is HttpOnly (invisible to JavaScript).
//
// Usage: DEMO_URL=http://127.0.0.1:8080/ node demo.spec.mjs   (run.sh starts the demo for you)
// Prints one line per check and, last, `N passed, N failed`. Exit status 0 only if all passed.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const URL = process.env.DEMO_URL ?? "http://127.0.0.1:8080/";
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const COOKIE = "session_id";
const NAME = "José Lovelace";

// Nothing here may hang: the whole run is bounded.
const watchdog = setTimeout(() => {
  console.log("FAIL watchdog: the browser test took longer than 90s");
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}, 90_000);

let passed = 0;
let failed = 0;
let broken = false;

/** One check. After a failure the flow is broken, so the rest are counted failed, not run. */
async function check(name, fn) {
  if (broken) {
    failed++;
    console.log(`FAIL ${name} (not run: an earlier step failed)`);
    return;
  }
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    broken = true;
    console.log(`FAIL ${name}\n     ${String(e?.stack ?? e).split("\n").join("\n     ")}`);
  }
}

const userDataDir = mkdtempSync(join(tmpdir(), "session-proxy-chromium-"));
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: 30_000,
  });
} catch (e) {
  console.log(`FAIL launch ${CHROMIUM}\n     ${e?.message ?? e}`);
  console.log("0 passed, 1 failed");
  rmSync(userDataDir, { recursive: true, force: true });
  process.exit(1);
}

const page = context.pages()[0] ?? (await context.newPage());
page.setDefaultTimeout(10_000);
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

await context.close().catch(() => {});
rmSync(userDataDir, { recursive: true, force: true });
clearTimeout(watchdog);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
