// The page of the browser client: the protocol runs in the WebAssembly client (web-client/), this
// file only draws what it reports. Everything from the network is shown with textContent, never
// as markup.
import init, { RcsClient, accountRequest } from './pkg/rcs_web_client.js';

const params = new URLSearchParams(location.search);
const DOMAIN = params.get('domain') || 'localhost';
const ACCOUNTS = '/sender/accounts';

const $ = (id) => document.getElementById(id);
const status = $('status');
const contacts = new Map(); // aor -> { button, messages: [li] }
const transfers = new Map(); // id -> { card, peer, name, size, done }
const connections = new Map(); // "side/channel" -> state
let registered = false; // whether this device is registered
let client = null;
let me = null;
let current = null;
// Until the device is registered, a refusal sends the page back to the sign-in form.
let signingIn = false;

function aorOf(address) {
  let text = String(address).trim();
  const angle = text.match(/<([^>]*)>/);
  if (angle) text = angle[1];
  text = text.split(';')[0];
  if (!text.includes(':')) text = `sip:${text}`;
  if (!text.includes('@')) text = `${text}@${DOMAIN}`;
  return text.toLowerCase();
}

function userOf(aor) {
  return aor.replace(/^sips?:/, '').replace(`@${DOMAIN}`, '');
}

function setStatus(text, isError = false) {
  status.textContent = text;
  status.classList.toggle('error', isError);
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB'];
  let value = n;
  let unit = -1;
  do { value /= 1024; unit += 1; } while (value >= 1024 && unit < units.length - 1);
  return `${value.toFixed(1)} ${units[unit]}`;
}

function duration(secs) {
  if (secs < 60) return `${Math.ceil(secs)} s`;
  return `${Math.floor(secs / 60)} min ${Math.ceil(secs % 60)} s`;
}

/** What a refusal means to the person reading it; `incoming` for a file offered to them. */
function explain(status, reason, peer, incoming = false) {
  const who = peer ? userOf(peer) : 'The recipient';
  if (incoming) {
    switch (status) {
      case 404: return 'This file is no longer offered to you.';
      case 410: return `The offer has expired. Ask ${userOf(peer)} to send the file again.`;
      default: break;
    }
  }
  switch (status) {
    case 404: return `${who} is not a known user.`;
    case 480: return `${who} is offline. Try again when they are online.`;
    case 413: {
      const limit = /maximum of (\d+)/.exec(reason || '');
      return limit
        ? `The file is too large: this service takes files up to ${bytes(Number(limit[1]))}.`
        : 'The file is too large for this service.';
    }
    case 403: return `Not allowed: ${reason || 'the link may have expired'}.`;
    case 408: return 'The transfer timed out.';
    case 0: return reason || 'The transfer failed.';
    default: return `Failed: ${status} ${reason || ''}`.trim();
  }
}

/**
 * When a signed download URL stops working, in milliseconds since the epoch: it is valid up to
 * and including the second in its `exp` parameter. `null` when the URL names no expiry.
 */
function linkExpiry(url) {
  try {
    const exp = Number(new URL(url).searchParams.get('exp'));
    return Number.isFinite(exp) && exp > 0 ? (exp + 1) * 1000 : null;
  } catch {
    return null;
  }
}

/**
 * The HTTP fallback of an offer: a link until the URL expires, then a sentence saying so. A pull
 * offer still waiting for an answer expires with it (the server would refuse it as gone).
 */
function fallbackLink(t, url, kind) {
  const a = link('Download over HTTP', url, t.name);
  a.className = 'fallback';
  t.fallback = a;
  const at = linkExpiry(url);
  if (at === null) return a;
  const expire = () => {
    const note = document.createElement('span');
    note.className = 'expired';
    note.textContent = 'The download link has expired.';
    a.replaceWith(note);
    t.fallback = note;
    if (kind === 'pull' && !t.answered) {
      t.finished = true;
      detail(t, explain(410, '', t.peer, true));
      actions(t, note);
    }
  };
  a.addEventListener('click', (e) => {
    if (Date.now() >= at) {
      e.preventDefault();
      expire();
    }
  });
  setTimeout(expire, Math.max(0, at - Date.now()));
  return a;
}

function contact(aor) {
  let entry = contacts.get(aor);
  if (entry) return entry;
  const li = document.createElement('li');
  const button = document.createElement('button');
  button.type = 'button';
  button.textContent = userOf(aor);
  button.dataset.aor = aor;
  button.addEventListener('click', () => select(aor));
  li.append(button);
  $('contacts').append(li);
  entry = { button, messages: [] };
  contacts.set(aor, entry);
  return entry;
}

