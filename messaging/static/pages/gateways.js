// The gateway page (templates/settings/gateway.html): the add form shows the fields of the
// chosen kind only, and a test message's status is followed until it is final.
(function () {
  "use strict";
  const kind = document.getElementById("gateway-kind");
  if (kind) {
    const show = function () {
      document.querySelectorAll(".gateway-kind-fields").forEach(function (set) {
        const chosen = set.dataset.kind === kind.value;
        set.hidden = !chosen;
        set.disabled = !chosen; // the other kinds' inputs are not posted
      });
    };
    kind.addEventListener("change", show);
    show();
  }
  const test = document.getElementById("gateway-test");
  if (!test) return;
  window.pollJSON(test.dataset.url, function (s) {
    document.getElementById("gateway-test-status").textContent = s.status;
    const why = document.getElementById("gateway-test-explanation");
    why.textContent = s.explanation || "";
    why.className = s.explanation ? "error" : "";
    if (s.final) return false;
  });
})();
