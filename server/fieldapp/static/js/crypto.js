// Wire crypto of docs/protocol.md Part B with WebCrypto only: HPKE base mode (B9), session
// blobs (B3), envelopes (B4), request signatures (B5), pull pages (B6), and the browser vault.
const subtle = crypto.subtle;
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

export const utf8 = (s) => enc.encode(s);
export const fromUtf8 = (b) => dec.decode(b);
export const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) { out.set(p, i); i += p.length; }
  return out;
};
export const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
export const unhex = (h) => new Uint8Array(h.match(/../g).map((x) => parseInt(x, 16)));
export const random = (n) => crypto.getRandomValues(new Uint8Array(n));

export function b64e(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
export function b64d(text) {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(text)) throw new Error("not base64url");
  const bare = text.replace(/=+$/, "");
  const bin = atob(bare.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (bare.length % 4)) % 4));
  const out = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  if (b64e(out) !== bare) throw new Error("non-canonical base64url");
  return out;
}

export function uuidBytes(id) { return unhex(id.replace(/-/g, "").toLowerCase()); }
export function uuidString(b) {
  const h = hex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
export const uuid4 = () => crypto.randomUUID();

function u64(n) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}
const readU64 = (b, at) => Number(new DataView(b.buffer, b.byteOffset).getBigUint64(at));

// Canonical JSON = Python json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False).
// JSON.stringify escapes strings exactly as Python does then (", \, \b \f \n \r \t, other
// controls as \u00xx, lower-case hex; nothing else). Keys sort by code point as Python does.
// Only integers are allowed: float spellings differ between the two languages.
const byCodePoint = (a, b) => {
  const x = Array.from(a), y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d) return d;
  }
  return x.length - y.length;
};
export function canonical(value) {
  if (value === null || typeof value === "boolean" || typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new Error("canonical JSON holds integers only");
    return String(value);
  }
  if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
  const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort(byCodePoint);
  return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonical(value[k])).join(",") + "}";
}
export const canonicalBytes = (value) => utf8(canonical(value));

// --- primitives -------------------------------------------------------------------------------
const PKCS8 = {
  Ed25519: unhex("302e020100300506032b657004220420"),
  X25519: unhex("302e020100300506032b656e04220420"),
};
export const sha256 = async (data) => new Uint8Array(await subtle.digest("SHA-256", data));
async function hmac(key, data) {
  // WebCrypto refuses an empty HMAC key; HMAC zero-pads keys, so 32 zero bytes are the same.
  const k = await subtle.importKey("raw", key.length ? key : new Uint8Array(32),
    { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await subtle.sign("HMAC", k, data));
}
async function aesKey(raw) {
  return subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
}
export async function gcmSeal(key, nonce, pt, aad = new Uint8Array()) {
  return new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 }, key, pt));
}
export async function gcmOpen(key, nonce, ct, aad = new Uint8Array()) {
  try {
    return new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 }, key, ct));
  } catch { throw new Error("does not authenticate"); }
}
export async function importPrivate(alg, raw32, extractable = false) {
  const usages = alg === "Ed25519" ? ["sign"] : ["deriveBits"];
  return subtle.importKey("pkcs8", concat(PKCS8[alg], raw32), { name: alg }, extractable, usages);
}
export async function importPublic(alg, raw32) {
  return subtle.importKey("raw", raw32, { name: alg }, true, alg === "Ed25519" ? ["verify"] : []);
}
/** The raw public key of a raw private key (JWK export of a private key carries x). */
export async function publicOf(alg, raw32) {
  const jwk = await subtle.exportKey("jwk", await importPrivate(alg, raw32, true));
  return b64d(jwk.x);
}
export async function sign(privateKey, data) {
  return new Uint8Array(await subtle.sign({ name: "Ed25519" }, privateKey, data));
}
export async function verify(publicRaw, sig, data) {
  return subtle.verify({ name: "Ed25519" }, await importPublic("Ed25519", publicRaw), sig, data);
}

