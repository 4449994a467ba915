// What the browser tests share: the local edge host started on 127.0.0.1 for one test, headless
// Chromium (Debian's), and helpers that drive the page the way a person does.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const TARGET = process.env.CARGO_TARGET_DIR || join(ROOT, 'target');
export const ARTIFACTS = join(ROOT, 'target', 'browser-artifacts');

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
    server.on('error', fail);
  });
}

async function waitForHttp(url, child, log) {
  for (let attempt = 0; attempt < 300; attempt += 1) {
    if (child.exitCode !== null) throw new Error(`the host exited: ${log.join('')}`);
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((ok) => setTimeout(ok, 100));
  }
  throw new Error(`the host did not answer ${url}: ${log.join('')}`);
}

/**
 * Starts the local host on spin.toml with its store in a fresh folder; `stop()` ends it. `variables`
 * override the application's variables (`{ max_file_size: '1048576' }`).
 */
export async function startHost(variables = {}) {
  const http = await freePort();
  const publish = await freePort();
  const state = mkdtempSync(join(tmpdir(), 'rcs-browser-'));
  const base = `http://127.0.0.1:${http}`;
  const env = {
    ...process.env,
    SPIN_VARIABLE_PUBLIC_BASE_URL: `${base}/`,
    SPIN_VARIABLE_RECEIVER_AS_ORIGIN: base,
    SPIN_VARIABLE_GRIP_PUBLISH_ORIGIN: `http://127.0.0.1:${publish}`,
    SPIN_VARIABLE_GRIP_PUBLISH_URL: `http://127.0.0.1:${publish}/publish/`,
  };
  for (const [name, value] of Object.entries(variables)) {
    env[`SPIN_VARIABLE_${name.toUpperCase()}`] = String(value);
  }
  const log = [];
  const child = spawn(join(TARGET, 'release', 'rcs-edge'), [
    'up', '--from', join(ROOT, 'spin.toml'),
    '--listen', `127.0.0.1:${http}`,
    '--publish-listen', `127.0.0.1:${publish}`,
    '--state-dir', state,
  ], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.on('error', (error) => log.push(`cannot run the host: ${error.message}`));
  child.stdout.on('data', (chunk) => log.push(String(chunk)));
  child.stderr.on('data', (chunk) => log.push(String(chunk)));
  await waitForHttp(`${base}/index.html`, child, log);
  return {
    base,
    log,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((ok) => (child.exitCode !== null ? ok() : child.on('exit', ok)));
      rmSync(state, { recursive: true, force: true });
    },
  };
}

/**
 * A TCP relay on 127.0.0.1 in front of the host: a page loaded through it reaches the host only
 * through it.
 * - `cutAfter`: once that many bytes have gone towards the page, every connection is dropped and new
 *   ones are refused, as when a user's network goes away, until `restore()`.
 * - `bytesPerSec`: each direction of each connection is held to that rate, as on a slow network.
 */
