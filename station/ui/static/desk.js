// Operator screen: polls /api/screen, posts the operator's actions.  No libraries, no network
// beyond this station's own 127.0.0.1 server.  Every text comes from the server's labels.
"use strict";
(function () {
  const L = JSON.parse(document.getElementById("labels").textContent);
  const lang = document.body.dataset.lang;
  const $ = (id) => document.getElementById(id);
  const seen = {};
  let screen = JSON.parse(document.getElementById("initial-screen").textContent);
  let dialogSubmit = null;

  function tx(obj) { return obj ? (obj[lang] || "") : ""; }
  function fmt(key, values) {
    return (L[key] || key).replace(/\{(\w+)\}/g, (_, k) => (k in values ? values[k] : ""));
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function changed(name, value) {
    const s = JSON.stringify(value);
    if (seen[name] === s) return false;
    seen[name] = s;
    return true;
  }
  function voterText(v) {
    return v.name + " · " + fmt("voter_born", { year: v.birth_year }) + " · " + v.masked_pin;
  }

  function render(s) {
    screen = s;
    $("banner").hidden = !s.banner;
    $("banner").textContent = tx(s.banner);
    $("state").textContent = tx(s.state_text);
    $("clock").textContent = s.time;
    const r = s.result;
    $("result").className = "result tone-" + r.tone;
    $("message").textContent = tx(r.message);
    let line = r.voter ? voterText(r.voter) : "";
    if (r.attempt && r.outcome.startsWith("face_")) {
      line += "  —  " + fmt("attempt_of", { attempt: r.attempt, attempts: 3 });
    }
    $("voter").textContent = line;
    $("warning").hidden = !r.warning;
    $("warning").textContent = tx(r.warning);
    document.querySelectorAll("[data-desk]").forEach((b) => {
      b.hidden = s.state !== "open" || !b.dataset.desk.split(" ").includes(s.desk);
    });
    document.querySelectorAll("[data-state]").forEach((b) => {
      b.hidden = b.dataset.state !== s.state;
    });
    const deferred = s.deferred_batch;
    $("deferred").hidden = !deferred;
    $("deferred-message").textContent = deferred ? tx(deferred.text) : "";
    $("btn-deferred-start").hidden = s.state !== "open" || !!deferred;
    $("reader-status").textContent = tx(s.reader.text);
    $("reader-status").className = "dot " + (s.reader.state === "connected" ? "ok" : "bad");
    $("camera-status").textContent = tx(s.camera.text);
    $("camera-status").className = "dot " + (s.camera.state === "ok" ? "ok" : "bad");
    if (changed("pending", s.pending)) renderPending(s);
    if (changed("counts", s.counts)) renderCounts(s.counts);
    if (changed("events", s.events)) renderEvents(s.events);
  }

  function renderPending(s) {
    $("pending").hidden = s.pending.length === 0;
    $("pending-message").textContent = tx(s.pending_message);
    const ul = $("pending-list");
    ul.replaceChildren();
    for (const v of s.pending) {
      const li = el("li");
      li.append(el("span", "who", voterText(v) + " · " + fmt("marked_at", { time: v.marked_at })));
      const ok = el("button", "green", L.btn_confirm_pending);
      ok.onclick = () => post("/api/pending/confirm", { pin: v.ref });
      const no = el("button", "red", L.btn_cancel_pending);
      no.onclick = () => codeDialog(L.btn_cancel_pending + ": " + v.name,
        (code) => post("/api/pending/cancel", { pin: v.ref, chair_code: code }, true));
      li.append(ok, no);
      ul.append(li);
    }
  }

  function renderCounts(c) {
    const t = $("counters");
    t.replaceChildren();
    const row = (label, n, sub) => {
      const tr = el("tr", sub ? "sub" : "");
      tr.append(el("td", "", label), el("td", "n", String(n)));
      t.append(tr);
    };
    row(L.count_registered, c.registered);
    row(L.count_voted, c.voted);
    row(L.count_face, c.identified_by_face);
    row(L.count_document, c.admitted_by_document);
    for (const [k, n] of Object.entries(c.admitted_by_document_by_reason)) {
      if (n) row(L["reason_" + k] || k, n, true);
    }
    row(L.count_mobile, c.mobile_box);
    const refused = Object.values(c.refused).reduce((a, b) => a + b, 0);
    row(L.count_refused, refused);
    for (const [k, n] of Object.entries(c.refused)) {
      if (n) row(L["refused_" + k] || k, n, true);
    }
    if (c.awaiting_confirmation) row(L.count_pending, c.awaiting_confirmation);
  }

  function renderEvents(events) {
    const ol = $("events");
    ol.replaceChildren();
    for (const e of events.slice().reverse()) {
      const li = el("li", e.outcome === "failure" ? "failure" : "");
      li.append(el("span", "t", e.at), el("span", "", L["event_" + e.name] || e.name));
      ol.append(li);
    }
  }

  function showError(message, inDialog) {
    const box = inDialog ? $("dialog-error") : $("error");
    box.textContent = message;
    box.hidden = false;
  }
  function hideErrors() { $("error").hidden = true; $("dialog-error").hidden = true; }

  async function post(path, body, fromDialog) {
    let data = {};
    let ok = false;
    try {
      const r = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body || {}),
      });
      ok = r.ok;
      try { data = await r.json(); } catch (e) { data = {}; }
    } catch (e) {
      data = {};
    }
    if (!ok) {
      showError(data.message ? tx(data.message) : L.action_refused, fromDialog);
      return false;
    }
    hideErrors();
    if (fromDialog) closeDialog();
    if (data.screen) render(data.screen);
    return true;
  }

  async function poll() {
    try {
      const r = await fetch("/api/screen", { cache: "no-store" });
      if (r.ok) render(await r.json());
    } catch (e) { /* the server restarts: keep the last screen */ }
  }

  // --- dialogs: admission by document, and "chair code" confirmations -----------------------
  function openDialog(title, admit, submit) {
    $("dialog-title").textContent = title;
    $("dialog-reasons").hidden = !admit;
    $("dialog-chair-row").hidden = !admit;
    $("dialog-decline").hidden = !admit;
    $("dialog-ok").textContent = admit ? L.btn_admit : L.btn_ok;
    $("dialog-code").value = "";
    $("dialog-error").hidden = true;
    document.querySelectorAll("input[name=reason]").forEach((i) => { i.checked = false; });
    dialogSubmit = submit;
    $("dialog").hidden = false;
  }
  function closeDialog() { $("dialog").hidden = true; dialogSubmit = null; }
  function codeDialog(title, submit) {
    openDialog(title, false, () => submit($("dialog-code").value));
    $("dialog-code").focus();
  }

  $("dialog-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (dialogSubmit) dialogSubmit();
  });
  $("dialog-cancel").onclick = closeDialog;
  $("dialog-decline").onclick = () => post("/api/decline", { chair: $("dialog-chair").value }, true);
  $("btn-admit-dialog").onclick = () => openDialog(L.admit_title, true, () => {
    const reason = document.querySelector("input[name=reason]:checked");
    post("/api/admit", {
      chair_code: $("dialog-code").value,
      reason: reason ? reason.value : "",
      chair: $("dialog-chair").value,
    }, true);
  });

  // --- desk and polls buttons ---------------------------------------------------------------
  $("btn-face").onclick = async () => {
    $("btn-face").disabled = true;
    try { await post("/api/face"); } finally { $("btn-face").disabled = false; }
  };
  $("btn-camera-fault").onclick = () => post("/api/camera/fault");
  $("btn-issued").onclick = () => post("/api/issued");
  $("btn-clear").onclick = () => post("/api/clear");
  $("btn-open").onclick = () => post("/api/open");
  $("btn-close").onclick = () => codeDialog(L.btn_close,
    (code) => post("/api/close", { chair_code: code }, true));
  $("btn-deferred-start").onclick = () => codeDialog(L.btn_deferred_start,
    (code) => post("/api/deferred/start", { chair_code: code }, true));
  $("btn-deferred-end").onclick = () => post("/api/deferred/end");
  $("btn-mobile").onclick = async () => {
    const section = $("mobile");
    section.hidden = !section.hidden;
    if (!section.hidden) await loadMobile();
  };

  async function loadMobile() {
    const r = await fetch("/api/mobile", { cache: "no-store" });
    if (!r.ok) return;
    const ul = $("mobile-list");
    ul.replaceChildren();
    for (const v of (await r.json()).voters) {
      const li = el("li", v.marked ? "marked" : "");
      li.append(el("span", "who", voterText(v)));
      if (!v.marked) {
        const b = el("button", "green", L.btn_mark_mobile);
        b.onclick = () => codeDialog(L.mobile_title + ": " + v.name, async (code) => {
          if (await post("/api/mobile/mark", { pin: v.ref, chair_code: code }, true)) loadMobile();
        });
        li.append(b);
      } else {
        li.append(el("span", "", "✓"));
      }
      ul.append(li);
    }
  }

  render(screen);
  setInterval(poll, 1000);
})();
