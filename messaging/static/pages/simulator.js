// The phone simulator (templates/inbound/simulator.html): the chat of one made-up phone.
// The URLs come from data attributes of #simulator; messages are polled every second.
(function () {
  "use strict";
  const box = document.getElementById("simulator");
  if (!box) return; // the simulator is off (not the console gateway)
  const chat = document.getElementById("sim-chat");
  const phoneBox = document.getElementById("sim-phone");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const messagesUrl = box.dataset.messagesUrl;
  const sendUrl = box.dataset.sendUrl;
  let lastId = 0, phone = "";

  function add(m) {
    const div = document.createElement("div");
    div.className = "sim-msg " + m.direction;
    div.dataset.id = m.id;
    div.textContent = (m.direction === "inbound" ? "You: " : "Reply: ") + m.body;
    chat.appendChild(div);
  }

  function poll() {
    if (!phone) return;
    fetch(messagesUrl + "?phone=" + encodeURIComponent(phone) + "&after=" + lastId)
      .then(r => r.json()).then(data => {
        if (data.phone !== phone) return;
        data.messages.forEach(m => { if (m.id > lastId) { add(m); lastId = m.id; } });
      }).catch(() => {});
  }

  function setPhone() {
    if (phoneBox.value.trim() !== phone) { phone = phoneBox.value.trim(); lastId = 0; chat.textContent = ""; poll(); }
  }

  phoneBox.addEventListener("change", setPhone);
  document.getElementById("sim-form").addEventListener("submit", function (e) {
    e.preventDefault();
    setPhone();
    const body = document.getElementById("sim-body");
    fetch(sendUrl, {
      method: "POST", headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({ phone: phone, body: body.value })
    }).then(r => r.json().then(d => ({ ok: r.ok, d }))).then(({ ok, d }) => {
      document.getElementById("sim-error").textContent = ok ? "" : d.error;
      if (ok) { phone = d.phone; phoneBox.value = d.phone; body.value = ""; poll(); }
    });
  });
  setInterval(poll, 1000);
  setPhone();
})();
