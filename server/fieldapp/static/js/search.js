// Roster search in any script: the essentials of sync/normalize.py and sync/search.py.
// Chinese characters match as characters (no pinyin table ships to the phone); pinyin matches
// through the alternate names rosters carry. See docs/field-app.md.
const DOC_SEPARATORS = /[\s\-\u2010-\u2015\u2212\ufe58\ufe63\uff0d./\\]+/gu;
const WORD_JOINERS = /[-\u2010-\u2015'\u2019\u02bc`]/gu;
const HAN_SPLIT = /([\u3400-\u9fff\uf900-\ufaff\u{20000}-\u{2ffff}]+)/u;
const HAN = /^[\u3400-\u9fff\uf900-\ufaff\u{20000}-\u{2ffff}]/u;

const UK = {а:"a",б:"b",в:"v",г:"h",ґ:"g",д:"d",е:"e",є:"ie",ж:"zh",з:"z",и:"y",і:"i",ї:"i",й:"i",
  к:"k",л:"l",м:"m",н:"n",о:"o",п:"p",р:"r",с:"s",т:"t",у:"u",ф:"f",х:"kh",ц:"ts",ч:"ch",ш:"sh",
  щ:"shch",ь:"",ю:"iu",я:"ia","'":"","’":"","ʼ":""};
const UK_INITIAL = {є:"ye",ї:"yi",й:"y",ю:"yu",я:"ya"};
const RU = {а:"a",б:"b",в:"v",г:"g",д:"d",е:"e",ё:"e",ж:"zh",з:"z",и:"i",й:"i",к:"k",л:"l",м:"m",
  н:"n",о:"o",п:"p",р:"r",с:"s",т:"t",у:"u",ф:"f",х:"kh",ц:"ts",ч:"ch",ш:"sh",щ:"shch",ъ:"ie",
  ы:"y",ь:"",э:"e",ю:"iu",я:"ia"};
const UK_ONLY = /[іїєґ]/u, RU_ONLY = /[ыэёъ]/u;
const VARIANTS = [["kh","h"],["iu","yu"],["ia","ya"],["ie","ye"],["ii","iy"],["yi","iy"]];

const lower = (s) => s.toLowerCase().replace(/ß/g, "ss"); // close to Python's casefold

/** NFKC, case-fold, no diacritics, single spaces (sync.normalize.fold). */
export function fold(text) {
  let current = text || "";
  for (let i = 0; i < 4; i++) {
    const next = lower(current.normalize("NFKC")).normalize("NFD").replace(/\p{M}/gu, "")
      .normalize("NFKC").split(/\s+/u).filter(Boolean).join(" ");
    if (next === current) break;
    current = next;
  }
  return current;
}

/** Normalise a document number: 'ab-123 o45' -> 'AB123045' (sync.normalize.document_key). */
export function documentKey(raw) {
  let current = raw || "";
  for (let i = 0; i < 4; i++) {
    const next = current.normalize("NFKC").toUpperCase().replace(DOC_SEPARATORS, "").replace(/O/g, "0");
    if (next === current) break;
    current = next;
  }
  return current;
}

/** Write Cyrillic in Latin with the Ukrainian or Russian passport table (auto by letters). */
export function transliterate(text, table) {
  text = lower(text.normalize("NFC"));
  table ??= RU_ONLY.test(text) && !UK_ONLY.test(text) ? "ru" : "uk";
  const map = table === "uk" ? UK : RU;
  return text.replace(/[\u0400-\u04ff'’ʼ]+/gu, (word) => Array.from(word, (ch, i) => {
    if (table === "uk" && i === 0 && UK_INITIAL[ch]) return UK_INITIAL[ch];
    if (table === "uk" && ch === "г" && i > 0 && word[i - 1] === "з") return "gh";
    return map[ch] ?? ch;
  }).join(""));
}

/** Folded Latin tokens of a name; Chinese characters are tokens one by one (any order). */
export function nameTokens(name, table) {
  const text = transliterate(lower((name || "").normalize("NFKC")), table);
  const out = [];
  for (const chunk of text.split(HAN_SPLIT)) {
    if (!chunk) continue;
    if (HAN.test(chunk)) { out.push(...Array.from(chunk)); continue; }
    out.push(...fold(chunk.replace(WORD_JOINERS, "")).replace(/[^\p{L}\p{N}]+/gu, " ").split(" "));
  }
  return [...new Set(out.filter(Boolean))];
}

function variants(token) {
  let out = new Set([token]);
  for (const [from, to] of VARIANTS) {
    for (const t of [...out]) if (t.includes(from)) out.add(t.replaceAll(from, to));
  }
  return out;
}

function personKeys(p) {
  const names = [p.full_name || "", `${p.given_name || ""} ${p.family_name || ""}`, ...(p.alternate_names || [])];
  const keys = new Set();
  for (const n of names) {
    if (!n.trim()) continue;
    for (const table of ["uk", "ru"]) for (const t of nameTokens(n, table)) for (const v of variants(t)) keys.add(v);
  }
  return [...keys];
}

/** A scanned code carries the person id, bare or as muster:person:<uuid>. */
export function scannedId(text) {
  const candidate = text.trim().split(":").pop().toLowerCase();
  return /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/.test(candidate)
    ? candidate.replace(/-/g, "").replace(/^(.{8})(.{4})(.{4})(.{4})/, "$1-$2-$3-$4-") : "";
}

/** Every query token must match a key exactly (10) or as a prefix of 2+ characters (5). */
function score(wanted, keys) {
  let total = 0;
  for (const w of wanted) {
    if (keys.includes(w)) total += 10;
    else if ((w.length >= 2 || HAN.test(w)) && keys.some((k) => k.startsWith(w))) total += 5;
    else return 0;
  }
  return total / wanted.length;
}

export class RosterIndex {
  constructor() { this.people = new Map(); this.keys = new Map(); this.docs = new Map(); }
  add(p) {
    this.people.set(p.id, p);
    this.keys.set(p.id, personKeys(p));
    const key = documentKey(p.document_number || "");
    if (key) this.docs.set(key, [...(this.docs.get(key) || []).filter((id) => id !== p.id), p.id]);
  }
  find(query, limit = 10) {
    const text = (query || "").trim();
    if (!text) return [];
    const hits = new Map();
    const bump = (id, s) => hits.set(id, Math.max(hits.get(id) || 0, s));
    const scanned = scannedId(text);
    if (this.people.has(scanned)) bump(scanned, 100);
    for (const id of this.docs.get(documentKey(text)) || []) bump(id, 90);
    const wanted = nameTokens(text);
    if (wanted.length) for (const [id, keys] of this.keys) { const s = score(wanted, keys); if (s) bump(id, s); }
    return [...hits.keys()]
      .sort((a, b) => hits.get(b) - hits.get(a) || (this.people.get(a).full_name || "").localeCompare(this.people.get(b).full_name || ""))
      .slice(0, limit).map((id) => this.people.get(id));
  }
}
