// Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`), with
// only the Target, Page and Runtime domains: what a benchmark needs to drive a page without
// watching it. Playwright enables the Network domain on every page, so Chromium serializes each
// WebSocket frame it receives into a DevTools event for it; on this kind of traffic that costs
// several times what receiving the frame does, and a figure taken that way measures the tool.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Chromium with the same flags as the tests, and a fresh profile. */
export class PipeBrowser {
  static launch() {
    const profile = mkdtempSync(join(tmpdir(), 'rcs-chromium-'));
    const child = spawn(process.env.CHROMIUM || '/usr/bin/chromium', [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--remote-debugging-pipe', `--user-data-dir=${profile}`, 'about:blank',
    ], { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
    return new PipeBrowser(child, profile);
  }

  constructor(child, profile) {
    this.child = child;
    this.profile = profile;
    this.nextId = 1;
    this.waiting = new Map();
    let buffer = '';
    child.stdio[4].setEncoding('utf8');
    child.stdio[4].on('data', (text) => {
      buffer += text;
      for (let end = buffer.indexOf('\0'); end >= 0; end = buffer.indexOf('\0')) {
        const message = JSON.parse(buffer.slice(0, end));
        buffer = buffer.slice(end + 1);
        const waiter = this.waiting.get(message.id);
        if (!waiter) continue; // an event: none is subscribed to
        this.waiting.delete(message.id);
        if (message.error) waiter.fail(new Error(`${waiter.method}: ${message.error.message}`));
        else waiter.ok(message.result);
      }
    });
    this.exited = new Promise((ok) => child.on('exit', ok));
  }

  /** Sends one command, to the browser or to the page of `sessionId`, and resolves its result. */
  send(method, params = {}, sessionId = undefined) {
    const id = this.nextId;
    this.nextId += 1;
    this.child.stdio[3].write(`${JSON.stringify({ id, method, params, sessionId })}\0`);
    return new Promise((ok, fail) => this.waiting.set(id, { ok, fail, method }));
  }

  /** A new tab showing `url`, loaded. */
  async newPage(url) {
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    const page = new PipePage(this, sessionId, targetId);
    await this.send('Page.navigate', { url }, sessionId);
    await page.evaluate(() => new Promise((ok) => {
      if (document.readyState === 'complete') ok();
      else addEventListener('load', () => ok());
    }));
    return page;
  }

  async close() {
    this.child.kill();
    await this.exited;
    // Its helper processes may still be writing the profile for a moment after it exits.
    rmSync(this.profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
}

/** One tab. */
export class PipePage {
  constructor(browser, sessionId, targetId) {
    this.browser = browser;
    this.sessionId = sessionId;
    this.targetId = targetId;
  }

  /** Runs `fn(arg)` in the page (awaiting a promise it returns) and returns its value. */
  async evaluate(fn, arg) {
    const { result, exceptionDetails } = await this.browser.send('Runtime.evaluate', {
      expression: `(${fn})(${arg === undefined ? '' : JSON.stringify(arg)})`,
      awaitPromise: true,
      returnByValue: true,
    }, this.sessionId);
    if (exceptionDetails) {
      throw new Error(`in the page: ${exceptionDetails.exception?.description || exceptionDetails.text}`);
    }
    return result.value;
  }

  /**
   * Resolves once `selector` matches an element whose text includes `text`: watched in the page
   * by a MutationObserver, so nothing polls.
   */
  waitFor(selector, text = '') {
    return this.evaluate(({ selector, text }) => new Promise((ok) => {
      const found = () => [...document.querySelectorAll(selector)]
        .some((element) => element.textContent.includes(text));
      if (found()) {
        ok();
        return;
      }
      const observer = new MutationObserver(() => {
        if (found()) {
          observer.disconnect();
          ok();
        }
      });
      observer.observe(document, { subtree: true, childList: true, characterData: true });
    }), { selector, text });
  }

  /** The page's JS heap in use, in bytes. */
  async heapUsed() {
    const { usedSize } = await this.browser.send('Runtime.getHeapUsage', {}, this.sessionId);
    return usedSize;
  }

  close() {
    return this.browser.send('Target.closeTarget', { targetId: this.targetId });
  }
}
