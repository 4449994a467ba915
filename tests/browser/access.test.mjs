// The page without a mouse and on a phone: a whole exchange (sign in, add a contact, chat, send a
// file, accept it, save it) with the keyboard alone, and the same screens at a phone's width.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  createAccount, fileBytes, hostAndBrowser, openConversation, passwordOf, screenshot, sha256, signIn,
} from './harness.mjs';

const shared = hostAndBrowser();

/** What has the keyboard focus: its id, or its text. */
function focused(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    return el.id || el.textContent.trim();
  });
}

/** Presses Tab until the focused element is `target` (an id or a text), as a person would. */
async function tabTo(page, target) {
  for (let presses = 0; presses < 40; presses += 1) {
    if (await focused(page) === target) {
      const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
      assert.notEqual(outline, 'none', `${target} shows that it has the focus`);
      return;
    }
    await page.keyboard.press('Tab');
  }
  assert.fail(`Tab never reached ${target}; it stopped on ${await focused(page)}`);
}

async function signInByKeyboard(page, user, delivery) {
  await createAccount(shared.host.base, user);
  await page.goto(`${shared.host.base}/`);
  await tabTo(page, 'user');
  await page.keyboard.type(user);
  await page.keyboard.press('Tab');
  assert.equal(await focused(page), 'password');
  await page.keyboard.type(passwordOf(user));
  await page.keyboard.press('Tab');
  // The radio group takes the focus on its checked button; an arrow moves the choice.
  if (delivery === 'pull') await page.keyboard.press('ArrowRight');
  await tabTo(page, 'sign-in-button');
  await page.keyboard.press('Enter');
  await page.waitForSelector(`#status:text("Connected as ${user}.")`);
  assert.equal(await focused(page), 'contact', 'the keyboard is left in the contact field');
}

test('a whole exchange with the keyboard alone', async () => {
  const context = await shared.browser.newContext({ acceptDownloads: true });
  const kim = await context.newPage();
  const lee = await (await shared.browser.newContext({ acceptDownloads: true })).newPage();
  await signInByKeyboard(kim, 'kim', 'push');
  await signInByKeyboard(lee, 'lee', 'pull');

  await kim.keyboard.type('lee');
  await kim.keyboard.press('Enter');
  await kim.waitForSelector('#peer:text("Conversation with lee")');
  assert.equal(await focused(kim), 'text', 'a new conversation puts the keyboard in its message field');
  await kim.keyboard.type('Typed, not clicked');
  await kim.keyboard.press('Enter');
  await lee.waitForSelector('#messages li.theirs:text("Typed, not clicked")');
  assert.equal(await focused(lee), 'contact', 'a message arriving does not move the keyboard');

  const data = fileBytes(300 * 1024, 17);
  // Waiting starts before the key is pressed, so that the chooser is caught whenever it opens.
  const choosing = kim.waitForEvent('filechooser');
  await tabTo(kim, 'file');
  await kim.keyboard.press('Space');
  const chooser = await choosing;
  await chooser.setFiles({ name: 'typed.bin', mimeType: 'application/octet-stream', buffer: data });

  const offer = lee.locator('li.transfer', { hasText: 'typed.bin' });
  await offer.locator('button:text("Accept")').waitFor();
  await tabTo(lee, 'Accept');
  await screenshot(lee, '14-keyboard-accept');
  await lee.keyboard.press('Enter');
  await offer.locator('a.save').waitFor({ timeout: 30_000 });
  await tabTo(lee, 'Save typed.bin');
  const [download] = await Promise.all([lee.waitForEvent('download'), lee.keyboard.press('Enter')]);
  assert.equal(sha256(readFileSync(await download.path())), sha256(data));
  await context.close();
  await lee.context().close();
});

test('on a phone-sized screen everything fits its width and stays usable', async () => {
  const phone = { width: 360, height: 740 };
  const mia = await signIn(shared.browser, shared.host.base, 'mia', 'push', { viewport: phone });
  const ned = await signIn(shared.browser, shared.host.base, 'ned', 'push', { viewport: phone });
  await openConversation(mia, 'ned');
  await mia.fill('#text', 'a-very-long-word-that-has-no-spaces-in-it-anywhere-at-all-to-break-on');
  await mia.click('#send-text');
  const name = `${'holiday-pictures-from-the-seaside-'.repeat(4)}2026.png`;
  const data = fileBytes(200 * 1024, 19);
  await mia.setInputFiles('#file', { name, mimeType: 'application/octet-stream', buffer: data });
  const card = ned.locator('li.transfer', { hasText: 'holiday-pictures' });
  await card.locator('a.save').waitFor({ timeout: 30_000 });
  for (const [who, page] of [['mia', mia], ['ned', ned]]) {
    const layout = await page.evaluate(() => {
      const box = (selector) => document.querySelector(selector).getBoundingClientRect();
      return {
        width: window.innerWidth,
        scrollWidth: document.documentElement.scrollWidth,
        navBottom: box('nav').bottom,
        conversationTop: box('#conversation').top,
        rightmost: Math.max(...['#text', '#send-text', '#file-label', '#messages li:last-child']
          .map((selector) => box(selector).right)),
      };
    });
    assert.ok(layout.scrollWidth <= layout.width, `${who}: the page scrolls sideways (${layout.scrollWidth} > ${layout.width})`);
    assert.ok(layout.navBottom <= layout.conversationTop, `${who}: contacts sit above the conversation`);
    assert.ok(layout.rightmost <= layout.width, `${who}: a control or message runs past the edge`);
    await screenshot(page, `15-phone-${who}`);
  }
  await mia.context().close();
  await ned.context().close();
});
