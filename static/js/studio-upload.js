// The studio's browser upload: drop or pick many photos, see each file's progress and answer.
//
// It enhances the plain multiple-file form of templates/gallery/studio_event.html,
// which works without JavaScript. Files go to the same endpoint as API clients'
// (POST /api/photographer/events/{id}/upload-photos) with the session cookie and
// the CSRF token, a few files per request; each verdict names its file by `index`.
// On 429 and 503 everything waits for the Retry-After seconds, then the files are
// sent again; after a lost connection too, with growing pauses. Sending a file
// twice never stores it twice: the server keeps one photo per content (SHA-256)
// and answers `duplicate` for the second, which counts as accepted when the
// first attempt may have arrived.
"use strict";

(() => {
  const form = document.getElementById("upload-form");
  if (!form || !window.FormData || !window.XMLHttpRequest) {
    return;
  }
  const texts = document.getElementById("upload-texts").dataset;
  const apiUrl = form.dataset.apiUrl;
  const csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const input = document.getElementById("upload-input");
  const dropzone = document.getElementById("upload-dropzone");
  const statusBox = document.getElementById("upload-status");
  const overall = document.getElementById("upload-overall");
  const summary = document.getElementById("upload-summary");
  const list = document.getElementById("upload-files");

  // A request carries at most this many files and bytes (a single larger file goes alone).
  const BATCH_FILES = 8;
  const BATCH_BYTES = 16 * 1024 * 1024;
  const PARALLEL_REQUESTS = 2;
  const MAX_CONNECTION_TRIES = 6;
  const DEFAULT_RETRY_SECONDS = 30;
  const FINAL = new Set(["accepted", "duplicate", "rejected", "failed"]);

  const items = [];
  const pending = [];
  let active = 0;
  let pausedUntil = 0;
  let pumpTimer = 0;

  document.documentElement.classList.add("js-upload");

  const fill = (template, values) => template.replace(/%\((\w+)\)s/g, (match, key) => String(values[key] ?? ""));

  function addFiles(files) {
    for (const file of files) {
      const row = document.createElement("li");
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = file.name;
      const bar = document.createElement("progress");
      bar.max = 1;
      bar.value = 0;
      bar.setAttribute("aria-label", file.name);
      const answer = document.createElement("span");
      answer.className = "answer";
      answer.textContent = texts.waiting;
      row.append(name, bar, answer);
      list.append(row);
      const item = { file, row, bar, answer, state: "waiting", loaded: 0, connectionTries: 0, mayHaveArrived: false };
      items.push(item);
      pending.push(item);
    }
    statusBox.hidden = false;
    update();
    pump();
  }

  function pump() {
    if (Date.now() < pausedUntil) {
      schedulePump();
      return;
    }
    while (active < PARALLEL_REQUESTS && pending.length) {
      const batch = [];
      let bytes = 0;
      while (
        pending.length &&
        batch.length < BATCH_FILES &&
        (batch.length === 0 || bytes + pending[0].file.size <= BATCH_BYTES)
      ) {
        const item = pending.shift();
        bytes += item.file.size;
        batch.push(item);
      }
      send(batch);
    }
  }

  function schedulePump() {
    window.clearTimeout(pumpTimer);
    pumpTimer = window.setTimeout(pump, Math.max(0, pausedUntil - Date.now()));
  }

  function send(batch) {
    active += 1;
    const data = new FormData();
    for (const item of batch) {
      data.append("photos", item.file, item.file.name);
      setState(item, "sending", texts.sending);
    }
    const xhr = new XMLHttpRequest();
    xhr.open("POST", apiUrl);
    xhr.setRequestHeader("X-CSRFToken", csrfToken);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) {
        spread(batch, event.loaded / event.total);
      }
    });
    xhr.addEventListener("load", () => {
      active -= 1;
      answered(batch, xhr);
      pump();
    });
    const lost = () => {
      active -= 1;
      connectionLost(batch);
      pump();
    };
    xhr.addEventListener("error", lost);
    xhr.addEventListener("timeout", lost);
    xhr.send(data);
  }

  // The request's progress, shared out over its files in the order they are sent.
  function spread(batch, fraction) {
    const total = batch.reduce((sum, item) => sum + item.file.size, 0) || 1;
    const sent = fraction * total;
    let start = 0;
    for (const item of batch) {
      item.loaded = Math.max(0, Math.min(1, (sent - start) / (item.file.size || 1)));
      item.bar.value = item.loaded;
      start += item.file.size;
    }
    update();
  }

  function parseBody(xhr) {
    try {
      return JSON.parse(xhr.responseText) || {};
    } catch {
      return {};
    }
  }

  function answered(batch, xhr) {
    const body = parseBody(xhr);
    if (xhr.status === 429 || xhr.status === 503) {
      const seconds = Number.parseInt(xhr.getResponseHeader("Retry-After") || "", 10);
      later(batch, Number.isFinite(seconds) && seconds > 0 ? seconds : DEFAULT_RETRY_SECONDS, texts.retryin);
      return;
    }
    if (Array.isArray(body.jobs) || Array.isArray(body.rejected)) {
      for (const job of body.jobs || []) {
        const item = batch[job.index];
        if (item) {
          const seenBefore = job.duplicate && !item.mayHaveArrived;
          finish(item, seenBefore ? "duplicate" : "accepted", seenBefore ? texts.duplicate : texts.accepted);
        }
      }
      for (const refused of body.rejected || []) {
        const item = batch[refused.index];
        if (item) {
          finish(item, "rejected", fill(texts.rejected, { reason: refused.error }));
        }
      }
    }
    const reason = body.detail || xhr.statusText || String(xhr.status);
    for (const item of batch) {
      if (!FINAL.has(item.state)) {
        finish(item, "failed", fill(texts.failed, { reason }));
      }
    }
  }

  function connectionLost(batch) {
    const retried = [];
    for (const item of batch) {
      item.connectionTries += 1;
      item.mayHaveArrived = true;
      if (item.connectionTries >= MAX_CONNECTION_TRIES) {
        finish(item, "failed", fill(texts.failed, { reason: texts.network }));
      } else {
        retried.push(item);
      }
    }
    if (retried.length) {
      const tries = Math.max(...retried.map((item) => item.connectionTries));
      later(retried, Math.min(30, 2 ** tries), texts.networkretry);
    }
  }

  // Send `batch` again once `seconds` have passed; nothing else is sent meanwhile.
  function later(batch, seconds, template) {
    pausedUntil = Math.max(pausedUntil, Date.now() + seconds * 1000);
    for (const item of batch) {
      item.loaded = 0;
      item.bar.value = 0;
      setState(item, "waiting", fill(template, { seconds }));
    }
    pending.unshift(...batch);
    const countdown = window.setInterval(() => {
      const left = Math.ceil((pausedUntil - Date.now()) / 1000);
      const waiting = batch.filter((item) => item.state === "waiting");
      if (left <= 0 || !waiting.length) {
        window.clearInterval(countdown);
        return;
      }
      for (const item of waiting) {
        item.answer.textContent = fill(template, { seconds: left });
      }
    }, 1000);
    update();
    schedulePump();
  }

  function setState(item, state, text) {
    item.state = state;
    item.row.className = state;
    item.answer.textContent = text;
  }

  function finish(item, state, text) {
    item.loaded = 1;
    item.bar.value = 1;
    setState(item, state, text);
    update();
  }

  function update() {
    const total = items.reduce((sum, item) => sum + (item.file.size || 1), 0) || 1;
    const done = items.reduce((sum, item) => sum + (item.file.size || 1) * (FINAL.has(item.state) ? 1 : item.loaded), 0);
    const answered = items.filter((item) => FINAL.has(item.state));
    const finished = answered.length === items.length;
    overall.value = finished ? 1 : Math.min(done / total, 0.999);
    const counts = {
      done: answered.length,
      total: items.length,
      accepted: answered.filter((item) => item.state === "accepted" || item.state === "duplicate").length,
      rejected: answered.filter((item) => item.state === "rejected" || item.state === "failed").length,
    };
    summary.textContent = fill(texts.summary, counts) + (finished ? ` ${texts.finished}` : "");
    statusBox.dataset.state = finished ? "finished" : "sending";
  }

  input.addEventListener("change", () => {
    addFiles(Array.from(input.files));
    input.value = "";
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    addFiles(Array.from(input.files));
    input.value = "";
  });
  for (const name of ["dragenter", "dragover"]) {
    dropzone.addEventListener(name, (event) => {
      event.preventDefault();
      dropzone.classList.add("dragging");
    });
  }
  dropzone.addEventListener("dragleave", () => dropzone.classList.remove("dragging"));
  dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropzone.classList.remove("dragging");
    addFiles(Array.from(event.dataTransfer.files));
  });
  window.addEventListener("beforeunload", (event) => {
    if (items.some((item) => !FINAL.has(item.state))) {
      event.preventDefault();
      event.returnValue = texts.leave;
    }
  });
})();
