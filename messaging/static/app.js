// Behaviour shared by every page, wired by data attributes: the Content-Security-Policy
// allows no inline script, no on...= handler and no style= attribute, so pages say what
// they want in markup and this file (loaded on every page) does it.
// - <form data-confirm="Question?">: asks before the form is sent; "Cancel" keeps it.
// - <input data-autosubmit>: sends its form as soon as it changes.
// - <div class="progress"><div data-percent="40"></div></div>: the bar's width
//   (set through the CSSOM, which the CSP allows; a style= attribute it would refuse).
// - window.pollJSON(url, onData, intervalMs): polls a JSON status URL until onData
//   returns false (progress pages).
// - window.readJSON(id): the data a page passes in <script type="application/json" id=...>.
(function () {
  "use strict";

  window.pollJSON = function (url, onData, intervalMs) {
    let stopped = false;
    async function tick() {
      if (stopped) return;
      try {
        const res = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (res.ok) {
          const data = await res.json();
          if (onData(data) === false) { stopped = true; return; }
        }
      } catch (e) { /* network blip: try again */ }
      setTimeout(tick, intervalMs || 700);
    }
    tick();
    return () => { stopped = true; };
  };

  window.readJSON = function (id) {
    const block = document.getElementById(id);
    return block ? JSON.parse(block.textContent) : null;
  };

  window.setProgress = function (bar, percent) {
    bar.dataset.percent = percent;
    bar.style.width = percent + "%";
    if (bar.parentElement && bar.parentElement.getAttribute("role") === "progressbar") {
      bar.parentElement.setAttribute("aria-valuenow", percent);
    }
  };

  document.querySelectorAll(".progress > [data-percent]").forEach(function (bar) {
    window.setProgress(bar, bar.dataset.percent);
  });

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  document.addEventListener("change", function (event) {
    const input = event.target;
    if (input.matches && input.matches("[data-autosubmit]") && input.form) input.form.submit();
  });
})();
