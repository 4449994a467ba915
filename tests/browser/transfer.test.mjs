// Alice and Bob in two headless Chromium pages against the local edge host: chat both ways, then
// a 5 MiB file picked by Alice, accepted by Bob (pull), saved with the digest it was sent with; the
// same pushed; the HTTP fallback link of the offer; a network that drops mid-transfer; a sender who
// cancels midway; the refusals a user can meet; a keyboard-only pass; and a phone-sized screen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  fileBytes, hostAndBrowser, openConversation, recordProgress, screenshot, sha256, signIn, startRelay,
} from './harness.mjs';

const FIVE_MIB = 5 * 1024 * 1024;
const shared = hostAndBrowser();

async function saveReceived(page, card) {
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    card.locator('a.save').click(),
  ]);
  return readFileSync(await download.path());
}

/** The progress a bar went through moves forward step by step to 100%. */
function assertMoved(values, who) {
  const between = new Set(values.filter((v) => v > 0 && v < 100));
  assert.ok(between.size >= 3, `${who}'s bar took ${between.size} values between 0 and 100: ${values}`);
  for (let i = 1; i < values.length; i += 1) {
    assert.ok(values[i] >= values[i - 1], `${who}'s bar went back: ${values}`);
  }
  assert.equal(values.at(-1), 100, `${who}'s bar ends full`);
}

test('chat, then a file by the picker, accepted by the recipient, arrives byte-identical', async () => {
  // Both pages reach the host over a 4 MiB/s network, so the 5 MiB take over a second each way
  // and the bars can be seen moving.
  const relay = await startRelay(shared.host.base, { bytesPerSec: 4 * 1024 * 1024 });
  const alice = await signIn(shared.browser, relay.base, 'alice', 'push');
  const bob = await signIn(shared.browser, relay.base, 'bob', 'pull');
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
  // The servers took both messages: each sender's own line is marked sent.
  await alice.waitForSelector('#messages li.mine.sent[title="Delivered to the server"]');
  await bob.waitForSelector('#messages li.mine.sent:text("Hi Alice")');
  await screenshot(bob, '02-chat');

  const data = fileBytes(FIVE_MIB, 7);
  const sending = await recordProgress(alice, 'report.bin');
  const receiving = await recordProgress(bob, 'report.bin');
  await alice.setInputFiles('#file', { name: 'report.bin', mimeType: 'application/octet-stream', buffer: data });
  const offer = bob.locator('li.transfer', { hasText: 'report.bin' });
  await offer.locator('button:text("Accept")').waitFor();
  await screenshot(bob, '03-offer');
  // The fallback: the offer's signed URL, fetched by any HTTP client. The offer comes while
  // Alice is still uploading (cut-through): until her upload is stored the URL answers 404 with
  // the reason, never part of the file.
  const fallback = await offer.locator('a:text("Download over HTTP")').getAttribute('href');
  const early = await fetch(fallback);
  if (early.status !== 200) {
    assert.equal(early.status, 404);
    assert.match(await early.text(), /once its upload is complete/);
  }
  await offer.locator('button:text("Accept")').click();
  // Mid-transfer the card reads as bytes done, speed and time left.
  await offer.locator('.detail:text-matches("of 5.0 MB · .*/s · .* left")').waitFor({ timeout: 30_000 });
  await screenshot(bob, '03b-receiving');
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
  const fetched = Buffer.from(await (await fetch(fallback)).arrayBuffer());
  assert.equal(sha256(fetched), sha256(data), 'once stored, the fallback link serves the same bytes');
  assertMoved(await sending.values(), 'Alice');
  assertMoved(await receiving.values(), 'Bob');
  await alice.context().close();
  await bob.context().close();
  relay.close();
});

test('a pushed file arrives without asking', async () => {
  const alice = await signIn(shared.browser, shared.host.base, 'carol', 'push');
  const bob = await signIn(shared.browser, shared.host.base, 'dave', 'push');
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
  const alice = await signIn(shared.browser, shared.host.base, 'erin', 'push');
  // Frank's page reaches the host through a relay that drops his network once 12 MiB have come.
  const relay = await startRelay(shared.host.base, { cutAfter: 12 * 1024 * 1024 });
  const bob = await signIn(shared.browser, relay.base, 'frank', 'push');
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

test('the sender cancels midway: both pages say so, and the recipient keeps nothing', async () => {
  // Olive's page sends over a 4 MiB/s network, so the 24 MiB take seconds; Pat receives them
  // while she is still uploading.
  const relay = await startRelay(shared.host.base, { bytesPerSec: 4 * 1024 * 1024 });
  const alice = await signIn(shared.browser, relay.base, 'olive', 'push');
  const bob = await signIn(shared.browser, shared.host.base, 'pat', 'push');
  await openConversation(alice, 'pat');
  const data = fileBytes(24 * 1024 * 1024, 17);
  await alice.setInputFiles('#file', { name: 'cancelled.bin', mimeType: 'application/octet-stream', buffer: data });
  const sent = alice.locator('li.transfer', { hasText: 'cancelled.bin' });
  const received = bob.locator('li.transfer', { hasText: 'cancelled.bin' });
  await received.locator('.detail:text-matches("of 24.0 MB")').waitFor({ timeout: 30_000 });
  await sent.locator('button:text("Cancel")').click();
  await sent.locator('.detail:text("Cancelled: nothing was kept.")').waitFor({ timeout: 30_000 });
  await received.locator('.detail:text-matches("The file did not arrive: .*aborted")').waitFor({ timeout: 30_000 });
  await screenshot(bob, '08b-cancelled');
  assert.equal(await received.locator('a.save').count(), 0, 'nothing to save');
  assert.equal(await sent.locator('button').count(), 0, 'nothing left to cancel');
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
  const alice = await signIn(shared.browser, shared.host.base, 'gina', 'push');
  // An unknown user.
  await openConversation(alice, 'nobody');
  await alice.setInputFiles('#file', { name: 'x.bin', mimeType: 'application/octet-stream', buffer: Buffer.from('x') });
  await alice.locator('li.transfer .detail:text("nobody is not a known user.")').waitFor();
  await alice.fill('#text', 'anyone there?');
  await alice.click('#send-text');
  await alice.locator('#messages li.notice:text("nobody is not a known user.")').waitFor();
  // A user who was here and left.
  const gone = await signIn(shared.browser, shared.host.base, 'hank', 'push');
  await gone.context().close();
  await openConversation(alice, 'hank');
  await alice.setInputFiles('#file', { name: 'y.bin', mimeType: 'application/octet-stream', buffer: Buffer.from('y') });
  await alice.locator('li.transfer .detail:text("hank is offline. Try again when they are online.")').waitFor();
  await screenshot(alice, '09-refusals');
  // An image arrives with a preview.
  const ivy = await signIn(shared.browser, shared.host.base, 'ivy', 'push');
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