/** Fresh device keys: 64 raw bytes (Ed25519 seed || X25519 private), as sync.crypto.DeviceKeys. */
export async function generateDeviceKeys() {
  const raw = async (alg, usages) => {
    const pair = await subtle.generateKey({ name: alg }, true, usages);
    const pk8 = new Uint8Array(await subtle.exportKey("pkcs8", pair.privateKey));
    return [pk8.slice(-32), new Uint8Array(await subtle.exportKey("raw", pair.publicKey))];
  };
  const [seed, signingPublic] = await raw("Ed25519", ["sign", "verify"]);
  const [xsk, encryptionPublic] = await raw("X25519", ["deriveBits"]);
  return { secret: concat(seed, xsk), signingPublic, encryptionPublic };
}
/** Non-extractable CryptoKeys for the running page, from the 64-byte serialisation. */
export async function loadDeviceKeys(secret, encryptionPublic) {
  return {
    signing: await importPrivate("Ed25519", secret.slice(0, 32)),
    encryption: await importPrivate("X25519", secret.slice(32, 64)),
    encryptionPublic,
  };
}

// --- HPKE base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM (RFC 9180) -----------
const KEM_ID = concat(utf8("KEM"), unhex("0020"));
const HPKE_ID = concat(utf8("HPKE"), unhex("002000010002"));
const V1 = utf8("HPKE-v1");
const extract = (sid, salt, label, ikm) => hmac(salt, concat(V1, sid, utf8(label), ikm));
async function expand(sid, prk, label, info, len) {
  const out = await hmac(prk, concat(unhex(len.toString(16).padStart(4, "0")), V1, sid, utf8(label), info, [1]));
  return out.slice(0, len);
}
async function keySchedule(dh, encBytes, pkR, info) {
  const eae = await extract(KEM_ID, new Uint8Array(), "eae_prk", dh);
  const shared = await expand(KEM_ID, eae, "shared_secret", concat(encBytes, pkR), 32);
  const pskIdHash = await extract(HPKE_ID, new Uint8Array(), "psk_id_hash", new Uint8Array());
  const infoHash = await extract(HPKE_ID, new Uint8Array(), "info_hash", info);
  const context = concat([0], pskIdHash, infoHash);
  const secret = await extract(HPKE_ID, shared, "secret", new Uint8Array());
  return {
    key: await aesKey(await expand(HPKE_ID, secret, "key", context, 32)),
    nonce: await expand(HPKE_ID, secret, "base_nonce", context, 12),
  };
}
const x25519 = async (priv, pubRaw) =>
  new Uint8Array(await subtle.deriveBits({ name: "X25519", public: await importPublic("X25519", pubRaw) }, priv, 256));

export async function hpkeSeal(pkR, info, pt) {
  const eph = await subtle.generateKey({ name: "X25519" }, true, ["deriveBits"]);
  const encBytes = new Uint8Array(await subtle.exportKey("raw", eph.publicKey));
  const { key, nonce } = await keySchedule(await x25519(eph.privateKey, pkR), encBytes, pkR, info);
  return concat(encBytes, await gcmSeal(key, nonce, pt));
}
export async function hpkeOpen(skR, pkR, info, sealed) {
  if (sealed.length < 48) throw new Error("sealed data too short");
  const encBytes = sealed.slice(0, 32);
  const { key, nonce } = await keySchedule(await x25519(skR, encBytes), encBytes, pkR, info);
  return gcmOpen(key, nonce, sealed.slice(32));
}

// --- sessions (B3) and envelopes (B4) ------------------------------------------------------------
const SESSION_INFO = utf8("muster/session/v1");
const EVENT_AAD = utf8("muster/event/v1");
const PULL_INFO = utf8("muster/pull/v1");
const nonceOf = (seq) => concat(new Uint8Array(4), u64(seq));

/** A capture session: K lives only in this object (memory); each seq is sealed at most once. */
export class SealingSession {
  static async start(deviceId, signingKey, kid, serverPublic, nowMs) {
    const s = new SealingSession();
    const kidBytes = utf8(kid);
    if (!/^[\x21-\x7e]{1,64}$/.test(kid)) throw new Error("bad server key id");
    s.deviceId = deviceId;
    s.sessionId = random(16);
    const k = random(32);
    const header = concat(utf8("MSS1"), s.sessionId, uuidBytes(deviceId), u64(nowMs), [kidBytes.length], kidBytes);
    const signed = concat(header, await hpkeSeal(serverPublic, concat(SESSION_INFO, header), k));
    s.blob = concat(signed, await sign(signingKey, signed));
    s.key = await aesKey(k);
    s.used = new Set();
    s.count = 0;
    s.started = Date.now();
    return s;
  }
  discard() { this.key = null; }
  async seal(eventId, seq, plaintext) {
    if (!this.key) throw new Error("session has been discarded");
    if (!(seq >= 1) || this.used.has(seq)) throw new Error("seq already sealed or below 1");
    this.used.add(seq);
    this.count++;
    const header = concat([1], uuidBytes(eventId), this.sessionId, u64(seq));
    const aad = concat(EVENT_AAD, header, uuidBytes(this.deviceId));
    return concat(header, await gcmSeal(this.key, nonceOf(seq), plaintext, aad));
  }
}

