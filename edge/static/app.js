// The kiosk page: live mirror, touch controls, recommendations, attract screen.
// Everything is served by the daemon; no network beyond the device.
"use strict";
(() => {
  const $ = (s) => document.querySelector(s);
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  const auth = token ? { Authorization: "Bearer " + token } : {};
  const withToken = (path) => (token ? path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : path);
  const ATTRACT_AFTER_MS = 1200; // a face lost for a blink does not flash the attract screen

  let catalog = { products: [], looks: [], features: {} };
  let category = "looks";
  let state = null;
  let focusSku = null; // the product the intensity slider adjusts
  let splitOn = false;
  let holding = false;
  let session = null;
  let noFaceSince = null;

  // ------------------------------------------------------------------ live image

  const live = $("#live");
  function startStream() { live.src = withToken("/stream.mjpg?t=" + Date.now()); }
  live.addEventListener("error", () => setTimeout(startStream, 1000));
  startStream();

  // ------------------------------------------------------------------ api

  async function api(method, path, body) {
    const r = await fetch(withToken(path), {
      method, headers: { "Content-Type": "application/json", ...auth },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(data.detail || r.statusText);
    return data;
  }

  let toastTimer = null;
  function toast(text, ms = 3500) {
    const t = $("#toast");
    t.textContent = text; t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, ms);
  }

  // ------------------------------------------------------------------ controls

  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const activeSkus = () => new Set((state?.layers || []).map((l) => l.sku).filter(Boolean));

  function swatch(p, active) {
    const b = el("button", "swatch" + (active ? " active" : ""));
    b.dataset.sku = p.sku;
    b.setAttribute("aria-pressed", String(active));
    b.title = `${p.brand} ${p.product} — ${p.shade}`;
    const chip = el("span", "chip"); chip.style.background = p.hex;
    if (p.finish === "gloss" || p.finish === "shimmer") chip.classList.add("sheen");
    b.append(chip, el("span", "name", p.shade));
    b.addEventListener("click", () => (active ? removeSku(p.sku) : chooseSku(p.sku)));
    return b;
  }

  function lookCard(l, active) {
    const b = el("button", "look" + (active ? " active" : ""));
    b.dataset.look = l.name;
    b.setAttribute("aria-pressed", String(active));
    const strip = el("span", "strip");
    for (const c of (l.colors && l.colors.length ? l.colors : ["transparent"])) {
      const s = el("span"); s.style.background = c; strip.appendChild(s);
    }
    b.append(strip, el("span", "name", l.title || l.name));
    b.addEventListener("click", () => chooseLook(l.name));
    return b;
  }

  function renderChoices(force) {
    const box = $("#choices");
    // Rebuild only when something shown changed: a rebuild under a finger would swallow the tap.
    const kindsOn = (state?.layers || []).map((l) => l.kind).join();
    const key = [category, state?.look, [...activeSkus()].join(), kindsOn, catalog.products.length].join("|");
    if (!force && box.dataset.key === key) return;
    box.dataset.key = key;
    box.replaceChildren();
    box.dataset.cat = category;
    if (category === "looks") {
      const grid = el("div", "looks");
      for (const l of catalog.looks) grid.appendChild(lookCard(l, state?.look === l.name));
      box.appendChild(grid);
      return;
    }
    const on = activeSkus();
    const groups = new Map();
    for (const p of catalog.products.filter((x) => x.category === category)) {
      const key = `${p.brand} · ${p.product}`;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(p);
    }
    if (!groups.size) { box.appendChild(el("p", "empty", "No products in this category.")); return; }
    const kinds = { lips: ["lipstick"], cheeks: ["blush"], eyes: ["eyeshadow", "eyeliner"], brows: ["brows"], face: ["foundation"] };
    const wearing = (state?.layers || []).some((l) => (kinds[category] || []).includes(l.kind));
    const none = el("button", "swatch none" + (wearing ? "" : " active"));
    none.dataset.clear = category;
    none.append(el("span", "chip"), el("span", "name", "None"));
    none.addEventListener("click", () => { focusSku = null; send("PUT", "/api/look", { clear: category }); });
    for (const [name, items] of groups) {
      box.appendChild(el("h3", "line", name));
      const grid = el("div", "swatches");
      if (none.parentNode === null) grid.appendChild(none);
      for (const p of items) grid.appendChild(swatch(p, on.has(p.sku)));
      box.appendChild(grid);
    }
  }

  function renderIntensity() {
    const row = $("#intensity-row");
    row.hidden = category === "looks";
    const slider = $("#intensity");
    const layer = (state?.layers || []).find((l) => l.sku && l.sku === focusSku);
    const product = layer && catalog.products.find((p) => p.sku === layer.sku);
    row.classList.toggle("disabled", !layer);
    slider.disabled = !layer;
    $("#intensity-what").textContent = product ? product.shade : "Pick a shade";
    if (layer && !slider.matches(":active")) slider.value = Math.round(layer.intensity * 100);
    $("#intensity-value").textContent = slider.value + "%";
  }

  function renderReco() {
    const list = $("#reco-list");
    const reason = $("#reco-reason");
    const recs = state?.recommendations || [];
    if (!state?.tone || !recs.length) {
      reason.textContent = state?.face_present ? "Finding your shades…" : "Step in front of the mirror";
      list.replaceChildren();
      return;
    }
    reason.textContent = state.tone.reliable
      ? "For your " + state.tone.label
      : "Face the light for shade advice — from your look:";
    const on = activeSkus();
    const key = JSON.stringify(recs.map((r) => r.sku)) + [...on].join();
    if (list.dataset.key === key) return;
    list.dataset.key = key;
    list.replaceChildren();
    for (const r of recs) {
      const b = el("button", "reco-item" + (on.has(r.sku) ? " active" : ""));
      b.dataset.sku = r.sku;
      const chip = el("span", "chip"); chip.style.background = r.hex;
      const text = el("span", "text");
      text.append(el("span", "shade", r.shade), el("span", "sub", `${r.brand} · ${r.product}`));
      if (r.reason && r.reason !== state.tone.label) text.append(el("span", "sub why", r.reason));
      b.append(chip, text, el("span", "cat", r.category));
      b.addEventListener("click", () => chooseSku(r.sku));
      list.appendChild(b);
    }
  }

  function renderAll() { renderChoices(); renderIntensity(); renderReco(); }

  async function send(method, path, body) {
    try {
      const reply = await api(method, path, body);
      if (path === "/api/look" && state) {
        state.look = reply.name;
        state.layers = reply.look.layers || [];
        renderAll();
      }
      return reply;
    } catch (e) { toast(e.message); return null; }
  }

  const chooseLook = (name) => { focusSku = null; return send("PUT", "/api/look", { name }); };
  function chooseSku(sku) {
    focusSku = sku;
    return send("PUT", "/api/look", { sku, intensity: $("#intensity").value / 100, action: "add" });
  }
  function removeSku(sku) {
    if (focusSku === sku) focusSku = null;
    return send("PUT", "/api/look", { sku, action: "remove" });
  }

  document.querySelectorAll("#categories button").forEach((b) => b.addEventListener("click", () => selectCategory(b.dataset.cat)));
  function selectCategory(cat) {
    category = cat;
    document.querySelectorAll("#categories button").forEach((x) => {
      x.classList.toggle("active", x.dataset.cat === cat);
      x.setAttribute("aria-selected", String(x.dataset.cat === cat));
    });
    renderChoices();
    renderIntensity();
  }

  // Live intensity while dragging, at most ~6 updates a second.
  let intensityTimer = null;
  $("#intensity").addEventListener("input", () => {
    $("#intensity-value").textContent = $("#intensity").value + "%";
    if (!focusSku || intensityTimer) return;
    intensityTimer = setTimeout(() => { intensityTimer = null; if (focusSku) chooseSku(focusSku); }, 160);
  });
  $("#intensity").addEventListener("change", () => { if (focusSku) chooseSku(focusSku); });

  // ------------------------------------------------------------------ before / after

  function showCompare(mode) {
    document.body.dataset.compare = mode;
    $("#compare").setAttribute("aria-pressed", String(mode === "before"));
    $("#compare").classList.toggle("active", mode === "before");
    $("#split").setAttribute("aria-pressed", String(splitOn));
    $("#split").classList.toggle("active", splitOn);
  }
  const setCompare = (mode) => send("PUT", "/api/compare", { mode }).then((r) => r && showCompare(r.mode));
  const cmp = $("#compare");
  cmp.addEventListener("pointerdown", (e) => {
    e.preventDefault();
    try { cmp.setPointerCapture(e.pointerId); } catch (_) { /* synthetic events */ }
    holding = true; setCompare("before");
  });
  const release = () => { if (holding) { holding = false; setCompare(splitOn ? "split" : "off"); } };
  for (const ev of ["pointerup", "pointercancel", "lostpointercapture"]) cmp.addEventListener(ev, release);
  $("#split").addEventListener("click", () => { splitOn = !splitOn; setCompare(splitOn ? "split" : "off"); });
  document.addEventListener("contextmenu", (e) => e.preventDefault()); // long-press must not open a menu

  $("#save").addEventListener("click", async () => {
    const r = await send("POST", "/api/snapshot");
    if (!r) return;
    document.body.classList.add("flash");
    setTimeout(() => document.body.classList.remove("flash"), 350);
    const hours = Math.round(r.expires_in_s / 3600);
    toast(`Saved on this mirror only, code ${r.id.slice(0, 6).toUpperCase()}. Deleted after ${hours} h.`, 8000);
  });

  // ------------------------------------------------------------------ state

  function applyFeatures(f) { $("#save").hidden = !(f && f.snapshots); }

  function applyState(s) {
    if (session !== null && s.session !== session) {
      // A new customer: start from a clean page.
      focusSku = null; splitOn = false; holding = false; $("#toast").hidden = true;
      selectCategory("looks");
    }
    session = s.session;
    state = s;
    if (s.features) applyFeatures(s.features);
    const now = performance.now();
    if (s.mode === "attract") { if (noFaceSince === null) noFaceSince = now; } else { noFaceSince = null; }
    const attract = noFaceSince !== null && now - noFaceSince >= ATTRACT_AFTER_MS;
    $("#attract").hidden = !attract;
    document.body.dataset.mode = attract ? "attract" : "mirror";
    if (s.compare_mode !== "split") splitOn = false;
    if (s.compare_mode === "split") splitOn = true;
    showCompare(s.compare_mode || (s.compare ? "before" : "off"));
    renderAll();
  }

  // Re-check the attract delay between server updates.
  setInterval(() => { if (state && state.mode === "attract") applyState(state); }, 400);

  let es = null;
  function listen() {
    es = new EventSource(withToken("/api/events"));
    let failed = false;
    es.addEventListener("state", (e) => applyState(JSON.parse(e.data)));
    es.onopen = () => { if (failed) startStream(); };
    es.onerror = () => { failed = true; }; // EventSource reconnects by itself (retry: from the server)
  }

  api("GET", "/api/catalog").then((c) => { catalog = c; applyFeatures(c.features); renderAll(); }).catch((e) => toast(e.message));
  api("GET", "/api/state").then(applyState).catch(() => {});
  listen();
})();
