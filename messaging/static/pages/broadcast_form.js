// The broadcast composer (templates/broadcasts/form.html): shows only the part of the
// form that the chosen "content" and "when" radio buttons need (elements marked
// data-content="..." and data-when="..."), and counts the cases its filter chooses as
// the filter is written (POST to the fieldset's data-count-url, the server's sentence shown).
(function () {
  "use strict";
  const form = document.getElementById("broadcast-form");
  if (!form) return;
  function sync(group) {
    const chosen = form.querySelector('input[name="' + group + '"]:checked');
    form.querySelectorAll("[data-" + group + "]").forEach(function (el) {
      el.hidden = !chosen || el.dataset[group] !== chosen.value;
    });
  }
  ["content", "when"].forEach(function (group) {
    form.querySelectorAll('input[name="' + group + '"]').forEach(function (r) {
      r.addEventListener("change", function () { sync(group); });
    });
    sync(group);
  });

  const filter = document.getElementById("recipient-filter");
  const shown = document.getElementById("filter-count");
  if (!filter || !shown) return;
  let timer = null;
  let asked = 0;
  function count() {
    const mine = ++asked;
    fetch(filter.dataset.countUrl, { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (body) {
        if (mine !== asked) return; // a newer answer is on its way
        shown.textContent = body.error || body.text || "";
        shown.classList.toggle("field-error", Boolean(body.error));
      })
      .catch(function () { if (mine === asked) shown.textContent = ""; });
  }
  filter.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(count, 400); });
  filter.addEventListener("change", function () { clearTimeout(timer); timer = setTimeout(count, 150); });
  if (filter.querySelector('input[name="filter_case_type"]').value) count();
})();
