// What every spec shares: the demo's address, a bounded run, one line per check, and the last line
// `N passed, N failed` that run.sh adds up.

import { chromium } from "playwright-core";

export const URL = process.env.DEMO_URL ?? "http://127.0.0.1:8080/";
/** The demo's store (run.sh starts it with DEMO_STORE): `cookie` or `memory`. */
export const STORE = process.env.DEMO_STORE || "cookie";
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

let passed = 0;
let failed = 0;
let broken = false;

// Nothing here may hang: the whole run is bounded.
const watchdog = setTimeout(() => {
  console.log("FAIL watchdog: the browser test took longer than 90s");
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}, 90_000);

/** One check. After a failure the flow is broken, so the rest are counted failed, not run. */
export async function check(name, fn) {
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

/** Headless Chromium; each `browser.newContext()` is a device of its own (its own cookie jar). */
export async function launch() {
  try {
    return await chromium.launch({
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
    process.exit(1);
  }
}

/** A new device with one page open. */
export async function device(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  return { context, page };
}

/** Signs `name` in on `page` through the login form. */
export async function login(page, name) {
  await page.goto(URL);
  await page.fill("#name", name);
  await Promise.all([page.waitForURL(URL), page.click("#login")]);
}

/** Closes the browser, prints the summary and exits: 0 only if every check passed. */
export async function finish(browser) {
  await browser.close().catch(() => {});
  clearTimeout(watchdog);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}