/** Opens the conversation with `aor`; `focus` moves the keyboard to its message field. */
function select(aor, focus = true) {
  current = aor;
  for (const [other, entry] of contacts) {
    entry.button.setAttribute('aria-current', String(other === aor));
    if (other === aor) entry.button.classList.remove('unread');
  }
  $('peer').textContent = `Conversation with ${userOf(aor)}`;
  $('messages').replaceChildren(...contact(aor).messages);
  for (const id of ['text', 'send-text', 'file']) $(id).disabled = false;
  if (focus) $('text').focus();
}

function show(aor, li) {
  const entry = contact(aor);
  entry.messages.push(li);
  // The first conversation opens by itself, leaving the keyboard where it was; later ones mark
  // their contact unread.
  if (!current) select(aor, false);
  if (current === aor) {
    $('messages').append(li);
    li.scrollIntoView({ block: 'nearest' });
  } else {
    entry.button.classList.add('unread');
  }
}

function say(aor, text, kind) {
  const li = document.createElement('li');
  li.className = kind;
  li.textContent = text;
  show(aor, li);
  return li;
}

function card(id, peer, title) {
  const li = $('transfer-card').content.firstElementChild.cloneNode(true);
  li.dataset.transfer = String(id);
  li.querySelector('.title').textContent = title;
  const bar = li.querySelector('progress');
  bar.setAttribute('aria-label', title);
  const transfer = { card: li, bar, peer, done: 0 };
  transfers.set(id, transfer);
  show(peer, li);
  return transfer;
}

function detail(transfer, text) {
  transfer.card.querySelector('.detail').textContent = text;
}

function actions(transfer, ...nodes) {
  transfer.card.querySelector('.actions').replaceChildren(...nodes);
}

function button(label, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.addEventListener('click', onClick);
  return b;
}

function link(label, href, download) {
  const a = document.createElement('a');
  a.textContent = label;
  a.href = href;
  if (download) a.download = download;
  return a;
}

/** Whether the three sockets (SIP, and MSRP to each server) are open and the device is registered. */
function ready() {
  const states = [...connections.values()];
  return states.length === 3 && states.every((s) => s === 'open') && registered;
}

/**
 * This tab's device identity (RFC 5626 +sip.instance): kept for the tab, so a reload is the same
 * device and replaces its own registration, while another tab is another device of the user.
 */
function instanceOf(user) {
  const key = `rcs-instance:${user}`;
  let instance = sessionStorage.getItem(key);
  if (!instance) {
    instance = `urn:uuid:${crypto.randomUUID()}`;
    sessionStorage.setItem(key, instance);
  }
  return instance;
}

