/* Live updates for the public results site (progressive enhancement: every page works
   without this).  Listens to /api/v1/events; when a newer results version is published,
   fetches the same page again and swaps its <main> in place, keeping open <details>,
   then says so in the status line.  It waits while the reader's focus is inside the page,
   so keyboard and screen reader users are not moved.  Pages that hold a form (check a
   report) are not live. */
(function () {
  "use strict";
  var root = document.documentElement;
  var main = document.getElementById("main");
  if (!main || main.getAttribute("data-live") !== "1") { return; }
  if (!window.EventSource || !window.fetch || !window.DOMParser) { return; }
  var status = document.getElementById("live-status");
  var shown = parseInt(root.getAttribute("data-version") || "0", 10);
  var busy = false;

  function say(key, time) {
    if (!status) { return; }
    var text = status.getAttribute(key) || "";
    status.textContent = text.replace("{time}", time || "");
  }

  function openDetails(node) {
    var out = [];
    var all = node.querySelectorAll("details[open]");
    for (var i = 0; i < all.length; i++) {
      var owner = all[i].closest("[id]");
      if (owner) { out.push(owner.id); }
    }
    return out;
  }

  function reading() {  /* someone is on a control inside the page: do not move it away */
    var a = document.activeElement;
    return a && a !== main && a !== document.body && main.contains(a);
  }

  function swap(html, wanted, tries) {
    if (reading()) {
      setTimeout(function () { swap(html, wanted, tries); }, 5000);
      return;
    }
    var doc = new DOMParser().parseFromString(html, "text/html");
    var fresh = doc.getElementById("main");
    var version = parseInt(doc.documentElement.getAttribute("data-version") || "0", 10);
    if (!fresh) { return; }
    if (version < wanted && tries > 0) {  /* a cache in between still had the old page */
      setTimeout(function () { load(wanted, tries - 1); }, 3000);
      return;
    }
    var keep = openDetails(main);
    main.replaceWith(fresh);
    main = fresh;
    for (var i = 0; i < keep.length; i++) {
      var d = document.getElementById(keep[i]);
      var det = d && d.querySelector("details");
      if (det) { det.open = true; }
    }
    shown = version;
    root.setAttribute("data-version", String(version));
    var now = new Date();
    var time;
    try {
      time = now.toLocaleTimeString(root.lang, { hour: "2-digit", minute: "2-digit" });
    } catch (e) {
      time = now.toTimeString().slice(0, 5);
    }
    say("data-updated", time);
  }

  function load(wanted, tries) {
    if (busy) { return; }
    busy = true;
    fetch(window.location.pathname, { headers: { "Accept": "text/html" }, cache: "no-cache" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { busy = false; if (html) { swap(html, wanted, tries); } })
      .catch(function () { busy = false; });
  }

  var source = null;
  function listen() {
    source = new EventSource("/api/v1/events");
    source.addEventListener("version", function (ev) {
      var data;
      try { data = JSON.parse(ev.data); } catch (e) { return; }
      if (data && typeof data.version === "number" && data.version > shown) {
        load(data.version, 3);
      }
    });
    source.addEventListener("error", function () {
      if (source && source.readyState === EventSource.CLOSED) { say("data-failed"); }
    });
  }
  /* A page kept in the back/forward cache must not keep its stream open: six of them
     would use up the browser's connections to the site and the next page would hang. */
  window.addEventListener("pagehide", function () {
    if (source) { source.close(); source = null; }
  });
  window.addEventListener("pageshow", function (ev) {
    if (ev.persisted && !source) { listen(); }
  });
  listen();
}());
