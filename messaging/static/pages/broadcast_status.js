// A broadcast's page (templates/broadcasts/show.html): polls the status URL of
// #broadcast-progress while the broadcast is scheduled or sending, and reloads when it
// ends or a new send starts. Skip reasons' labels come from the JSON block #skip-labels.
(function () {
  "use strict";
  const box = document.getElementById("broadcast-progress");
  if (!box) return;
  const labels = window.readJSON("skip-labels") || {};
  const initial = box.dataset.status;
  const firings = Number(box.dataset.firings || 0);
  if (initial === "sent" || initial === "cancelled") return;

  function fill(id, counts, attr, names) {
    const el = document.getElementById(id);
    el.innerHTML = "";
    Object.entries(counts).forEach(([k, v]) => {
      const d = document.createElement("div"); d.className = "stat"; d.dataset[attr] = k;
      const n = document.createElement("span"); n.className = "num"; n.textContent = v;
      const l = document.createElement("span"); l.textContent = names[k] || k;
      d.append(n, l); el.append(d);
    });
  }

  window.pollJSON(box.dataset.statusUrl, function (s) {
    const badge = document.getElementById("broadcast-status");
    badge.textContent = s.status; badge.className = "badge " + s.status;
    window.setProgress(document.getElementById("progress-bar"), s.percent);
    document.getElementById("progress-percent").textContent = s.percent + "%";
    const latest = s.firings && s.firings[0];
    if (latest) {
      document.getElementById("progress-text").textContent =
        latest.percent + "% done" + (latest.recipients === null ? "" : " · " + latest.recipients + " recipients");
    }
    fill("status-counts", s.counts.statuses, "status", {});
    fill("skip-counts", s.counts.skipped, "reason", labels);
    if (s.status === "sent" || s.status === "cancelled" || (s.firings || []).length !== firings) {
      setTimeout(() => window.location.reload(), 500);
      return false;
    }
  }, initial === "scheduled" ? 5000 : 700);
})();
