// Accounts as a person meets them in the page: creating one, signing in with the wrong password,
// too many attempts, signing out, one user in two tabs (two devices); and a deployment whose
// sign-up is closed offers none.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createAccount, fillSignIn, hostAndBrowser, launchBrowser, openConversation, passwordOf,
  screenshot, startHost,
} from './harness.mjs';

const shared = hostAndBrowser();

async function freshPage(user) {
  const page = await (await shared.browser.newContext()).newPage();
  page.on('pageerror', (error) => console.error(`[${user}] page error:`, error));
  await page.goto(`${shared.host.base}/`);
  return page;
}

test('a new user creates an account from the page and is signed in', async () => {
  const page = await freshPage('nina');
  await page.locator('#sign-up-button').waitFor({ state: 'visible' });
  await fillSignIn(page, 'nina', 'push', 'a long new password');
  await screenshot(page, '30-sign-up');
  await page.click('#sign-up-button');
  await page.waitForSelector('#status:text("Connected as nina.")');
  assert.equal(await page.locator('#password').inputValue(), '', 'the page keeps no password');
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }));
  assert.ok(!stored.includes('a long new password'), 'nor does the browser storage');
  // The name is now taken.
  const other = await freshPage('someone else');
  await other.locator('#sign-up-button').waitFor({ state: 'visible' });
  await fillSignIn(other, 'nina', 'push', 'another password');
  await other.click('#sign-up-button');
  await other.waitForSelector('#sign-in-error:text("The name nina is taken. Pick another, or sign in.")');
  await page.context().close();
  await other.context().close();
});

test('a wrong password is refused with a sentence, and too many attempts wait', async () => {
  await createAccount(shared.host.base, 'omar');
  const page = await freshPage('omar');
  await fillSignIn(page, 'omar', 'push', 'not my password');
  await page.click('#sign-in-button');
  await page.waitForSelector('#sign-in-error:text("Wrong user name or password.")');
  assert.equal(await page.locator('#password').inputValue(), '', 'the password field is emptied');
  assert.equal(await page.locator('#app').isHidden(), true, 'the page stays at the sign-in form');
  await screenshot(page, '31-wrong-password');
  // Guessing on: the fifth wrong password of the minute is answered with how long to wait (each
  // sign-in from the page is one attempt: the page signs in over its one SIP connection).
  let sentence = '';
  let wrong = 1;
  while (wrong < 10) {
    await fillSignIn(page, 'omar', 'push', `guess ${wrong}`);
    await page.click('#sign-in-button');
    await page.waitForFunction(() => document.getElementById('sign-in-error').textContent !== '');
    sentence = await page.locator('#sign-in-error').textContent();
    wrong += 1;
    if (sentence.startsWith('Too many')) break;
  }
  assert.match(sentence, /^Too many failed attempts\. Try again in \d+ seconds\.$/);
  assert.equal(wrong, 5, 'locked at the fifth wrong password');
  // While it lasts, the right password waits too.
  await fillSignIn(page, 'omar', 'push');
  await page.click('#sign-in-button');
  await page.waitForSelector('#sign-in-error:text-matches("^Too many failed attempts")');
  await screenshot(page, '32-too-many-attempts');
  await page.context().close();
});

test('signing out returns to the form and closes the connections', async () => {
  await createAccount(shared.host.base, 'pia');
  await createAccount(shared.host.base, 'quinn');
  const pia = await freshPage('pia');
  await fillSignIn(pia, 'pia', 'push');
  await pia.click('#sign-in-button');
  await pia.waitForSelector('#status:text("Connected as pia.")');
  const quinn = await freshPage('quinn');
  await fillSignIn(quinn, 'quinn', 'push');
  await quinn.click('#sign-in-button');
  await quinn.waitForSelector('#status:text("Connected as quinn.")');
  await openConversation(quinn, 'pia');
  await pia.click('#sign-out');
  await pia.locator('#sign-in').waitFor({ state: 'visible' });
  assert.equal(await pia.locator('#status').textContent(), 'Not connected.');
  assert.equal(await pia.locator('#contacts li').count(), 0, 'nothing of the session is left on screen');
  // Pia is offline now: Quinn's chat says so.
  await quinn.fill('#text', 'are you there?');
  await quinn.click('#send-text');
  await quinn.waitForSelector('#messages li.notice:text("pia is offline. Try again when they are online.")');
  // And Pia signs in again with her password.
  await fillSignIn(pia, 'pia', 'push');
  await pia.click('#sign-in-button');
  await pia.waitForSelector('#status:text("Connected as pia.")');
  assert.equal(passwordOf('pia').length > 0, true);
  await pia.context().close();
  await quinn.context().close();
});

test('two tabs of one user are two devices, and both receive a chat', async () => {
  await createAccount(shared.host.base, 'rosa');
  await createAccount(shared.host.base, 'sam');
  // Two tabs of one browser: each keeps its own device identity (sessionStorage is per tab).
  const context = await shared.browser.newContext();
  const tabs = [];
  for (const name of ['first tab', 'second tab']) {
    const tab = await context.newPage();
    tab.on('pageerror', (error) => console.error(`[rosa, ${name}] page error:`, error));
    await tab.goto(`${shared.host.base}/`);
    await fillSignIn(tab, 'rosa', 'push');
    await tab.click('#sign-in-button');
    await tab.waitForSelector('#status:text("Connected as rosa.")');
    await openConversation(tab, 'sam');
    tabs.push(tab);
  }
  const instances = await Promise.all(tabs.map((tab) => tab.evaluate(() => sessionStorage.getItem('rcs-instance:rosa'))));
  assert.match(instances[0], /^urn:uuid:[0-9a-f-]{36}$/);
  assert.notEqual(instances[0], instances[1], 'each tab is a device of its own');
  const sam = await freshPage('sam');
  await fillSignIn(sam, 'sam', 'push');
  await sam.click('#sign-in-button');
  await sam.waitForSelector('#status:text("Connected as sam.")');
  await openConversation(sam, 'rosa');
  await sam.fill('#text', 'one message, two tabs');
  await sam.click('#send-text');
  for (const tab of tabs) {
    await tab.waitForSelector('#messages li.theirs:text("one message, two tabs")');
  }
  await screenshot(tabs[1], '33-second-tab-got-the-chat');
  // Either tab answers over its one SIP connection.
  await tabs[1].fill('#text', 'from my second tab');
  await tabs[1].click('#send-text');
  await sam.waitForSelector('#messages li.theirs:text("from my second tab")');
  // Closing one tab leaves the other registered: a chat still reaches it.
  await tabs[0].close();
  await sam.fill('#text', 'still there?');
  await sam.click('#send-text');
  await tabs[1].waitForSelector('#messages li.theirs:text("still there?")');
  await context.close();
  await sam.context().close();
});

test('a deployment with sign-up closed offers no sign-up', async () => {
  const host = await startHost({ sign_up: 'closed' });
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage();
    await page.goto(`${host.base}/`);
    await page.waitForLoadState('networkidle');
    assert.equal(await page.locator('#sign-up-button').isHidden(), true);
    await assert.rejects(createAccount(host.base, 'rita'), /403 sign-up is closed/);
  } finally {
    await browser.close();
    await host.stop();
  }
});
