// A case's conversation (templates/inbound/conversation.html): the reply box's segment and
// encoding counter, the canned-reply picker, and new messages appearing without a reload.
// - The counter counts as messaging/lib/segments.py does, with its alphabet and limits
//   (the JSON block #segment-rules, written from that module): GSM-7 when every
//   character is in the GSM 03.38 alphabet (extension characters cost two septets),
//   else UCS-2 (a character outside the BMP costs two code units); 160/70 units in
//   one SMS, else parts of 153/67 packed greedily, a character never split.
// - The thread (#thread) is polled every few seconds at data-messages-url for what is
//   newer than the last message shown, and for the shown messages whose status may
//   still change (?watch=); the server sends each row drawn by the page's own template.
(function () {
  "use strict";
  const POLL_MS = 3000;
  const MAX_WATCHED = 50;

  // --- the reply box ---------------------------------------------------------------
  const text = document.getElementById("reply-text");
  const rules = window.readJSON("segment-rules");
  if (text && rules) {
    const basic = new Set(Array.from(rules.gsm7_basic));
    const extension = new Set(Array.from(rules.gsm7_extension));
    const maxChars = Number(text.dataset.maxChars);

    const countSegments = function (value) {
      const chars = Array.from(value); // code points, as Python counts a str
      const gsm = chars.every((c) => basic.has(c) || extension.has(c));
      const encoding = gsm ? "GSM-7" : "UCS-2";
      const sizes = chars.map((c) => (gsm ? (extension.has(c) ? 2 : 1) : (c.codePointAt(0) > 0xffff ? 2 : 1)));
      const units = sizes.reduce((a, b) => a + b, 0);
      let segments = 0;
      if (sizes.length && units <= rules.single[encoding]) {
        segments = 1;
      } else if (sizes.length) {
        segments = 1;
        let used = 0;
        sizes.forEach((size) => {
          if (used + size > rules.multi[encoding]) { segments += 1; used = 0; }
          used += size;
        });
      }
      return { encoding: encoding, segments: segments, characters: chars.length };
    };

    const update = function () {
      // What is sent: trimmed, and the textarea's line breaks are already "\n".
      const info = countSegments(text.value.trim());
      document.getElementById("reply-encoding").textContent = info.encoding;
      document.getElementById("reply-segments").textContent = info.segments;
      document.getElementById("reply-chars").textContent = info.characters;
      document.getElementById("reply-too-long").hidden = info.characters <= maxChars;
    };
    text.addEventListener("input", update);
    update();

    const picker = document.getElementById("canned-picker");
    if (picker) {
      picker.addEventListener("change", function () {
        const chosen = picker.selectedOptions[0];
        if (!chosen || !chosen.value) return;
        text.value = chosen.dataset.body;
        picker.value = ""; // the same reply can be picked again
        update();
        text.focus();
      });
    }

    const form = document.getElementById("reply-form");
    form.addEventListener("submit", function () {
      // The form is on its way; a second click would send the reply twice.
      setTimeout(function () { document.getElementById("reply-send").disabled = true; }, 0);
    });
  }

  // --- new messages without a reload -------------------------------------------------
  const thread = document.getElementById("thread");
  if (!thread || !thread.dataset.messagesUrl) return; // an older page, or the case page
  const settled = new Set((thread.dataset.settledStatuses || "").split(","));
  let lastId = Number(thread.dataset.lastId || 0);

  const watched = function () {
    const rows = Array.from(thread.querySelectorAll("tr.msg"));
    return rows.filter((row) => !settled.has(row.dataset.status)).slice(-MAX_WATCHED).map((row) => row.dataset.id);
  };

  const place = function (html) {
    const holder = document.createElement("template");
    holder.innerHTML = html.trim();
    const row = holder.content.firstElementChild;
    const shown = document.getElementById(row.id);
    if (shown) {
      shown.replaceWith(row);
      return;
    }
    const empty = thread.querySelector("tr.no-messages");
    if (empty) empty.remove();
    thread.appendChild(row);
  };

  const tick = async function () {
    if (!document.hidden) {
      const url = thread.dataset.messagesUrl + "?after=" + lastId + "&watch=" + watched().join(",");
      try {
        const res = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (res.ok) {
          const data = await res.json();
          data.rows.forEach((r) => place(r.html));
          lastId = Math.max(lastId, data.last_id);
        }
      } catch (e) { /* a network blip: the next tick asks again */ }
    }
    setTimeout(tick, POLL_MS);
  };
  setTimeout(tick, POLL_MS);
})();
