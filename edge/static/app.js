// The kiosk page: live mirror, touch controls, recommendations, attract screen.
// Everything is served by the daemon; no network beyond the device.
"use strict";
(() => {
  const $ = (s) => document.querySelector(s);
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const q = token ? "?token=" + encodeURIComponent(token) : "";
  let catalog = { products: [], looks: [] };
  let category = "looks";
  let current = { name: null, sku: null };

  const live = $("#live");
  live.src = "/stream.mjpg" + q;
  live.addEventListener("error", () => setTimeout(() => { live.src = "/stream.mjpg" + q + (q ? "&" : "?") + "t=" + Date.now(); }, 1000));

  async function api(method, path, body) {
    const r = await fetch(path + q, { method, headers: { "Content-Type": "application/json", ...headers },
      body: body ? JSON.stringify(body) : undefined });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(data.detail || r.statusText);
    return data;
  }
  const status = (t) => { $("#status").textContent = t; };

  function chip(hex, label, active, onClick, extraClass) {
    const b = document.createElement("button");
    b.className = "swatch" + (extraClass ? " " + extraClass : "") + (active ? " active" : "");
    if (hex) { const c = document.createElement("span"); c.className = "chip"; c.style.background = hex; b.appendChild(c); }
    const t = document.createElement("span"); t.textContent = label; b.appendChild(t);
    b.addEventListener("click", onClick);
    return b;
  }

  function renderChoices() {
    const box = $("#choices"); box.replaceChildren();
    if (category === "looks") {
      for (const l of catalog.looks) {
        box.appendChild(chip(null, l.title || l.name, current.name === l.name, () => chooseLook(l.name), "look"));
      }
      return;
    }
    for (const p of catalog.products.filter((p) => p.category === category)) {
      box.appendChild(chip(p.hex, p.shade, current.sku === p.sku, () => chooseSku(p.sku)));
    }
  }

  async function chooseLook(name) {
    try { await api("PUT", "/api/look", { name }); current = { name, sku: null }; status("Look: " + name); }
    catch (e) { status(e.message); }
    renderChoices();
  }
  async function chooseSku(sku) {
    const intensity = $("#intensity").value / 100;
    try { await api("PUT", "/api/look", { sku, intensity, add: true }); current = { name: null, sku }; status(""); }
    catch (e) { status(e.message); }
    renderChoices();
  }

  document.querySelectorAll("#categories button").forEach((b) => b.addEventListener("click", () => {
    document.querySelectorAll("#categories button").forEach((x) => x.classList.toggle("active", x === b));
    category = b.dataset.cat; renderChoices();
  }));
  $("#intensity").addEventListener("change", () => { if (current.sku) chooseSku(current.sku); });
  $("#clear").addEventListener("click", () => chooseLook("none"));

  const cmp = $("#compare");
  const setCompare = (on) => api("PUT", "/api/compare", { on }).then(() => { $("#split").hidden = true; cmp.classList.toggle("active", on); }).catch((e) => status(e.message));
  cmp.addEventListener("pointerdown", () => setCompare(true));
  for (const ev of ["pointerup", "pointerleave", "pointercancel"]) cmp.addEventListener(ev, () => { if (cmp.classList.contains("active")) setCompare(false); });

  $("#save").addEventListener("click", async () => {
    try { const r = await api("POST", "/api/snapshot"); status("Saved on this mirror for " + Math.round(r.expires_in_s / 3600) + " h"); }
    catch (e) { status(e.message); }
  });

  function applyState(s) {
    document.body.dataset.mode = s.mode;
    $("#attract").hidden = s.mode !== "attract";
    const reco = $("#reco");
    if (s.tone && s.recommendations.length) {
      reco.hidden = false;
      $("#reco-reason").textContent = s.tone.label;
      const list = $("#reco-list"); list.replaceChildren();
      for (const r of s.recommendations) list.appendChild(chip(r.hex, r.shade, current.sku === r.sku, () => chooseSku(r.sku)));
    } else { reco.hidden = true; }
    if (s.look && s.look !== "custom" && current.sku === null && current.name !== s.look) { current.name = s.look; renderChoices(); }
  }

  function listen() {
    const es = new EventSource("/api/events" + q);
    es.addEventListener("state", (e) => applyState(JSON.parse(e.data)));
    es.onerror = () => { es.close(); setTimeout(listen, 1500); };
  }

  api("GET", "/api/catalog").then((c) => { catalog = c; renderChoices(); }).catch((e) => status(e.message));
  api("GET", "/api/state").then(applyState).catch(() => {});
  listen();
})();
