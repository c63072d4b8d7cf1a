// The alert rule form (templates/alerts/form.html): shows only the part of the form the
// chosen "when" and "content" radio buttons need, and keeps the preview up to date: the
// form is posted (with its CSRF token) to /alerts/preview after each change, and the
// answer (open cases matching, skipped, the soonest next messages) is drawn in place.
(function () {
  "use strict";
  const form = document.getElementById("alert-form");
  if (!form) return;
  function sync(group) {
    const chosen = form.querySelector('input[name="' + group + '"]:checked');
    form.querySelectorAll("[data-" + group + "]").forEach(function (el) {
      el.hidden = !chosen || el.dataset[group] !== chosen.value;
    });
  }
  ["when", "content"].forEach(function (group) {
    form.querySelectorAll('input[name="' + group + '"]').forEach(function (r) {
      r.addEventListener("change", function () { sync(group); });
    });
    sync(group);
  });

  const status = document.getElementById("preview-status");
  const stats = document.getElementById("preview-stats");
  const table = document.getElementById("preview-next");
  let timer = null;
  let asked = 0;

  function text(id, value) { document.getElementById(id).textContent = value; }

  function draw(body) {
    stats.hidden = false;
    text("preview-matching", body.matching);
    text("preview-open", body.open_cases);
    const skipped = Object.values(body.skipped || {}).reduce(function (a, b) { return a + b; }, 0);
    text("preview-skipped", skipped + (body.skipped_of_first ? " (of the first " + body.skipped_of_first + ")" : ""));
    const rows = table.querySelector("tbody");
    rows.replaceChildren();
    (body.next || []).forEach(function (n) {
      const tr = document.createElement("tr");
      [n.name || n.case_id, n.due_at, n.text].forEach(function (value) {
        const td = document.createElement("td");
        td.textContent = value;
        tr.appendChild(td);
      });
      rows.appendChild(tr);
    });
    table.hidden = !(body.next || []).length;
    status.textContent = (body.next || []).length ? "The soonest next messages:" : "No message would be scheduled now.";
  }

  function refresh() {
    const mine = ++asked;
    fetch(form.dataset.previewUrl, { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (body) {
        if (mine !== asked) return; // a newer answer is on its way
        if (body.error) {
          stats.hidden = true;
          table.hidden = true;
          status.textContent = body.error;
          return;
        }
        draw(body);
      })
      .catch(function () { if (mine === asked) status.textContent = "The preview is not available right now."; });
  }

  form.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(refresh, 400); });
  form.addEventListener("change", function () { clearTimeout(timer); timer = setTimeout(refresh, 150); });
  if (form.querySelector('input[name="case_type"]').value) refresh();
})();
