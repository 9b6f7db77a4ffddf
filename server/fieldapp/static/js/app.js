// The field app's screens: enrol, unlock, find and check in, walk-in, headcount, outbox.
import { Device } from "./device.js";
import * as i18n from "./i18n.js";
import * as store from "./store.js";
import { scannedId } from "./search.js";
import { BACKOFF, backoffDelay } from "./sync.js";

const $ = (sel) => document.querySelector(sel);
function el(tag, { dataset = {}, ...props } = {}, ...children) {
  const e = Object.assign(document.createElement(tag), props);
  Object.assign(e.dataset, dataset);
  e.append(...children);
  return e;
}
const t = i18n.t;
let device = null;
let syncing = null;
let retries = 0;
let retryTimer = null;

function toast(text) {
  const box = $("#toast");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 4000);
}
function show(id) {
  for (const s of ["#enrol", "#unlock", "#main"]) $(s).hidden = s !== id;
  document.body.dataset.screen = id.slice(1);
}
function showNet() {
  $("#net").textContent = t(navigator.onLine ? "online" : "offline");
  $("#net").className = "badge " + (navigator.onLine ? "ok" : "warn");
}
const checkpoint = () => Number($("#checkpoint").value);

// Screens ---------------------------------------------------------------------------------------
async function start() {
  i18n.apply();
  showNet();
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("sw.js", { scope: "./" });
  if ("BarcodeDetector" in window) for (const b of document.querySelectorAll(".scan")) b.hidden = false;
  show((await store.getMeta("device_id")) ? "#unlock" : "#enrol");
}

async function enrolled(d) {
  device = d;
  show("#main");
  fillSelects();
  renderResults();
  await renderOutbox();
  if (navigator.onLine) syncNow();
}

function fillSelects() {
  const cp = $("#checkpoint"), keep = cp.value || localStorage.getItem("muster-checkpoint");
  cp.replaceChildren(...device.checkpoints.map((c) => el("option", { value: c.id, textContent: c.name })));
  if (keep && device.checkpoints.some((c) => String(c.id) === keep)) cp.value = keep;
  $("#h-group").replaceChildren(...device.groups.map((g) => el("option", { value: g.id, textContent: g.name })));
  $("#op-name").textContent = device.operation?.name || t("title");
}

function personCard(p) {
  const done = [...device.journal.values()].some((j) => j.kind === "checkin" && j.person === p.id && j.checkpoint === checkpoint());
  const flags = el("select", { className: "flag-kind", ariaLabel: t("flag") },
    ...["medical", "injured", "vulnerable", "lost-documents", "other"].map((f) => el("option", { value: f, textContent: t(f) })));
  const checkBtn = el("button", { type: "button", className: "primary checkin", textContent: t(done ? "checkedIn" : "checkin"), disabled: done });
  // A code typed by a hand-held scanner (a keyboard to the phone) is a scan as well.
  const method = scannedId($("#search").value) === p.id ? "scan" : lastMethod;
  checkBtn.onclick = () => capture(() => device.checkin(p.id, checkpoint(), { method, group: p.group ?? undefined }));
  const flagBtn = el("button", { type: "button", className: "flagbtn", textContent: t("flag") });
  flagBtn.onclick = () => capture(() => device.flag(p.id, flags.value, { checkpoint: checkpoint() }));
  const extra = [...(p.alternate_names || []), p.document_number].filter(Boolean).join(" · ");
  return el("li", { className: "card" + (done ? " done" : ""), dataset: { person: p.id } },
    el("strong", { className: "pname", textContent: p.full_name }), el("small", { textContent: extra }),
    el("div", { className: "row" }, checkBtn, flags, flagBtn));
}

let lastMethod = "search";
function renderResults() {
  const q = $("#search").value;
  const found = device.index.find(q, 10);
  $("#results").replaceChildren(...found.map(personCard));
  if (q.trim() && !found.length) $("#results").append(el("li", { className: "empty", textContent: t("noResults") }));
}

async function renderOutbox() {
  const entries = (await store.outbox()).reverse();
  const n = { queued: 0, sent: 0, rejected: 0 };
  for (const e of entries) n[e.state]++;
  for (const k of Object.keys(n)) $(`#n-${k}`).textContent = n[k];
  $("#queued-count").textContent = n.queued;
  $("#outbox-list").replaceChildren(...entries.slice(0, 200).map((e) => {
    const j = device.journal.get(e.event_id) || {};
    const who = j.name || device.index.people.get(j.person)?.full_name || (j.count !== undefined ? String(j.count) : "");
    const li = el("li", { className: `card state-${e.state}`, dataset: { state: e.state, seq: e.seq, event: e.event_id } },
      el("strong", { textContent: `#${e.seq} ${t(e.kind + "_k")} ${who}` }),
      el("span", { className: `badge ${e.state}`, textContent: t(e.state) }));
    if (e.state === "rejected") li.append(el("small", { className: "reason", textContent: `${e.code}: ${e.message}` }));
    if (e.kind !== "void") {
      const b = el("button", { type: "button", className: "small void", textContent: t("void") });
      b.onclick = () => capture(() => device.void(e.event_id));
      li.append(b);
    }
    return li;
  }));
}

