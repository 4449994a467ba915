// The service's limits as a user meets them, on a host configured with small ones: a file over
// the size limit, and a pulled offer whose link runs out before it is accepted (seen by a page
// whose clock agrees with the server's, and by one whose clock is an hour slow, which only the
// server's answer can tell).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostAndBrowser, openConversation, screenshot, signIn } from './harness.mjs';

const LIMIT = 1024 * 1024;
const URL_LIFETIME_SECS = 3;
const shared = hostAndBrowser({ max_file_size: LIMIT, url_lifetime_secs: URL_LIFETIME_SECS });

test('a file over the limit is refused with the limit in the sentence', async () => {
  const alice = await signIn(shared.browser, shared.host.base, 'alice', 'push');
  const bob = await signIn(shared.browser, shared.host.base, 'bob', 'push');
  await openConversation(alice, 'bob');
  await alice.setInputFiles('#file', {
    name: 'huge.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(LIMIT + 1, 1),
  });
  const card = alice.locator('li.transfer', { hasText: 'huge.bin' });
  await card.locator('.detail:text("The file is too large: this service takes files up to 1.0 MB.")').waitFor();
  await screenshot(alice, '11-too-large');
  // A file at the limit still goes.
  await alice.setInputFiles('#file', {
    name: 'fits.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(LIMIT, 2),
  });
  await bob.locator('li.transfer', { hasText: 'fits.bin' }).locator('a.save').waitFor({ timeout: 30_000 });
  assert.equal(await bob.locator('li.transfer', { hasText: 'huge.bin' }).count(), 0, 'nothing of the refused file arrives');
  await alice.context().close();
  await bob.context().close();
});

test('an offer left past its link expiry says so, in the page and from the server', async () => {
  const alice = await signIn(shared.browser, shared.host.base, 'carol', 'push');
  const bob = await signIn(shared.browser, shared.host.base, 'dave', 'pull');
  // Erin's computer clock is an hour slow: her page believes the link is still good.
  const erin = await signIn(shared.browser, shared.host.base, 'erin', 'pull', { clockTime: Date.now() - 3600 * 1000 });

  await openConversation(alice, 'dave');
  await alice.setInputFiles('#file', { name: 'late.txt', mimeType: 'text/plain', buffer: Buffer.from('too late') });
  await openConversation(alice, 'erin');
  await alice.setInputFiles('#file', { name: 'later.txt', mimeType: 'text/plain', buffer: Buffer.from('later still') });

  const expired = 'The offer has expired. Ask carol to send the file again.';
  const offer = bob.locator('li.transfer', { hasText: 'late.txt' });
  await offer.locator('button:text("Accept")').waitFor();
  assert.equal(await offer.locator('a.fallback').count(), 1, 'the HTTP link is offered while valid');
  await offer.locator('.expired:text("The download link has expired.")').waitFor({ timeout: (URL_LIFETIME_SECS + 3) * 1000 });
  await offer.locator(`.detail:text("${expired}")`).waitFor();
  assert.equal(await offer.locator('button').count(), 0, 'an expired offer cannot be accepted');
  assert.equal(await offer.locator('a.fallback').count(), 0, 'nor downloaded');
  await screenshot(bob, '12-offer-expired');

  const slow = erin.locator('li.transfer', { hasText: 'later.txt' });
  await slow.locator('button:text("Accept")').waitFor();
  // Wait until the link has expired by the server's clock, then accept on Erin's slow page.
  const href = await slow.locator('a.fallback').getAttribute('href');
  const exp = Number(new URL(href).searchParams.get('exp'));
  await new Promise((ok) => setTimeout(ok, Math.max(0, (exp + 1) * 1000 - Date.now()) + 200));
  assert.equal((await fetch(href)).status, 403, 'the server refuses the expired link');
  await slow.locator('button:text("Accept")').click();
  await slow.locator(`.detail:text("${expired}")`).waitFor();
  await screenshot(erin, '13-offer-expired-slow-clock');
  await alice.context().close();
  await bob.context().close();
  await erin.context().close();
});
