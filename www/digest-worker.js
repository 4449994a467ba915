// The digest worker: SHA-256 of received and sent files, off the page's main thread, with the
// client's own hasher (web-client/src/digest_worker.rs). The client (web-client/src/browser.rs)
// posts:
//   { kind: 'part', id, offset, bytes }   a part of received file `id` (an ArrayBuffer, transferred)
//   { kind: 'finish', id, size, file }     file `id` is complete; `file` is the assembled Blob
//   { kind: 'forget', id }                 file `id` will not complete
//   { kind: 'file', id, file }             hash this Blob, a file to send
// and gets { id, sha256 } back for 'finish' and 'file' (64 hex digits), or { id, error }.
import init, { PartHasher } from './pkg/rcs_web_client.js';

const ready = init();
const hashers = new Map();
// Bytes read at a time when a whole Blob is hashed.
const SLICE = 1 << 20;

async function hashBlob(blob) {
  const hasher = new PartHasher();
  try {
    for (let at = 0; at < blob.size; at += SLICE) {
      const bytes = new Uint8Array(await blob.slice(at, at + SLICE).arrayBuffer());
      hasher.write(at, bytes);
    }
    return hasher.finish(blob.size);
  } finally {
    hasher.free();
  }
}

function take(id) {
  const hasher = hashers.get(id);
  hashers.delete(id);
  return hasher;
}

onmessage = async ({ data }) => {
  await ready;
  try {
    switch (data.kind) {
      case 'part': {
        let hasher = hashers.get(data.id);
        if (!hasher) {
          hasher = new PartHasher();
          hashers.set(data.id, hasher);
        }
        hasher.write(data.offset, new Uint8Array(data.bytes));
        break;
      }
      case 'finish': {
        const hasher = take(data.id);
        let sha256 = hasher?.finish(data.size);
        hasher?.free();
        if (sha256 === undefined) sha256 = await hashBlob(data.file);
        postMessage({ id: data.id, sha256 });
        break;
      }
      case 'forget':
        take(data.id)?.free();
        break;
      case 'file':
        postMessage({ id: data.id, sha256: await hashBlob(data.file) });
        break;
      default:
        break;
    }
  } catch (error) {
    postMessage({ id: data.id, error: String(error?.message || error) });
  }
};
