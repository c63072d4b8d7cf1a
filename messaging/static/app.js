// Small helpers shared by pages: polling a JSON status URL for progress bars.
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
