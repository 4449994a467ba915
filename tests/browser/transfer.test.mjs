// Alice and Bob in two headless Chromium pages against the local edge host: chat both ways, then
// a 5 MiB file picked by Alice, accepted by Bob (pull), saved with the digest it was sent with; the
// same pushed; and the HTTP fallback link of the offer.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  fileBytes, launchBrowser, openConversation, screenshot, sha256, signIn, startHost, startRelay,
} from './harness.mjs';

const FIVE_MIB = 5 * 1024 * 1024;
let host;
let browser;

before(async () => {
  host = await startHost();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await host?.stop();
});

async function saveReceived(page, card) {
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    card.locator('a.save').click(),
  ]);
  return readFileSync(await download.path());
}

test('chat, then a file by the picker, accepted by the recipient, arrives byte-identical', async () => {
  const alice = await signIn(browser, host.base, 'alice', 'push');
  const bob = await signIn(browser, host.base, 'bob', 'pull');
  await screenshot(alice, '01-alice-signed-in');

  await openConversation(alice, 'bob');
  await openConversation(bob, 'alice');
  await alice.fill('#text', 'Hello Bob <b>not bold</b>');
  await alice.click('#send-text');
  await bob.waitForSelector('#messages li.theirs');
  assert.equal(await bob.textContent('#messages li.theirs'), 'Hello Bob <b>not bold</b>');
  assert.equal(await bob.locator('#messages li.theirs b').count(), 0, 'text is never markup');
  await bob.fill('#text', 'Hi Alice');
  await bob.click('#send-text');
  await alice.waitForSelector('#messages li.theirs:text("Hi Alice")');
  await screenshot(bob, '02-chat');

  const data = fileBytes(FIVE_MIB, 7);
  await alice.setInputFiles('#file', { name: 'report.bin', mimeType: 'application/octet-stream', buffer: data });
  const offer = bob.locator('li.transfer', { hasText: 'report.bin' });
  await offer.locator('button:text("Accept")').waitFor();
  await screenshot(bob, '03-offer');
  // The fallback: the offer's signed URL, fetched by any HTTP client.
  const fallback = await offer.locator('a:text("Download over HTTP")').getAttribute('href');
  const fetched = Buffer.from(await (await fetch(fallback)).arrayBuffer());
  assert.equal(sha256(fetched), sha256(data), 'the fallback link serves the same bytes');
  await offer.locator('button:text("Accept")').click();
  await offer.locator('a.save').waitFor({ timeout: 60_000 });
  assert.match(await offer.locator('.detail').textContent(), /digest checked/);
  assert.equal(await offer.locator('progress').getAttribute('value'), '100');
  await screenshot(bob, '04-received');
  const saved = await saveReceived(bob, offer);
  assert.equal(saved.length, FIVE_MIB);
  assert.equal(sha256(saved), sha256(data));
  const sent = alice.locator('li.transfer', { hasText: 'report.bin' });
  await sent.locator('.detail:text-matches("Sent")').waitFor({ timeout: 30_000 });
  await screenshot(alice, '05-sent');
  await alice.context().close();
  await bob.context().close();
});

test('a pushed file arrives without asking', async () => {
  const alice = await signIn(browser, host.base, 'carol', 'push');
  const bob = await signIn(browser, host.base, 'dave', 'push');
  await openConversation(alice, 'dave');
  const data = fileBytes(FIVE_MIB, 11);
  await alice.setInputFiles('#file', { name: 'pushed.bin', mimeType: 'application/octet-stream', buffer: data });
  // Dave has no conversation open: the first one opens by itself.
  const card = bob.locator('li.transfer', { hasText: 'pushed.bin' });
  await card.locator('a.save').waitFor({ timeout: 60_000 });
  await screenshot(bob, '06-pushed');
  assert.equal(sha256(await saveReceived(bob, card)), sha256(data));
  await alice.context().close();
  await bob.context().close();
});

test('the recipient goes offline mid-transfer: the page says so, then the file resumes and arrives', async () => {
  const alice = await signIn(browser, host.base, 'erin', 'push');
  // Frank's page reaches the host through a relay that drops his network once 12 MiB have come.
  const relay = await startRelay(host.base, 12 * 1024 * 1024);
  const bob = await signIn(browser, relay.base, 'frank', 'push');
  await openConversation(alice, 'frank');
  const size = 32 * 1024 * 1024;
  const data = fileBytes(size, 13);
  await alice.setInputFiles('#file', { name: 'big.bin', mimeType: 'application/octet-stream', buffer: data });
  const card = bob.locator('li.transfer', { hasText: 'big.bin' });
  await relay.wasCut;
  await bob.waitForSelector('#status.error:text("Connection lost, reconnecting…")');
  await card.locator('.detail:text-matches("Paused")').waitFor();
  await screenshot(bob, '07-offline');
  const pausedAt = Number(await card.locator('progress').getAttribute('value'));
  assert.ok(pausedAt > 0 && pausedAt < 100, `paused at ${pausedAt}%`);
  relay.restore();
  await bob.waitForSelector('#status:text("Connected as frank.")', { timeout: 30_000 });
  await card.locator('a.save').waitFor({ timeout: 120_000 });
  await screenshot(bob, '08-resumed');
  assert.equal(sha256(await saveReceived(bob, card)), sha256(data));
  relay.close();
  await alice.context().close();
  await bob.context().close();
});

// A 1x1 PNG.
const PIXEL = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
);

test('refusals read as sentences, and a received image is previewed', async () => {
  const alice = await signIn(browser, host.base, 'gina', 'push');
  // An unknown user.
  await openConversation(alice, 'nobody');
  await alice.setInputFiles('#file', { name: 'x.bin', mimeType: 'application/octet-stream', buffer: Buffer.from('x') });
  await alice.locator('li.transfer .detail:text("nobody is not a known user.")').waitFor();
  await alice.fill('#text', 'anyone there?');
  await alice.click('#send-text');
  await alice.locator('#messages li.notice:text("nobody is not a known user.")').waitFor();
  // A user who was here and left.
  const gone = await signIn(browser, host.base, 'hank', 'push');
  await gone.context().close();
  await openConversation(alice, 'hank');
  await alice.setInputFiles('#file', { name: 'y.bin', mimeType: 'application/octet-stream', buffer: Buffer.from('y') });
  await alice.locator('li.transfer .detail:text("hank is offline. Try again when they are online.")').waitFor();
  await screenshot(alice, '09-refusals');
  // An image arrives with a preview.
  const ivy = await signIn(browser, host.base, 'ivy', 'push');
  await openConversation(alice, 'ivy');
  await alice.setInputFiles('#file', { name: 'dot.png', mimeType: 'image/png', buffer: PIXEL });
  const card = ivy.locator('li.transfer', { hasText: 'dot.png' });
  await card.locator('img').waitFor();
  assert.equal(await card.locator('img').getAttribute('alt'), 'Preview of dot.png');
  assert.ok(await card.locator('img').evaluate((img) => img.complete && img.naturalWidth === 1), 'the image decodes');
  await screenshot(ivy, '10-image-preview');
  await alice.context().close();
  await ivy.context().close();
});
