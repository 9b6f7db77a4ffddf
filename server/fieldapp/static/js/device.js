// The enrolled device in the browser: mirrors sync/device.py (enrol, unlock, capture, roster).
import * as c from "./crypto.js";
import * as store from "./store.js";
import { RosterIndex } from "./search.js";
import { call, sync } from "./sync.js";

const SESSION_MAX_RECORDS = 1000;
const SESSION_MAX_MS = 3600 * 1000;
const KEYS_AAD = c.utf8("muster/device-keys");
const rowAad = (id) => `muster/roster/${id}`;

export class Device {
  /** Make keys, enrol with a one-time code, pin the server keys; personal data under the vault. */
  static async enrol({ code, passphrase, author, label = "" }) {
    if (await store.getMeta("device_id")) throw new Error("already enrolled");
    const keys = await c.generateDeviceKeys();
    const [vault, params] = await c.Vault.create(passphrase);
    const answer = await call(null, "POST", "/sync/enrol", {
      code, signing_key: c.b64e(keys.signingPublic), encryption_key: c.b64e(keys.encryptionPublic),
      label, clock: Date.now(),
    }, { compress: false });
    await store.setMeta({
      vault: params,
      device_keys: await vault.encrypt(keys.secret, KEYS_AAD),
      encryption_public: keys.encryptionPublic,
      device_id: answer.device_id,
      operation: answer.operation,
      server_keys: answer.server_keys,
      current_kid: answer.current_kid,
      settings: answer.settings,
      profile: await vault.encryptJSON({ author }, "muster/profile"),
      next_seq: 1,
      cursor: 0,
    });
    keys.secret.fill(0);
    return Device.load(vault);
  }

  /** Unlock an enrolled store; throws on a wrong passphrase. */
  static async open(passphrase) {
    const params = await store.getMeta("vault");
    if (!params) throw new Error("not enrolled");
    return Device.load(await c.Vault.unlock(passphrase, params));
  }

  static async load(vault) {
    const d = new Device();
    d.vault = vault;
    d.id = await store.getMeta("device_id");
    const secret = await vault.decrypt(await store.getMeta("device_keys"), KEYS_AAD);
    d.keys = await c.loadDeviceKeys(secret, await store.getMeta("encryption_public"));
    secret.fill(0);
    d.author = (await vault.decryptJSON(await store.getMeta("profile"), "muster/profile")).author;
    d.settings = (await store.getMeta("settings")) || {};
    d.session = null;
    await d.reloadRoster();
    return d;
  }

  async decryptRows(entity) {
    return Promise.all((await store.rosterRows(entity)).map((r) => this.vault.decryptJSON(r.data, rowAad(r.id))));
  }
  async reloadRoster() {
    this.operation = await store.getMeta("operation");
    this.checkpoints = await this.decryptRows("checkpoint");
    this.groups = await this.decryptRows("group");
    this.index = new RosterIndex();
    for (const p of await this.decryptRows("person")) this.index.add(p);
    this.journal = new Map((await this.decryptRows("capture")).map((j) => [j.event_id, j]));
  }
  async row(entity, item, key = item.id) {
    const id = `${entity}:${key}`;
    return { id, entity, data: await this.vault.encryptJSON(item, rowAad(id)) };
  }

  openFromServer(sealed) { return c.openFromServer(this.keys, this.id, sealed); }
  async savePage(page, cursor) {
    const rows = [];
    for (const [entity, items] of [["checkpoint", page.checkpoints], ["group", page.groups], ["person", page.people]]) {
      for (const item of items || []) rows.push(await this.row(entity, item));
    }
    await store.savePage(rows, {
      operation: page.operation, server_keys: page.server_keys, current_kid: page.current_kid, cursor,
    });
    await this.reloadRoster();
    return (page.people || []).length;
  }

  // Capture ----------------------------------------------------------------------------------
  checkin(person, checkpoint, { status = "present", method = "search", group, note } = {}) {
    return this.capture("checkin", { person, checkpoint, status, method, group, note });
  }
  async walkin(details, checkpoint, { note } = {}) {
    const person = c.uuid4();
    await this.capture("walkin", { person, checkpoint, details, method: "walk-in", note },
      { ...details, id: person, source: "walk-in" });
    return person;
  }
  headcount(checkpoint, group, count, { note } = {}) {
    return this.capture("headcount", { checkpoint, group, count, note });
  }
  flag(person, flag, { checkpoint, note } = {}) {
    return this.capture("flag", { person, flag, checkpoint, note });
  }
  void(ref, { note } = {}) {
    if (!this.journal.has(ref)) throw new Error("no such event on this device");
    return this.capture("void", { ref, note });
  }

  /** Seal and store one event in one local transaction; a failed commit ends the session. */
  async capture(kind, fields, localPerson) {
    const body = { ...fields, v: 1, kind, op: this.operation.id, at: Date.now(), author: this.author };
    for (const k of Object.keys(body)) if (body[k] === undefined || body[k] === null || body[k] === "") delete body[k];
    const eventId = c.uuid4();
    const work = async () => {
      const seq = (await store.getMeta("next_seq")) ?? 1;
      const session = await this.currentSession();
      try {
        const envelope = await session.seal(eventId, seq, c.canonicalBytes(body));
        const journal = { event_id: eventId, seq, kind, at: body.at, person: body.person, ref: body.ref,
          flag: body.flag, count: body.count, checkpoint: body.checkpoint, name: localPerson?.full_name };
        const rows = [await this.row("capture", journal, eventId)];
        if (localPerson) rows.push(await this.row("person", localPerson));
        await store.commitCapture(
          { seq, event_id: eventId, session_id: c.hex(session.sessionId), kind, captured_ms: body.at, envelope, state: "queued" },
          { id: c.hex(session.sessionId), blob: session.blob }, rows);
        this.journal.set(eventId, journal);
        if (localPerson) this.index.add(localPerson);
      } catch (e) {
        // A sealed record that did not commit must never share a nonce with another.
        session.discard();
        this.session = null;
        throw e;
      }
    };
    // One capture at a time across tabs, so sequence numbers stay gap-free.
    if (navigator.locks) await navigator.locks.request("muster-capture", work);
    else await work();
    return eventId;
  }

  async currentSession() {
    const s = this.session;
    if (!s || !s.key || s.count >= SESSION_MAX_RECORDS || Date.now() - s.started > SESSION_MAX_MS) {
      s?.discard();
      const kid = await store.getMeta("current_kid");
      const key = (await store.getMeta("server_keys")).find((k) => k.kid === kid);
      this.session = await c.SealingSession.start(this.id, this.keys.signing, kid, c.b64d(key.public_key), Date.now());
    }
    return this.session;
  }

  lock() { this.session?.discard(); this.session = null; this.vault = null; this.keys = null; }
  sync() { return sync(this); }
}
