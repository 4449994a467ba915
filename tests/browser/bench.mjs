// The browser benchmark: one local host, one 128 MiB file (set RCS_BENCH_MIB to change it),
// received over MSRP by the command-line client and by headless Chromium, in the same run. Both
// receive by pull, so the time measured is the delivery alone (the file is stored first): from the
// moment the recipient asks for it to the moment it is saved with its digest checked. The page's JS
// heap is sampled every 50 ms.
//
// Chromium is driven over a DevTools pipe that watches nothing (devtools-pipe.mjs); the same
// delivery under Playwright, which watches every WebSocket frame, is in the table too. Beside
// them, Chromium's own floor on this machine: a bare WebSocket server in this process sends the
// same bytes in messages of an MSRP chunk's size as fast as the socket takes them, and a page only
// counts them. No client can receive faster than that. Prints one table.
//
//   node tests/browser/bench.mjs        (after scripts/build-components.sh and scripts/build-web.sh)
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PipeBrowser } from './devtools-pipe.mjs';
import {
  createAccount, fileBytes, launchBrowser, openConversation, passwordOf, sha256, signIn, startHost,
  TARGET,
} from './harness.mjs';

const MIB = 1024 * 1024;
const size = Number(process.env.RCS_BENCH_MIB || 128) * MIB;
const rcs = join(TARGET, 'release', 'rcs');

function run(args, { wait = true } = {}) {
  const child = spawn(rcs, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = [];
  child.stdout.on('data', (chunk) => output.push(String(chunk)));
  child.stderr.on('data', (chunk) => output.push(String(chunk)));
  const done = new Promise((ok, fail) => {
    child.on('exit', (code) => (code === 0 ? ok(output.join('')) : fail(new Error(`rcs ${args.join(' ')}: ${output.join('')}`))));
  });
  return wait ? done : { child, done };
}

const mibPerSec = (bytes, ms) => (bytes / MIB) / (ms / 1000);

/** A 64 KiB MSRP chunk with its headers, as one WebSocket message. */
const MESSAGE_BYTES = 64 * 1024 + 200;

/**
 * How fast a page can take `bytes` over a WebSocket from this machine doing nothing else: the
 * server sends binary messages of MESSAGE_BYTES back to back; the page counts them. In ms.
 */
async function websocketFloor(pipeBrowser, bytes) {
  const count = Math.ceil(bytes / MESSAGE_BYTES);
  const header = Buffer.alloc(10);
  header[0] = 0x82; // FIN, binary
  header[1] = 127; // 64-bit length
  header.writeBigUInt64BE(BigInt(MESSAGE_BYTES), 2);
  const frame = Buffer.concat([header, Buffer.alloc(MESSAGE_BYTES, 0x5a)]);
  const server = createServer((_, response) => response.end('<!doctype html><title>floor</title>'));
  server.on('upgrade', (request, socket) => {
    const accept = createHash('sha1')
      .update(`${request.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.setNoDelay(true);
    socket.on('error', () => {});
    let sent = 0;
    const pump = () => {
      while (sent < count) {
        sent += 1;
        if (!socket.write(frame)) {
          socket.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const page = await pipeBrowser.newPage(`http://127.0.0.1:${server.address().port}/`);
  try {
    return await page.evaluate((expected) => new Promise((ok) => {
      const ws = new WebSocket(`ws://${location.host}/`);
      ws.binaryType = 'arraybuffer';
      let received = 0;
      let started = 0;
      ws.onopen = () => { started = performance.now(); };
      ws.onmessage = (event) => {
        received += event.data.byteLength;
        if (received >= expected) {
          ws.close();
          ok(performance.now() - started);
        }
      };
    }), count * MESSAGE_BYTES);
  } finally {
    await page.close();
    server.closeAllConnections();
    server.close();
  }
}

/** Samples `heapUsed()` every 50 ms until `stop()`, which resolves the peak. */
function heapPeak(heapUsed) {
  let peak = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await heapUsed());
      await new Promise((ok) => setTimeout(ok, 50));
    }
  })();
  return async () => {
    sampling = false;
    await sampler;
    return peak;
  };
}

/** The size and SHA-256 of the file the page offers to save, read back in the page. */
function savedFile() {
  return (async () => {
    const response = await fetch(document.querySelector('li.transfer a.save').href);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
    return { size: bytes.length, sha256: [...hash].map((b) => b.toString(16).padStart(2, '0')).join('') };
  })();
}

