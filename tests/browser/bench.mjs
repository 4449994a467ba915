// The browser benchmark: one local host, one 128 MiB file (set RCS_BENCH_MIB to change it),
// received over MSRP by the command-line client and by headless Chromium, in the same run. Both
// receive by pull, so the time measured is the delivery alone (the file is stored first): from the
// moment the recipient asks for it to the moment it is saved with its digest checked. The page's JS
// heap is sampled every 50 ms through the DevTools protocol. Prints one table.
//
//   node tests/browser/bench.mjs        (after scripts/build-components.sh and scripts/build-web.sh)
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  fileBytes, launchBrowser, openConversation, sha256, signIn, startHost, TARGET,
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

const host = await startHost();
const work = mkdtempSync(join(tmpdir(), 'rcs-bench-'));
const browser = await launchBrowser();
try {
  const data = fileBytes(size, 5);
  const digest = sha256(data);
  const file = join(work, 'bench.bin');
  writeFileSync(file, data);
  const common = ['--server', host.base, '--quiet', '--timeout', '120'];

  // The command-line client: its receiver asks as soon as the offer arrives.
  const out = join(work, 'cli');
  const receiver = run([...common, '--user', 'carol', 'receive', '--pull', '--out', out], { wait: false });
  await new Promise((ok) => setTimeout(ok, 500));
  await run([...common, '--user', 'alice', 'send', 'carol', file]);
  const cliStart = performance.now();
  await receiver.done;
  const cliMs = performance.now() - cliStart;
  if (statSync(join(out, 'bench.bin')).size !== size) throw new Error('the CLI saved a different size');

  // Chromium: Bob accepts the offer; the clock runs from the click to the saved, checked file.
  const page = await signIn(browser, host.base, 'bob', 'pull');
  await openConversation(page, 'alice');
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  await run([...common, '--user', 'alice', 'send', 'bob', file]);
  const offer = page.locator('li.transfer', { hasText: 'bench.bin' });
  await offer.locator('button:text("Accept")').waitFor();
  let peakHeap = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const { metrics } = await cdp.send('Performance.getMetrics');
      const used = metrics.find((m) => m.name === 'JSHeapUsedSize');
      if (used) peakHeap = Math.max(peakHeap, used.value);
      await new Promise((ok) => setTimeout(ok, 50));
    }
  })();
  const browserStart = performance.now();
  await offer.locator('button:text("Accept")').click();
  await offer.locator('a.save').waitFor({ timeout: 300_000 });
  const browserMs = performance.now() - browserStart;
  sampling = false;
  await sampler;
  const saved = await page.evaluate(async () => {
    const response = await fetch(document.querySelector('li.transfer a.save').href);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
    return { size: bytes.length, sha256: [...hash].map((b) => b.toString(16).padStart(2, '0')).join('') };
  });
  if (saved.size !== size || saved.sha256 !== digest) throw new Error('the page saved different bytes');

  const cli = mibPerSec(size, cliMs);
  const inBrowser = mibPerSec(size, browserMs);
  console.log(`\nBrowser benchmark: local host, store on SQLite, ${size / MIB} MiB file, pull delivery\n`);
  console.log('| measure | figure |');
  console.log('|---|---|');
  console.log(`| delivery to the command-line client | ${cli.toFixed(1)} MiB/s (${(cliMs / 1000).toFixed(2)} s) |`);
  console.log(`| delivery to headless Chromium (the page, digest checked) | ${inBrowser.toFixed(1)} MiB/s (${(browserMs / 1000).toFixed(2)} s), ${(100 * inBrowser / cli).toFixed(0)}% of the CLI |`);
  console.log(`| the page's peak JS heap during the delivery | ${(peakHeap / MIB).toFixed(1)} MiB |`);
} finally {
  await browser.close();
  await host.stop();
  rmSync(work, { recursive: true, force: true });
}
