// Service worker: keep the app shell so the app opens with no network after its first load.
// Stale-while-revalidate: answer from the cache at once, refresh it when the network is there.
const CACHE = "muster-field-v1";
const SHELL = ["./", "index.html", "app.css", "manifest.webmanifest", "icon.svg", "icon-192.png",
  "icon-512.png", "js/app.js", "js/crypto.js", "js/device.js", "js/i18n.js", "js/search.js",
  "js/store.js", "js/sync.js"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  // The API is never cached: answers are signed, sealed and must be fresh.
  if (event.request.method !== "GET" || url.origin !== location.origin || !url.pathname.startsWith("/field/")) return;
  event.respondWith(caches.open(CACHE).then(async (cache) => {
    const hit = await cache.match(event.request, { ignoreSearch: true });
    const fresh = fetch(event.request).then((resp) => {
      if (resp.ok) cache.put(event.request, resp.clone());
      return resp;
    });
    if (hit) {
      event.waitUntil(fresh.catch(() => null));
      return hit;
    }
    return fresh;
  }));
});
