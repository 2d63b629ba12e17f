// Two devices, one user, against the demo on the memory store (DEMO_STORE=memory): each device
// lists both sessions and marks its own; "Sign out other devices" ends the other one only; "Sign out
// everywhere" ends both; a second user's session is neither listed nor ended.
//
// Usage: DEMO_URL=http://127.0.0.1:8080/ DEMO_STORE=memory node sessions.spec.mjs   (run.sh starts
// the demo for you)
// Prints one line per check and, last, `N passed, N failed`. Exit status 0 only if all passed.

import assert from "node:assert/strict";
import { URL, check, device, finish, launch, login } from "./harness.mjs";

const NAME = "Ada <Lovelace> & Co";
const OTHER = "Grace Hopper";

const browser = await launch();
const [a, b, other] = [await device(browser), await device(browser), await device(browser)];

/** After a reload: the short handles `page` lists, and the one it marks "this device". */
async function activeSessions(page) {
  await page.reload();
  const rows = page.locator("#sessions tbody tr");
  const listed = [];
  const marked = [];
  for (const row of await rows.all()) {
    const handle = await row.locator("td").first().innerText();
    listed.push(handle);
    if ((await row.innerText()).includes("this device")) marked.push(handle);
  }
  return { listed, marked };
}

const signedOut = async (page) => {
  await page.reload();
  assert.match(await page.locator("#status").innerText(), /not signed in/);
};
const signedIn = async (page, name) =>
  assert.equal(await page.locator("#user").innerText(), name);

await check("the same user signs in on two devices, another user on a third", async () => {
  await login(a.page, NAME);
  await login(b.page, NAME);
  await login(other.page, OTHER);
  await signedIn(a.page, NAME);
  await signedIn(b.page, NAME);
  await signedIn(other.page, OTHER);
});

await check("each device lists both sessions and marks itself, and only itself", async () => {
  const fromA = await activeSessions(a.page);
  const fromB = await activeSessions(b.page);
  for (const seen of [fromA, fromB]) {
    assert.equal(seen.listed.length, 2, JSON.stringify(seen));
    assert.equal(seen.marked.length, 1, JSON.stringify(seen));
    assert.match(seen.marked[0], /^[A-Za-z0-9_-]{8}$/);
  }
  assert.deepEqual([...fromA.listed].sort(), [...fromB.listed].sort());
  assert.notEqual(fromA.marked[0], fromB.marked[0]);
});

await check("the other user's session is not listed", async () => {
  const seen = await activeSessions(other.page);
  assert.equal(seen.listed.length, 1, JSON.stringify(seen));
  assert.equal(seen.marked.length, 1, JSON.stringify(seen));
});

await check("\"Sign out other devices\" keeps this one and ends the other", async () => {
  await Promise.all([a.page.waitForURL(URL), a.page.click("#logout-others")]);
  await signedIn(a.page, NAME);
  const seen = await activeSessions(a.page);
  assert.equal(seen.listed.length, 1, JSON.stringify(seen));
  assert.equal(seen.marked.length, 1, JSON.stringify(seen));
  await signedOut(b.page);
});

await check("signed in again on the second device, both are listed again", async () => {
  await login(b.page, NAME);
  assert.equal((await activeSessions(a.page)).listed.length, 2);
  assert.equal((await activeSessions(b.page)).listed.length, 2);
});

await check("\"Sign out everywhere\" shows the login form on this device", async () => {
  await Promise.all([a.page.waitForURL(URL), a.page.click("#logout-everywhere")]);
  assert.match(await a.page.locator("#status").innerText(), /not signed in/);
  assert.equal(await a.page.locator("#name").count(), 1);
  assert.ok(!(await a.page.content()).includes("Lovelace"));
});

await check("...and on the other device at its next page load", async () => {
  await signedOut(b.page);
  assert.equal(await b.page.locator("#name").count(), 1);
});

await check("the other user is still signed in", async () => {
  await signedIn(other.page, OTHER);
  await other.page.reload();
  await signedIn(other.page, OTHER);
});

await finish(browser);