function onEvent(event) {
  switch (event.type) {
    case 'connection': {
      connections.set(`${event.side}/${event.channel}`, event.state);
      if (ready()) {
        setStatus(`Connected as ${me}.`);
      } else if (event.state === 'lost' || event.state === 'reconnecting') {
        setStatus('Connection lost, reconnecting…', true);
        if (event.side === 'receiver' && event.channel === 'msrp') {
          for (const t of transfers.values()) {
            if (t.incoming && !t.finished) detail(t, 'Paused: connection lost. It resumes when the connection is back.');
          }
        }
      }
      break;
    }
    case 'registered':
      registered = true;
      if (ready()) {
        signingIn = false;
        setStatus(`Connected as ${me}.`);
      }
      break;
    case 'unregistered':
      registered = false;
      setStatus('Signed out.', true);
      break;
    case 'registration-failed':
      if (signingIn) {
        signOut(signInRefusal(event.status, event.reason));
      } else {
        setStatus(`Signed out: ${signInRefusal(event.status, event.reason)}`, true);
      }
      break;
    case 'chat': {
      const from = aorOf(event.from);
      say(from, event.text, 'theirs');
      break;
    }
    case 'chat-sent': {
      const li = document.querySelector(`[data-chat="${event.id}"]`);
      if (li) {
        li.classList.add('sent');
        li.title = 'Delivered to the server';
      }
      break;
    }
    case 'chat-failed': {
      const li = document.querySelector(`[data-chat="${event.id}"]`);
      const peer = li ? li.dataset.peer : current;
      say(peer, explain(event.status, event.reason, peer), 'notice');
      break;
    }
    case 'outgoing': {
      const t = card(event.id, aorOf(event.to), `Sending ${event.name} (${bytes(event.size)})`);
      t.size = event.size;
      t.card.classList.add('mine');
      detail(t, 'Preparing…');
      actions(t, button('Cancel', () => {
        if (client && client.cancel(event.id)) {
          detail(t, 'Stopping…');
          actions(t);
        }
      }));
      break;
    }
    case 'accepted': {
      const t = transfers.get(event.id);
      if (t) detail(t, event.resumeFrom > 0 ? `Resuming from ${bytes(event.resumeFrom)}…` : 'Sending…');
      break;
    }
    case 'offer': {
      const peer = aorOf(event.from);
      const t = card(event.id, peer, `${event.name || 'A file'} (${bytes(event.size)}) from ${userOf(peer)}`);
      t.incoming = true;
      t.name = event.name || 'file';
      t.size = event.size;
      t.card.classList.add('theirs');
      const fallback = event.url ? [fallbackLink(t, event.url, event.kind)] : [];
      if (event.kind === 'pull' || !$('auto-accept').checked) {
        detail(t, 'Offered.');
        actions(t,
          button('Accept', () => {
            t.answered = true;
            client.accept(event.id);
            actions(t, ...fallback);
            detail(t, 'Receiving…');
          }),
          button('Decline', () => {
            t.answered = true;
            t.finished = true;
            client.decline(event.id);
            actions(t);
            detail(t, 'Declined.');
          }),
          ...fallback);
      } else {
        t.answered = true;
        detail(t, 'Receiving…');
        actions(t, ...fallback);
      }
      break;
    }
    case 'progress': {
      const t = transfers.get(event.id);
      if (!t) break;
      t.done = event.done;
      t.bar.value = event.size ? (100 * event.done) / event.size : 100;
      const parts = [`${bytes(event.done)} of ${bytes(event.size)}`];
      if (event.bytesPerSec) parts.push(`${bytes(event.bytesPerSec)}/s`);
      if (event.secsLeft != null) parts.push(`${duration(event.secsLeft)} left`);
      detail(t, parts.join(' · '));
      break;
    }
    case 'uploaded': {
      const t = transfers.get(event.id);
      if (t) {
        t.bar.value = 100;
        detail(t, 'Uploaded: the server is checking the file…');
        actions(t); // Too late to cancel.
      }
      break;
    }
    case 'report': {
      const t = transfers.get(event.id);
      if (t && event.status === 200) {
        t.bar.value = 100;
        detail(t, 'Sent: stored and handed to the recipient’s server.');
      }
      break;
    }
    case 'ended': {
      const t = transfers.get(event.id);
      if (!t || t.finished) break;
      if (t.incoming) {
        // A file that can no longer arrive: its sender stopped, or its bytes were not the ones
        // announced. A received file was finished by its 'received' event.
        if (event.cause === 410) {
          t.finished = true;
          detail(t, `The file did not arrive: ${event.reason || 'its upload ended without it'}.`);
          actions(t);
        }
        break;
      }
      t.finished = true;
      actions(t);
      if (event.cause === 487) {
        detail(t, 'Cancelled: nothing was kept.');
      } else if (event.cause && event.cause >= 400) {
        detail(t, explain(event.cause, event.reason, t.peer));
      } else {
        t.bar.value = 100;
        detail(t, 'Sent.');
      }
      break;
    }
    case 'received': {
      const t = transfers.get(event.id);
      if (!t) break;
      t.finished = true;
      t.bar.value = 100;
      detail(t, `Received ${bytes(event.size)}, digest checked.`);
      const save = link(`Save ${event.name || 'file'}`, event.objectUrl, event.name || 'file');
      save.className = 'save';
      actions(t, save);
      if (event.contentType.startsWith('image/')) {
        const img = document.createElement('img');
        img.alt = `Preview of ${event.name}`;
        img.src = event.objectUrl;
        t.card.append(img);
      }
      break;
    }
    case 'failed': {
      const t = transfers.get(event.id);
      if (t) {
        t.finished = true;
        detail(t, explain(event.status, event.reason, t.peer, t.incoming));
        // A file that did not arrive over MSRP may still come over HTTP.
        actions(t, ...(t.incoming && t.fallback ? [t.fallback] : []));
      } else {
        setStatus(explain(event.status, event.reason), true);
      }
      break;
    }
    case 'error':
      setStatus(event.reason, true);
      break;
    default:
      break;
  }
}

function sendFile(file) {
  if (!current || !file) return;
  client.sendFile(current, file);
}