// Actions ---------------------------------------------------------------------------------------
async function capture(fn) {
  try {
    await fn();
    toast(t("saved"));
  } catch (e) {
    toast(e.message);
  }
  renderResults();
  await renderOutbox();
  if (navigator.onLine) scheduleSync(1500);
}

function scheduleSync(ms) {
  clearTimeout(retryTimer);
  retryTimer = setTimeout(syncNow, ms);
}

/** Sync once (never two at a time); if records stay queued, retry later with backoff. */
function syncNow() {
  if (!device) return Promise.resolve();
  syncing ??= (async () => {
    document.body.dataset.sync = "running";
    toast(t("syncing"));
    const report = await device.sync();
    await device.reloadRoster();
    fillSelects();
    renderResults();
    await renderOutbox();
    document.body.dataset.sync = report.error ? "failed" : "done";
    toast(report.error === "device_revoked" ? t("revoked") : report.error ? t("syncFailed") : t("synced"));
    if (report.still_queued && report.error !== "device_revoked" && navigator.onLine) {
      retries = Math.min(retries + 1, 10);
      scheduleSync(Math.max(1000, backoffDelay(BACKOFF.attempts + retries)));
    } else retries = 0;
    return report;
  })().finally(() => { syncing = null; });
  return syncing;
}

// Camera scan where the browser has BarcodeDetector; typing works everywhere.
async function scanInto(input) {
  const dialog = $("#scanner"), video = $("#scan-video");
  const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
  video.srcObject = stream;
  dialog.showModal();
  await video.play();
  const detector = new BarcodeDetector({ formats: ["qr_code", "code_128", "pdf417"] });
  const stop = () => { stream.getTracks().forEach((tr) => tr.stop()); if (dialog.open) dialog.close(); };
  dialog.onclose = stop;
  while (dialog.open) {
    const [code] = await detector.detect(video).catch(() => []);
    if (code) {
      input.value = code.rawValue;
      stop();
      input.dispatchEvent(new Event("input"));
      lastMethod = "scan";
      return;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

// Wiring ----------------------------------------------------------------------------------------
$("#lang").onclick = () => { i18n.toggle(); showNet(); if (device) { renderResults(); renderOutbox(); } };
for (const b of document.querySelectorAll(".scan")) b.onclick = () => scanInto($("#" + b.dataset.target)).catch((e) => toast(e.message));
for (const b of document.querySelectorAll(".tab")) {
  b.onclick = () => {
    for (const p of document.querySelectorAll(".panel")) p.hidden = p.id !== b.dataset.tab;
    for (const o of document.querySelectorAll(".tab")) o.classList.toggle("active", o === b);
    if (b.dataset.tab === "outbox") renderOutbox();
  };
}
$("#search").oninput = (ev) => { if (ev.isTrusted) lastMethod = "search"; renderResults(); };
$("#checkpoint").onchange = () => { localStorage.setItem("muster-checkpoint", $("#checkpoint").value); renderResults(); };
$("#sync").onclick = () => syncNow();
$("#lock").onclick = () => { device.lock(); device = null; $("#results").replaceChildren(); show("#unlock"); };
window.addEventListener("online", () => { showNet(); syncNow(); });
window.addEventListener("offline", showNet);

$("#enrol").onsubmit = async (ev) => {
  ev.preventDefault();
  if ($("#enrol-pass").value !== $("#enrol-pass2").value) return toast(t("mismatch"));
  $("#enrol-btn").disabled = true;
  try {
    await enrolled(await Device.enrol({
      code: $("#enrol-code").value.trim(), passphrase: $("#enrol-pass").value,
      author: $("#enrol-author").value.trim(), label: $("#enrol-label").value.trim(),
    }));
  } catch (e) {
    toast(e.message);
  } finally {
    $("#enrol-btn").disabled = false;
  }
};
$("#unlock").onsubmit = async (ev) => {
  ev.preventDefault();
  $("#unlock-btn").disabled = true;
  try {
    await enrolled(await Device.open($("#unlock-pass").value));
    $("#unlock-pass").value = "";
  } catch {
    toast(t("wrongPass"));
  } finally {
    $("#unlock-btn").disabled = false;
  }
};
$("#walkin-form").onsubmit = async (ev) => {
  ev.preventDefault();
  const details = {
    full_name: $("#w-name").value.trim(),
    alternate_names: $("#w-alt").value.split(/[,，;；、]/).map((s) => s.trim()).filter(Boolean),
    document_number: $("#w-doc").value.trim() || undefined,
    sex: $("#w-sex").value || undefined,
  };
  if (!details.alternate_names.length) delete details.alternate_names;
  await capture(() => device.walkin(details, checkpoint(), { note: $("#w-note").value.trim() || undefined }));
  $("#walkin-form").reset();
};
$("#headcount-form").onsubmit = async (ev) => {
  ev.preventDefault();
  await capture(() => device.headcount(checkpoint(), Number($("#h-group").value), Number($("#h-count").value)));
};

start();
