// mcpgw console: refreshes the page's sections from their fragments,
// posts the action forms with the CSRF token, and tails the audit stream
// over server-sent events. Plain JS, no build step; the page works
// without it (forms post and the page reloads).
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var statusEl = document.getElementById("status");
  var search = document.getElementById("search");

  function say(msg, isError) {
    statusEl.textContent = msg;
    statusEl.className = isError ? "error" : "";
  }

  // refresh swaps in the current HTML of one section (or all).
  function refresh(name) {
    var sections = document.querySelectorAll("[data-fragment]");
    sections.forEach(function (el) {
      var frag = el.getAttribute("data-fragment");
      if (name && frag !== name) return;
      var url = "/admin/ui/fragments/" + frag;
      if (frag === "catalog" && search.value) url += "?q=" + encodeURIComponent(search.value);
      fetch(url, { credentials: "same-origin" }).then(function (r) {
        if (r.status === 401 || r.status === 403) { say("signed out: reload the page to sign in again", true); return null; }
        return r.ok ? r.text() : null;
      }).then(function (html) {
        if (html !== null && html !== undefined) el.innerHTML = html;
      }).catch(function () {});
    });
  }

  // Every form marked data-action posts through fetch, wherever it is
  // (fragments are replaced, so the listener sits on the document).
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.hasAttribute("data-action")) return;
    ev.preventDefault();
    var action = (ev.submitter && ev.submitter.getAttribute("formaction")) || form.getAttribute("action");
    var body = new URLSearchParams(new FormData(form));
    fetch(action, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "X-Requested-With": "mcpgw-console" }
    }).then(function (r) {
      return r.text().then(function (text) { return { ok: r.ok, text: text }; });
    }).then(function (res) {
      say(res.text.trim(), !res.ok);
      if (res.ok && form.id === "kill-form") { form.reset(); }
      refresh();
    }).catch(function (err) { say("request failed: " + err, true); });
  });

  // "Kill…" on a catalog row fills the kill form for that tool.
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("button[data-kill]");
    if (!b) return;
    document.getElementById("kill-scope").value = "tool";
    document.getElementById("kill-target").value = b.getAttribute("data-kill");
    document.getElementById("kill-reason").focus();
  });

  var typing;
  search.addEventListener("input", function () {
    clearTimeout(typing);
    typing = setTimeout(function () { refresh("catalog"); }, 200);
  });
  document.getElementById("search-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    refresh("catalog");
  });

  setInterval(function () { if (!document.hidden) refresh(); }, 3000);

  // The audit tail.
  var tbody = document.querySelector("#audit tbody");
  var tailState = document.getElementById("tail-state");
  function cell(tr, text) {
    var td = document.createElement("td");
    td.textContent = text === undefined || text === null ? "" : String(text);
    tr.appendChild(td);
  }
  function addRecord(rec) {
    var tr = document.createElement("tr");
    tr.setAttribute("data-event", rec.event || "");
    tr.setAttribute("data-action", rec.action || rec.decision || "");
    if (rec.decision && rec.decision !== "allowed") tr.className = "refused";
    cell(tr, (rec.time || "").replace("T", " ").replace(/\.\d+/, ""));
    cell(tr, rec.event);
    cell(tr, rec.decision || rec.action);
    cell(tr, rec.tool || rec.target);
    cell(tr, rec.actor || rec.subject);
    cell(tr, rec.reason || rec.outcome || rec.error || "");
    tbody.insertBefore(tr, tbody.firstChild);
    while (tbody.rows.length > 200) tbody.deleteRow(tbody.rows.length - 1);
  }
  var es = new EventSource("/admin/ui/events");
  es.addEventListener("audit", function (ev) {
    try { addRecord(JSON.parse(ev.data)); } catch (e) { /* not a record */ }
  });
  es.addEventListener("ready", function () { tailState.textContent = "live"; });
  es.addEventListener("missed", function () { tailState.textContent = "live (some records were skipped: the tail fell behind)"; });
  es.onerror = function () { tailState.textContent = "reconnecting…"; };
})();
