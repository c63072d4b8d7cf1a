// An import's progress page (templates/imports/show.html): polls the status URL of
// #import-status until the import is done or failed, then reloads to show the rows.
// The result labels come from the JSON block #import-labels.
(function () {
  "use strict";
  const box = document.getElementById("import-status");
  if (!box) return;
  const initial = box.dataset.status;
  const labels = window.readJSON("import-labels") || {};
  if (initial === "done" || initial === "failed") return;
  window.pollJSON(box.dataset.statusUrl, function (s) {
    document.getElementById("import-state").textContent = s.status;
    document.getElementById("import-state").className = "badge " + s.status;
    window.setProgress(document.getElementById("import-bar"), s.percent);
    document.getElementById("import-percent").textContent = s.percent + "%";
    document.getElementById("import-progress-text").textContent =
      s.processed + " of " + (s.total === null ? "?" : s.total) + " rows";
    const counts = document.getElementById("import-counts");
    counts.innerHTML = "";
    Object.entries(s.counts).forEach(([k, v]) => {
      const d = document.createElement("div"); d.className = "stat"; d.dataset.result = k;
      const n = document.createElement("span"); n.className = "num"; n.textContent = v;
      const l = document.createElement("span"); l.textContent = labels[k] || k;
      d.append(n, l); counts.append(d);
    });
    if (s.error) { const e = document.getElementById("import-error"); e.textContent = s.error.message; e.hidden = false; }
    if (s.status === "done" || s.status === "failed") {
      if (s.report_url) { const a = document.getElementById("import-report"); a.href = s.report_url; a.hidden = false; }
      setTimeout(() => window.location.reload(), 300);
      return false;
    }
  });
})();