const host = await startHost();
const work = mkdtempSync(join(tmpdir(), 'rcs-bench-'));
const pipeBrowser = PipeBrowser.launch();
const browser = await launchBrowser();
try {
  const data = fileBytes(size, 5);
  const digest = sha256(data);
  const file = join(work, 'bench.bin');
  writeFileSync(file, data);
  const common = ['--server', host.base, '--quiet', '--timeout', '120'];
  for (const user of ['alice', 'bob', 'carol']) await createAccount(host.base, user);
  // A CLI user: the name and its password.
  const as = (user) => ['--user', user, '--password', passwordOf(user)];
  const checkSaved = (saved, who) => {
    if (saved.size !== size || saved.sha256 !== digest) throw new Error(`${who} saved different bytes`);
  };

  // The command-line client: its receiver asks as soon as the offer arrives.
  const out = join(work, 'cli');
  const receiver = run([...common, ...as('carol'), 'receive', '--pull', '--out', out], { wait: false });
  await new Promise((ok) => setTimeout(ok, 500));
  await run([...common, ...as('alice'), 'send', 'carol', file]);
  const cliStart = performance.now();
  await receiver.done;
  const cliMs = performance.now() - cliStart;
  if (statSync(join(out, 'bench.bin')).size !== size) throw new Error('the CLI saved a different size');

  // The page, driven over the pipe: Bob accepts the offer; the clock runs from the click to the
  // saved, checked file.
  const page = await pipeBrowser.newPage(`${host.base}/`);
  await page.evaluate((password) => {
    document.getElementById('user').value = 'bob';
    document.getElementById('password').value = password;
    document.querySelector('input[name=delivery][value=pull]').checked = true;
    document.querySelector('#sign-in-button').click();
  }, passwordOf('bob'));
  await page.waitFor('#status', 'Connected as bob.');
  await run([...common, ...as('alice'), 'send', 'bob', file]);
  await page.waitFor('li.transfer button', 'Accept');
  const stopHeap = heapPeak(() => page.heapUsed());
  const pageStart = performance.now();
  await page.evaluate(() => [...document.querySelectorAll('li.transfer button')]
    .find((button) => button.textContent === 'Accept').click());
  await page.waitFor('li.transfer a.save');
  const pageMs = performance.now() - pageStart;
  const peakHeap = await stopHeap();
  checkSaved(await page.evaluate(savedFile), 'the page');
  await page.close();

  // The same page under Playwright.
  const watched = await signIn(browser, host.base, 'dave', 'pull');
  await openConversation(watched, 'alice');
  await run([...common, ...as('alice'), 'send', 'dave', file]);
  const offer = watched.locator('li.transfer', { hasText: 'bench.bin' });
  await offer.locator('button:text("Accept")').waitFor();
  const watchedStart = performance.now();
  await offer.locator('button:text("Accept")').click();
  await offer.locator('a.save').waitFor({ timeout: 300_000 });
  const watchedMs = performance.now() - watchedStart;
  checkSaved(await watched.evaluate(savedFile), 'the page under Playwright');
  await watched.context().close();

  const floorMs = await websocketFloor(pipeBrowser, size);
  const floor = mibPerSec(size, floorMs);
  const cli = mibPerSec(size, cliMs);
  const inPage = mibPerSec(size, pageMs);
  const underPlaywright = mibPerSec(size, watchedMs);
  const seconds = (ms) => `${(ms / 1000).toFixed(2)} s`;
  console.log(`\nBrowser benchmark: local host, store on SQLite, ${size / MIB} MiB file, pull delivery\n`);
  console.log('| measure | figure |');
  console.log('|---|---|');
  console.log(`| delivery to the command-line client | ${cli.toFixed(1)} MiB/s (${seconds(cliMs)}) |`);
  console.log(`| floor: headless Chromium counting bare WebSocket messages of ${MESSAGE_BYTES} B | ${floor.toFixed(1)} MiB/s (${seconds(floorMs)}) |`);
  console.log(`| delivery to headless Chromium (the page, digest checked) | ${inPage.toFixed(1)} MiB/s (${seconds(pageMs)}): ${(100 * inPage / cli).toFixed(0)}% of the CLI, ${(100 * inPage / floor).toFixed(0)}% of the floor |`);
  console.log(`| the same, with Playwright watching the page's network | ${underPlaywright.toFixed(1)} MiB/s (${seconds(watchedMs)}) |`);
  console.log(`| the page's peak JS heap during the delivery | ${(peakHeap / MIB).toFixed(1)} MiB |`);
} finally {
  await browser.close();
  await pipeBrowser.close();
  await host.stop();
  rmSync(work, { recursive: true, force: true });
}