export async function startRelay(hostBase, { cutAfter = null, bytesPerSec = null } = {}) {
  const target = new URL(hostBase);
  const sockets = new Set();
  let toPage = 0;
  let cut = false;
  let cutHappened;
  const wasCut = new Promise((ok) => { cutHappened = ok; });
  const dropAll = () => {
    cut = true;
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    cutHappened();
  };
  // Copies `from` to `to`; with a rate, pauses `from` whenever it is ahead of it.
  const pipe = (from, to, onBytes) => {
    // When the bytes carried so far have had their time on the wire; a quiet spell saves none up.
    let busyUntil = 0;
    from.on('data', (chunk) => {
      to.write(chunk);
      onBytes?.(chunk.length);
      if (bytesPerSec === null) return;
      const now = Date.now();
      busyUntil = Math.max(busyUntil, now) + (1000 * chunk.length) / bytesPerSec;
      const ahead = busyUntil - now;
      if (ahead > 0) {
        from.pause();
        setTimeout(() => from.resume(), ahead);
      }
    });
  };
  const server = createServer((page) => {
    if (cut) {
      page.destroy();
      return;
    }
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(page);
    sockets.add(upstream);
    pipe(page, upstream);
    pipe(upstream, page, (length) => {
      toPage += length;
      if (cutAfter !== null && toPage >= cutAfter && !cut) dropAll();
    });
    for (const [a, b] of [[page, upstream], [upstream, page]]) {
      a.on('close', () => { sockets.delete(a); b.destroy(); });
      a.on('error', () => b.destroy());
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    base: `http://127.0.0.1:${server.address().port}`,
    wasCut,
    restore() {
      cut = false;
      cutAfter = null;
    },
    close() {
      dropAll();
      server.close();
    },
  };
}

/**
 * Starts recording every value the transfer card's progress bar takes; `values()` returns them in
 * order. The card is found by its title once it appears.
 */
export async function recordProgress(page, title) {
  await page.evaluate((text) => {
    window.progressSeen = window.progressSeen || {};
    const seen = [];
    window.progressSeen[text] = seen;
    const watch = (card) => {
      const bar = card.querySelector('progress');
      new MutationObserver(() => seen.push(Number(bar.value)))
        .observe(bar, { attributes: true, attributeFilter: ['value'] });
    };
    const cardOf = () => [...document.querySelectorAll('li.transfer')]
      .find((card) => card.textContent.includes(text));
    const existing = cardOf();
    if (existing) {
      watch(existing);
      return;
    }
    const found = new MutationObserver(() => {
      const card = cardOf();
      if (card) {
        found.disconnect();
        watch(card);
      }
    });
    found.observe(document.body, { childList: true, subtree: true });
  }, title);
  return {
    values: () => page.evaluate((text) => window.progressSeen[text], title),
  };
}

/**
 * A test file's host (started with `variables`, as `startHost` takes them) and browser: started
 * before its first test, stopped after its last. Read `.host` and `.browser` inside the tests.
 */
export function hostAndBrowser(variables = {}) {
  const shared = { host: null, browser: null };
  before(async () => {
    shared.host = await startHost(variables);
    shared.browser = await launchBrowser();
  });
  after(async () => {
    await shared.browser?.close();
    await shared.host?.stop();
  });
  return shared;
}

/** Headless Chromium as the tests run it. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/**
 * A user's page, signed in and connected to both servers. `viewport` defaults to a laptop's;
 * `clockTime` (ms since the epoch) sets the page's clock, which then runs on from there.
 */
/** The password of `user`'s account in the browser tests. */
export function passwordOf(user) {
  return `${user}'s browser password`;
}

/**
 * Creates `user`'s account on the host at `base` over HTTP, as a client that never sends the
 * password: the verifiers of RFC 7616 and RFC 8760 for the realm the host names. An account that
 * exists already is left as it is.
 */
export async function createAccount(base, user, password = passwordOf(user)) {
  const info = await (await fetch(`${base}/sender/accounts`)).json();
  const verifier = (algorithm) => createHash(algorithm).update(`${user}:${info.realm}:${password}`).digest('hex');
  const body = {
    user,
    verifiers: { realm: info.realm, md5: verifier('md5'), sha256: verifier('sha256'), sha512_256: verifier('sha512-256') },
  };
  const answer = await fetch(`${base}/sender/accounts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (answer.status !== 201 && answer.status !== 409) {
    throw new Error(`creating the account ${user}: ${answer.status} ${await answer.text()}`);
  }
}

/** Fills the sign-in form of `page` for `user` (with its password) and `delivery`. */
export async function fillSignIn(page, user, delivery, password = passwordOf(user)) {
  await page.fill('#user', user);
  await page.fill('#password', password);
  await page.check(`input[name=delivery][value=${delivery}]`);
}

/** A page of its own (a browser context) with `user` signed in; the account is created first. */
export async function signIn(browser, base, user, delivery, { viewport = { width: 900, height: 700 }, clockTime } = {}) {
  await createAccount(base, user);
  const context = await browser.newContext({ acceptDownloads: true, viewport });
  const page = await context.newPage();
  if (clockTime !== undefined) await page.clock.install({ time: clockTime });
  page.on('pageerror', (error) => console.error(`[${user}] page error:`, error));
  await page.goto(`${base}/`);
  await fillSignIn(page, user, delivery);
  await page.click('#sign-in-button');
  await page.waitForSelector(`#status:text("Connected as ${user}.")`);
  return page;
}

/** Opens the conversation with `peer`. */
export async function openConversation(page, peer) {
  await page.fill('#contact', peer);
  await page.click('#add-contact button[type=submit]');
  await page.waitForSelector(`#peer:text("Conversation with ${peer}")`);
}

export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Bytes that are not all alike, so a chunk out of place changes the digest. */
export function fileBytes(size, seed) {
  const data = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 1) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    data[i] = x & 0xff;
  }
  return data;
}

export function sha256(data) {
  return createHash('sha256').update(data).digest('hex');
}