/** Verify and open a session blob (the server's side; used to check the vectors). */
export async function openSession(blob, signingPublic, serverPrivate, serverPublic) {
  const L = blob[44];
  if (blob.length !== 189 + L || fromUtf8(blob.slice(0, 4)) !== "MSS1") throw new Error("malformed");
  const signed = blob.slice(0, 125 + L);
  if (!(await verify(signingPublic, blob.slice(125 + L), signed))) throw new Error("bad signature");
  const header = blob.slice(0, 45 + L);
  const key = await hpkeOpen(serverPrivate, serverPublic, concat(SESSION_INFO, header), blob.slice(45 + L, 125 + L));
  return {
    sessionId: blob.slice(4, 20), deviceId: uuidString(blob.slice(20, 36)),
    createdMs: readU64(blob, 36), kid: fromUtf8(blob.slice(45, 45 + L)), key,
  };
}
export async function openEnvelope(envelope, session) {
  const header = envelope.slice(0, 41);
  const seq = readU64(envelope, 33);
  const aad = concat(EVENT_AAD, header, uuidBytes(session.deviceId));
  const pt = await gcmOpen(await aesKey(session.key), nonceOf(seq), envelope.slice(41), aad);
  return { eventId: uuidString(envelope.slice(1, 17)), seq, plaintext: pt };
}

// --- requests (B5) and pull pages (B6) -------------------------------------------------------------
export async function stringToSign(method, path, deviceId, timestampMs, body) {
  return utf8(["MUSTER-REQ-1", method, path, deviceId, String(timestampMs), hex(await sha256(body))].join("\n"));
}
export async function signRequest(signingKey, method, path, deviceId, timestampMs, body) {
  return b64e(await sign(signingKey, await stringToSign(method, path, deviceId, timestampMs, body)));
}
export function openFromServer(keys, deviceId, sealed) {
  return hpkeOpen(keys.encryption, keys.encryptionPublic, concat(PULL_INFO, uuidBytes(deviceId)), sealed);
}

// --- browser vault: PBKDF2-SHA256 -> AES-256-GCM (docs/field-app.md) ---------------------------
export const VAULT_ITERATIONS = 600000; // OWASP Password Storage Cheat Sheet (2023), PBKDF2-HMAC-SHA256
const VAULT_CHECK = utf8("muster vault check v1");
const VAULT_CHECK_AAD = utf8("muster/vault-check/v1");

async function vaultKey(passphrase, salt, iterations) {
  const base = await subtle.importKey("raw", utf8(passphrase), "PBKDF2", false, ["deriveKey"]);
  return subtle.deriveKey({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, base,
    { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}
/** A passphrase-derived AES-GCM key (non-extractable, memory only): nonce || ct || tag. */
export class Vault {
  constructor(key) { this.key = key; }
  static async create(passphrase, iterations = VAULT_ITERATIONS) {
    const salt = random(16);
    const vault = new Vault(await vaultKey(passphrase, salt, iterations));
    const check = await vault.encrypt(VAULT_CHECK, VAULT_CHECK_AAD);
    return [vault, { v: 1, kdf: "pbkdf2-sha256", iterations, salt: b64e(salt), check: b64e(check) }];
  }
  static async unlock(passphrase, params) {
    if (params.v !== 1 || params.kdf !== "pbkdf2-sha256") throw new Error("unsupported vault");
    const vault = new Vault(await vaultKey(passphrase, b64d(params.salt), params.iterations));
    await vault.decrypt(b64d(params.check), VAULT_CHECK_AAD); // throws on a wrong passphrase
    return vault;
  }
  async encrypt(pt, aad) {
    const nonce = random(12);
    return concat(nonce, await gcmSeal(this.key, nonce, pt, aad));
  }
  decrypt(data, aad) { return gcmOpen(this.key, data.slice(0, 12), data.slice(12), aad); }
  async encryptJSON(value, aad) { return this.encrypt(utf8(JSON.stringify(value)), utf8(aad)); }
  async decryptJSON(data, aad) { return JSON.parse(fromUtf8(await this.decrypt(data, utf8(aad)))); }
}
