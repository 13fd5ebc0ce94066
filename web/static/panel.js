/* ccsync panel: the live status light (polls /api/status) and small helpers for the conflict form. The words
   come from the page (#light-words, in the reader's language); times are shown in the practice's time zone. */
"use strict";

(function () {
  const box = document.getElementById("status-light");
  const words = document.getElementById("light-words");
  if (!box || !words) return;

  const d = words.dataset;
  const STATES = JSON.parse(d.states), HINTS = JSON.parse(d.hints), REASONS = JSON.parse(d.reasons);
  const every = Number(box.dataset.poll) || 1500;
  const stamp = new Intl.DateTimeFormat("sv-SE", {
    timeZone: d.zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    second: "2-digit", hour12: false,
  });
  const zoneName = new Intl.DateTimeFormat(d.lang, {timeZone: d.zone, timeZoneName: "short"});
  const relative = new Intl.RelativeTimeFormat(d.lang, {numeric: "auto"});

  function when(iso, none) {
    if (!iso) return none;
    const t = new Date(iso);
    if (isNaN(t)) return iso;
    const zone = zoneName.formatToParts(t).find((p) => p.type === "timeZoneName");
    return stamp.format(t).replace(",", "") + (zone ? " " + zone.value : "");
  }
  function ago(iso) {
    const seconds = Math.round((new Date(iso) - new Date()) / 1000);
    const units = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];
    for (const [unit, size] of units) {
      if (Math.abs(seconds) >= size || unit === "second") return relative.format(Math.round(seconds / size), unit);
    }
    return "";
  }
  function set(field, text) {
    document.querySelectorAll(`[data-field="${field}"]`).forEach((el) => {
      if (el.textContent !== String(text)) el.textContent = text;
    });
  }
  function reasonText(doc) {
    let text = doc.reason ? (REASONS[doc.reason] || doc.reason_text || "") : "";
    if (doc.cloud_reason && doc.cloud_reason !== doc.reason) text += " " + (REASONS[doc.cloud_reason] || "");
    return text.trim();
  }

  function show(doc) {
    const state = STATES[doc.state] ? doc.state : "unknown";
    document.querySelectorAll("[data-light], #status-light, .hero").forEach((el) => { el.dataset.mode = state; });
    set("word", STATES[state]);
    set("hint", HINTS[state]);
    const reason = state === "unknown" ? (doc.error || "") : reasonText(doc);
    set("reason", reason);
    document.querySelectorAll('[data-field="reason"]').forEach((el) => { el.hidden = !reason; });
    box.title = reason || HINTS[state];
    const offlineSince = state === "offline" && doc.state_since ? ago(doc.state_since) : "";
    document.querySelectorAll('[data-field="since"]').forEach((el) => {
      el.hidden = !offlineSince;
      if (offlineSince) el.textContent = el.dataset.template ? el.dataset.template.replace("%s", offlineSince) : offlineSince;
    });
    if (state === "unknown" || doc.node === null || doc.node === undefined) return;

    set("node", doc.node);
    set("pending_push", doc.pending_push);
    set("pending_pull", doc.pending_pull === null ? d.unknown : doc.pending_pull);
    set("open_conflicts", doc.open_conflicts);
    set("hub_failures", doc.hub_failures === null ? "—" : doc.hub_failures);
    document.querySelectorAll('[data-field="hub_note"]').forEach((el) => {
      const text = doc.hub_configured ? el.dataset.waiting.replace("%s", doc.hub_waiting) : el.dataset.off;
      if (el.textContent !== text) el.textContent = text;
    });
    set("use_text", doc.use === "cloud" ? d.cloud : d.local);
    set("service_text", doc.service ? d.running : d.notRunning);
    set("state_since", when(doc.state_since, "—"));
    set("last_sync_at", when(doc.last_sync_at, d.never));
    const ownWords = ["sync_error", "cloud_not_ready"];  // ccsync's own sentence says what to do: shown as it is
    const error = doc.last_error ? ((!ownWords.includes(doc.last_error_code) && REASONS[doc.last_error_code]) ||
                                    doc.last_error) : d.none;
    set("last_error", error);
    document.querySelectorAll('[data-field="last_error"]').forEach((el) => {
      el.classList.toggle("error-text", Boolean(doc.last_error));
    });

    const p = state === "synchronizing" ? doc.progress : null;  // a leftover count means nothing otherwise
    set("progress", p ? `${p.what} ${p.done}/${p.total}` : "");
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
      // 503 with a state: this PC's database is down, which the light shows as such
      show(r.ok || doc.state ? doc : {state: "unknown", error: doc.error});
    } catch (e) {
      show({state: "unknown", error: d.noAnswer});
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
