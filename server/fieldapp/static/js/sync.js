// Talking to the server like sync/transport.py and sync/device.py: signed, versioned, gzip
// requests; pushes in bounded batches (halved on 413) with per-record answers; pull pages;
// exponential backoff with full jitter (base 0.5 s, cap 30 s, 6 attempts per sync).
import { b64d, b64e, signRequest, utf8 } from "./crypto.js";
import * as store from "./store.js";

const API = "/api/v1";
const RETRYABLE = new Set([408, 425, 429, 500, 502, 503, 504]);
export const BACKOFF = { base: 500, cap: 30000, attempts: 6 };

export class Offline extends Error {}
export class Refused extends Error {
  constructor(status, code, message, details) {
    super(message);
    Object.assign(this, { status, code, details });
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const backoffDelay = (n) => Math.random() * Math.min(BACKOFF.cap, BACKOFF.base * 2 ** (n - 1));

async function gzip(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** One request; the JSON answer, or Offline (retry later) / Refused (the server said no). */
export async function call(device, method, path, body, { compress = true } = {}) {
  let raw = new Uint8Array();
  const headers = { "Muster-Protocol": "1" };
  if (body !== undefined) {
    raw = utf8(JSON.stringify(body));
    headers["Content-Type"] = "application/json";
    if (compress) { raw = await gzip(raw); headers["Content-Encoding"] = "gzip"; }
  }
  const full = API + path;
  if (device) {
    const now = Date.now();
    headers["Muster-Device"] = device.id;
    headers["Muster-Timestamp"] = String(now);
    headers["Muster-Signature"] = await signRequest(device.keys.signing, method, full, device.id, now, raw);
  }
  let resp;
  try {
    resp = await fetch(full, { method, headers, body: method === "GET" ? undefined : raw, cache: "no-store" });
  } catch {
    throw new Offline("No connection to the server.");
  }
  const data = await resp.json().catch(() => null);
  if (resp.ok && data) return data;
  if (RETRYABLE.has(resp.status) || !data?.error) throw new Offline(`The server is busy (HTTP ${resp.status}).`);
  throw new Refused(resp.status, data.error.code, data.error.message, data.error.details);
}

/** Call with backoff on Offline; give up after BACKOFF.attempts or at once when the OS says offline. */
async function withRetry(fn) {
  for (let failures = 1; ; failures++) {
    try { return await fn(); } catch (e) {
      if (!(e instanceof Offline) || failures >= BACKOFF.attempts || !navigator.onLine) throw e;
      await sleep(backoffDelay(failures));
    }
  }
}

/** A prefix of entries whose base64 size stays under limitBytes (at least one). */
function fit(entries, limitBytes) {
  let size = 0;
  const out = [];
  for (const e of entries) {
    size += Math.ceil((e.envelope.length * 4) / 3) + 4;
    if (out.length && size > limitBytes) break;
    out.push(e);
  }
  return out;
}

/** Send queued envelopes; an entry changes state only on an answer that names it. */
export async function push(device, report) {
  const maxRecords = device.settings.push_max_records ?? 500;
  const limitBytes = Math.floor((device.settings.push_max_bytes ?? 1 << 20) / 2);
  let batch = Math.min(500, maxRecords);
  let after = 0, passes = 0;
  for (;;) {
    let entries = await store.queued(after, batch);
    if (!entries.length) {
      // One pass over the queue is done; records told to retry get more passes.
      const left = (await store.outbox()).filter((e) => e.state === "queued").length;
      if (!left || passes >= BACKOFF.attempts) return report;
      passes++;
      await sleep(backoffDelay(passes));
      after = 0;
      continue;
    }
    entries = fit(entries, limitBytes);
    const ids = [...new Set(entries.map((e) => e.session_id))];
    const blobs = (await store.sessions(ids)).map((s) => b64e(s.blob));
    const body = { clock: Date.now(), sessions: blobs, envelopes: entries.map((e) => b64e(e.envelope)) };
    let answer;
    try {
      answer = await withRetry(() => call(device, "POST", "/sync/push", body));
    } catch (e) {
      if (e instanceof Refused && e.code === "payload_too_large" && batch > 1) {
        batch = Math.max(1, Math.floor(Math.min(batch, entries.length) / 2));
        continue;
      }
      throw e;
    }
    const byIndex = new Map((answer.results || []).map((r) => [r.index, r]));
    const changes = [];
    const now = Date.now();
    entries.forEach((entry, i) => {
      const r = byIndex.get(i);
      if (!r || (r.id !== undefined && r.id !== entry.event_id) || (r.id === undefined && r.status !== "rejected")) return;
      if (r.status === "accepted" || r.status === "duplicate") {
        changes.push([entry.seq, { state: "sent", answered_ms: now, code: null, message: null }]);
        report[r.status]++;
      } else if (r.status === "rejected") {
        changes.push([entry.seq, { state: "rejected", answered_ms: now, code: String(r.code || "").slice(0, 40), message: String(r.message || "").slice(0, 500) }]);
        report.rejected++;
      }
    });
    await store.applyAnswers(changes);
    report.pushed += entries.length;
    after = entries[entries.length - 1].seq;
  }
}

/** Pull roster pages until `more` is false; each page and its cursor are stored together. */
export async function pull(device, report) {
  for (;;) {
    const cursor = (await store.getMeta("cursor")) ?? 0;
    let answer;
    try {
      answer = await withRetry(() => call(device, "GET", `/sync/pull?cursor=${cursor}`));
    } catch (e) {
      if (e instanceof Refused && e.code === "cursor_reset") {
        await store.clearRoster();
        await device.reloadRoster();
        continue;
      }
      throw e;
    }
    const page = JSON.parse(new TextDecoder().decode(await device.openFromServer(b64d(answer.sealed))));
    report.pulled_people += await device.savePage(page, answer.cursor);
    if (!answer.more) return report;
  }
}

/** Push everything queued, then pull; never throws for a lost connection. */
export async function sync(device) {
  const report = { pushed: 0, accepted: 0, duplicate: 0, rejected: 0, pulled_people: 0, offline: false, error: null };
  try {
    await push(device, report);
    await pull(device, report);
  } catch (e) {
    if (e instanceof Offline) report.offline = true;
    else if (e instanceof Refused && e.code === "device_revoked") await store.setMeta({ revoked: true });
    report.error = e.code || e.message;
  }
  report.still_queued = (await store.outbox()).filter((e) => e.state === "queued").length;
  await store.setMeta({ last_sync: { at: Date.now(), offline: report.offline, error: report.error } });
  return report;
}
