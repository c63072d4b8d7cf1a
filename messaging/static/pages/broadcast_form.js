// The broadcast composer (templates/broadcasts/form.html): shows only the part of the
// form that the chosen "content" and "when" radio buttons need (elements marked
// data-content="..." and data-when="...").
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
})();
