// What the browser tests share: the local edge host started on 127.0.0.1 for one test, headless
// Chromium (Debian's), and helpers that drive the page the way a person does.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
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

/** Starts the local host on spin.toml with its store in a fresh folder; `stop()` ends it. */
export async function startHost() {
  const http = await freePort();
  const publish = await freePort();
  const state = mkdtempSync(join(tmpdir(), 'rcs-browser-'));
  const base = `http://127.0.0.1:${http}`;
  const env = {
    ...process.env,
    SPIN_VARIABLE_PUBLIC_BASE_URL: `${base}/`,
    SPIN_VARIABLE_GRIP_PUBLISH_ORIGIN: `http://127.0.0.1:${publish}`,
    SPIN_VARIABLE_GRIP_PUBLISH_URL: `http://127.0.0.1:${publish}/publish/`,
  };
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
 * through it. Once `cutAfter` bytes have gone towards the page, every connection is dropped and new
 * ones are refused, as when a user's network goes away, until `restore()`.
 */
export async function startRelay(hostBase, cutAfter) {
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
  const server = createServer((page) => {
    if (cut) {
      page.destroy();
      return;
    }
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(page);
    sockets.add(upstream);
    page.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => {
      page.write(chunk);
      toPage += chunk.length;
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

/** Headless Chromium as the tests run it. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/** A user's page, signed in and connected to both servers. */
export async function signIn(browser, base, user, delivery) {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 900, height: 700 } });
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`[${user}] page error:`, error));
  await page.goto(`${base}/`);
  await page.fill('#user', user);
  await page.check(`input[name=delivery][value=${delivery}]`);
  await page.click('#sign-in button[type=submit]');
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
