/* ccsync panel: the live status light (polls /api/status) and small helpers for the conflict form. */
"use strict";

(function () {
  const box = document.getElementById("status-light");
  if (!box) return;

  const WORDS = {online: "Online", offline: "Offline", synchronizing: "Synchronizing", unknown: "Status unknown"};
  const HINTS = {
    online: "Connected to the cloud: the application works on the cloud database.",
    synchronizing: "Catching up with the cloud: changes are being pushed and pulled.",
    offline: "The cloud cannot be reached: the application works on this PC's copy, and every change is sent " +
             "when the cloud is back.",
    unknown: "The panel cannot read this PC's status right now.",
  };
  const every = Number(box.dataset.poll) || 1500;

  function pad(n) { return String(n).padStart(2, "0"); }
  function when(iso) {
    if (!iso) return "never";
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
           `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  function set(field, text) {
    document.querySelectorAll(`[data-field="${field}"]`).forEach((el) => {
      if (el.textContent !== String(text)) el.textContent = text;
    });
  }

  function show(doc) {
    const mode = WORDS[doc.mode] ? doc.mode : "unknown";
    document.querySelectorAll("[data-light], #status-light, .hero").forEach((el) => { el.dataset.mode = mode; });
    set("word", WORDS[mode]);
    set("hint", mode === "unknown" && doc.error ? doc.error : HINTS[mode]);
    box.title = HINTS[mode];
    if (mode === "unknown") return;

    set("node", doc.node);
    set("pending_push", doc.pending_push);
    set("pending_pull", doc.pending_pull === null ? "unknown" : doc.pending_pull);
    set("open_conflicts", doc.open_conflicts);
    set("hub_failures", doc.hub_failures === null ? "—" : doc.hub_failures);
    set("hub_note", doc.hub_configured ? `failing or invalid on the HUB; ${doc.hub_waiting} waiting`
                                       : "Sumehr publication not configured");
    set("use_text", doc.use === "cloud" ? "the cloud" : "this PC's copy");
    set("service_text", doc.service ? "running" : "not running on this PC");
    set("mode_since", when(doc.mode_since));
    set("last_sync_at", when(doc.last_sync_at));
    set("last_error", doc.last_error || "none");
    document.querySelectorAll('[data-field="last_error"]').forEach((el) => {
      el.classList.toggle("error-text", Boolean(doc.last_error));
    });

    const p = mode === "synchronizing" ? doc.progress : null;  // a leftover count means nothing otherwise
    const text = p ? `${p.what} ${p.done}/${p.total}` : "";
    set("progress", text);
    document.querySelectorAll('.statusbox [data-field="progress"], [data-progress-box]').forEach((el) => {
      el.hidden = !p;
    });
    document.querySelectorAll("[data-progress]").forEach((el) => {
      if (p) { el.max = Math.max(p.total || 0, 1); el.value = Math.min(p.done || 0, el.max); }
    });

    document.querySelectorAll("[data-count]").forEach((el) => {
      const n = doc[el.dataset.count] || 0;
      el.textContent = n;
      el.hidden = n === 0;
    });
  }

  async function tick() {
    try {
      const r = await fetch(box.dataset.url, {headers: {Accept: "application/json"}, cache: "no-store",
                                              credentials: "same-origin"});
      if (r.status === 401) {
        const next = window.location.pathname + window.location.search;
        window.location.assign(`${box.dataset.login}?next=${encodeURIComponent(next)}`);
        return;
      }
      const doc = await r.json();
      show(r.ok ? doc : {mode: "unknown", error: doc.error});
    } catch (e) {
      show({mode: "unknown", error: "The panel does not answer: is `ccsync panel` still running?"});
    }
    // a tab in the background asks less often
    setTimeout(tick, document.hidden ? Math.max(every, 10000) : every);
  }
  tick();
})();

(function () {
  // typing another value selects "other" for that field
  document.querySelectorAll("input[data-other-for]").forEach((input) => {
    input.addEventListener("input", () => {
      const radio = input.closest("label").querySelector('input[type="radio"]');
      if (radio) radio.checked = true;
    });
  });
})();
