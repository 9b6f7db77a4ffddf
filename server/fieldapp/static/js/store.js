// IndexedDB: non-personal state in "meta", personal data only as vault ciphertext in "roster",
// sealed envelopes in "outbox" (with their state), session blobs in "sessions".
const NAME = "muster-field";
let dbPromise = null;

export function openDB() {
  dbPromise ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(NAME, 1);
    req.onupgradeneeded = () => {
      const db = req.result;
      db.createObjectStore("meta");
      db.createObjectStore("roster", { keyPath: "id" }).createIndex("entity", "entity");
      db.createObjectStore("outbox", { keyPath: "seq" }).createIndex("state", "state");
      db.createObjectStore("sessions", { keyPath: "id" });
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  return dbPromise;
}

const done = (req) => new Promise((resolve, reject) => {
  req.onsuccess = () => resolve(req.result);
  req.onerror = () => reject(req.error);
});

/** Run fn(stores, t) in one transaction; resolves with fn's value once the transaction commits. */
async function run(names, mode, fn) {
  const db = await openDB();
  return new Promise((resolve, reject) => {
    const t = db.transaction(names, mode, { durability: "strict" });
    const stores = Object.fromEntries(names.map((n) => [n, t.objectStore(n)]));
    let value;
    Promise.resolve(fn(stores, t)).then((v) => { value = v; }, (e) => { t.abort(); reject(e); });
    t.oncomplete = () => resolve(value);
    t.onerror = t.onabort = () => reject(t.error ?? new Error("transaction aborted"));
  });
}

export const getMeta = (key) => run(["meta"], "readonly", (s) => done(s.meta.get(key)));
export const setMeta = (values) => run(["meta"], "readwrite", (s) => {
  for (const [k, v] of Object.entries(values)) s.meta.put(v, k);
});
export const rosterRows = (entity) => run(["roster"], "readonly",
  (s) => done(s.roster.index("entity").getAll(entity)));
export const outbox = () => run(["outbox"], "readonly", (s) => done(s.outbox.getAll()));
export const sessions = (ids) => run(["sessions"], "readonly",
  (s) => Promise.all(ids.map((id) => done(s.sessions.get(id)))));

/** Queued entries after seq, in seq order, at most limit. */
export const queued = (afterSeq, limit) => run(["outbox"], "readonly", async (s) => {
  const all = await done(s.outbox.getAll(IDBKeyRange.lowerBound(afterSeq, true)));
  return all.filter((e) => e.state === "queued").slice(0, limit);
});

/** Store one capture atomically: outbox entry, its session blob, journal rows, next seq. */
export const commitCapture = (entry, session, rows) =>
  run(["meta", "outbox", "sessions", "roster"], "readwrite", async (s) => {
    const next = (await done(s.meta.get("next_seq"))) ?? 1;
    if (next !== entry.seq) throw new Error("sequence moved; capture again");
    s.sessions.put(session);
    s.outbox.add(entry);
    for (const row of rows) s.roster.put(row);
    s.meta.put(entry.seq + 1, "next_seq");
  });

/** Apply push answers in one transaction: seq -> {state, code, message}. */
export const applyAnswers = (changes) => run(["outbox"], "readwrite", async (s) => {
  for (const [seq, change] of changes) {
    const entry = await done(s.outbox.get(seq));
    s.outbox.put({ ...entry, ...change, attempts: (entry.attempts ?? 0) + 1 });
  }
});

/** Store a pulled page and its cursor together (docs/protocol.md A5). */
export const savePage = (rows, meta, clear = false) =>
  run(["roster", "meta"], "readwrite", (s) => {
    if (clear) s.roster.clear();
    for (const row of rows) s.roster.put(row);
    for (const [k, v] of Object.entries(meta)) s.meta.put(v, k);
  });

export const clearRoster = () => run(["roster", "meta"], "readwrite", async (s) => {
  const rows = await done(s.roster.getAll());
  for (const r of rows) if (r.entity !== "capture") s.roster.delete(r.id);
  s.meta.put(0, "cursor");
});