/** What a refused sign-in means to the person signing in. */
function signInRefusal(status, reason) {
  const wait = /try again in (\d+) s/.exec(reason || '');
  if (wait) return `Too many failed attempts. Try again in ${wait[1]} seconds.`;
  if (status === 401) return 'Wrong user name or password.';
  if (/there is no account/.test(reason || '')) return `There is no account ${me}. Create one first.`;
  return `Could not sign in: ${status} ${reason || ''}`.trim();
}

function signInError(text) {
  $('sign-in-error').textContent = text;
}

/** Closes the client and shows the sign-in form again, empty of the password, with `message`. */
function signOut(message = '') {
  if (client) client.close();
  client = null;
  signingIn = false;
  connections.clear();
  registered = false;
  contacts.clear();
  transfers.clear();
  current = null;
  $('contacts').replaceChildren();
  $('messages').replaceChildren();
  $('peer').textContent = 'Pick a contact';
  for (const id of ['text', 'send-text', 'file']) $(id).disabled = true;
  $('app').hidden = true;
  $('sign-in').hidden = false;
  $('password').value = '';
  setStatus('Not connected.');
  signInError(message);
  $(message ? 'password' : 'user').focus();
}

/** Signs in with what the form holds; the password goes to the client and leaves the form. */
async function signIn() {
  me = $('user').value.trim();
  const password = $('password').value;
  $('password').value = '';
  const delivery = new FormData($('sign-in')).get('delivery');
  signInError('');
  try {
    await init();
    // Files are hashed in a worker, so a large transfer leaves the page responsive.
    const digestWorker = new Worker(new URL('./digest-worker.js', import.meta.url), { type: 'module' });
    // Events of a client signed out of are dropped.
    const created = new RcsClient(location.origin, me, password, DOMAIN, instanceOf(me), delivery, (event) => {
      if (client === created) onEvent(event);
    }, digestWorker);
    client = created;
  } catch (error) {
    signInError(`Could not start: ${error.message || error}`);
    return;
  }
  signingIn = true;
  $('me').textContent = `Signed in as ${me}`;
  $('auto-accept').checked = delivery === 'push';
  $('sign-in').hidden = true;
  $('app').hidden = false;
  setStatus('Connecting…');
  client.start();
  $('contact').focus();
}

/** Creates the account the form names, then signs in with it. */
async function signUp() {
  if (!$('sign-in').reportValidity()) return;
  const user = $('user').value.trim();
  me = user;
  signInError('');
  try {
    await init();
    const info = await (await fetch(ACCOUNTS)).json();
    const body = accountRequest(user, info.realm, $('password').value);
    const answer = await fetch(ACCOUNTS, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    if (answer.status === 409) {
      signInError(`The name ${user} is taken. Pick another, or sign in.`);
      return;
    }
    if (!answer.ok) {
      signInError(`Could not create the account: ${(await answer.text()).trim()}`);
      return;
    }
  } catch (error) {
    signInError(`Could not create the account: ${error.message || error}`);
    return;
  }
  await signIn();
}

$('sign-in').addEventListener('submit', (e) => {
  e.preventDefault();
  signIn();
});
$('sign-up-button').addEventListener('click', () => signUp());
$('sign-out').addEventListener('click', () => signOut());

// Sign-up is offered where the deployment allows it.
fetch(ACCOUNTS)
  .then((answer) => (answer.ok ? answer.json() : null))
  .then((info) => { $('sign-up-button').hidden = !(info && info.sign_up === 'open'); })
  .catch(() => {});

$('add-contact').addEventListener('submit', (e) => {
  e.preventDefault();
  const aor = aorOf($('contact').value);
  contact(aor);
  select(aor);
  $('contact').value = '';
});

$('auto-accept').addEventListener('change', (e) => client && client.setAutoAccept(e.target.checked));

$('composer').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('text').value;
  if (!text || !current) return;
  try {
    const id = client.chat(current, text);
    const li = say(current, text, 'mine');
    li.dataset.chat = String(id);
    li.dataset.peer = current;
  } catch (error) {
    say(current, `Not sent: ${error.message || error}`, 'notice');
  }
  $('text').value = '';
});

$('file').addEventListener('change', (e) => {
  for (const file of e.target.files) sendFile(file);
  e.target.value = '';
});

const area = $('conversation');
area.addEventListener('dragover', (e) => { e.preventDefault(); area.classList.add('dragging'); });
area.addEventListener('dragleave', () => area.classList.remove('dragging'));
area.addEventListener('drop', (e) => {
  e.preventDefault();
  area.classList.remove('dragging');
  for (const file of e.dataTransfer.files) sendFile(file);
});
