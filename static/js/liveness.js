// Live selfie: follows the server's pose challenge with the front camera.
//
// The page (templates/gallery/live_selfie.html) holds every text, already
// translated, in data-* attributes of #live-selfie; nothing here is shown to
// the guest as is. Frames are drawn from the camera's own, unmirrored image:
// the server measures "left" as the guest's left in that image. Only the
// preview is mirrored (by the style sheet), because people expect a mirror.
"use strict";

(function () {
  const root = document.getElementById("live-selfie");
  if (!root) {
    return;
  }
  const text = root.dataset;
  const find = (selector) => root.querySelector(selector);
  const start = find("[data-live=start]");
  const camera = find("[data-live=camera]");
  const video = find("video");
  const instruction = find("[data-live=instruction]");
  const countdown = find("[data-live=countdown]");
  const result = find("[data-live=result]");
  const resultText = find("[data-live=result-text]");
  const retry = find("[data-live=retry]");
  const noCamera = find("[data-live=no-camera]");
  const noCameraText = find("[data-live=no-camera-text]");
  const csrfToken = find("input[name=csrfmiddlewaretoken]").value;

  // Seconds shown before each picture: time to read the instruction and move.
  const COUNTDOWN_SECONDS = 3;
  // Frames are sent at most this wide or tall: plenty for the face check.
  const FRAME_MAX_SIDE = 640;
  const JPEG_QUALITY = 0.9;

  let stream = null;

  function show(element) {
    for (const section of [start, camera, result, noCamera]) {
      section.hidden = section !== element;
    }
  }

  function stopCamera() {
    if (stream) {
      for (const track of stream.getTracks()) {
        track.stop();
      }
      stream = null;
    }
    video.srcObject = null;
  }

  function explainNoCamera(error) {
    stopCamera();
    const denied = error && (error.name === "NotAllowedError" || error.name === "SecurityError");
    noCameraText.textContent = denied ? text.cameraDenied : text.cameraMissing;
    show(noCamera);
  }

  function finish(message, succeeded) {
    stopCamera();
    resultText.textContent = message;
    result.classList.toggle("live-ok", succeeded);
    retry.hidden = succeeded;
    show(result);
    if (succeeded) {
      window.setTimeout(() => window.location.assign(text.next), 1500);
    }
    resultText.focus();
  }

  function wait(milliseconds) {
    return new Promise((resolve) => window.setTimeout(resolve, milliseconds));
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken, Accept: "application/json" },
    });
    let data = {};
    try {
      data = await response.json();
    } catch (error) {
      data = {};
    }
    return { ok: response.ok, status: response.status, data: data };
  }

  function capture() {
    const scale = Math.min(1, FRAME_MAX_SIDE / Math.max(video.videoWidth, video.videoHeight));
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    return new Promise((resolve, reject) => {
      canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("no frame"))), "image/jpeg", JPEG_QUALITY);
    });
  }

  async function openCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      explainNoCamera(null);
      return false;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: false,
        video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } },
      });
    } catch (error) {
      explainNoCamera(error);
      return false;
    }
    video.srcObject = stream;
    await video.play();
    if (!video.videoWidth) {
      await new Promise((resolve) => video.addEventListener("loadedmetadata", resolve, { once: true }));
    }
    return true;
  }

  async function run() {
    start.hidden = true;
    if (!(await openCamera())) {
      return;
    }
    show(camera);
    instruction.textContent = text.preparing;
    countdown.textContent = "";
    const challenge = await post(text.challengeUrl, new FormData());
    if (!challenge.ok) {
      finish(challenge.data.detail || text.failed, false);
      return;
    }
    const { nonce, instructions } = challenge.data;
    const frames = [];
    for (let index = 0; index < instructions.length; index += 1) {
      instruction.textContent = instructions[index];
      for (let second = COUNTDOWN_SECONDS; second > 0; second -= 1) {
        countdown.textContent = String(second);
        await wait(1000);
      }
      countdown.textContent = "";
      frames.push(await capture());
    }
    instruction.textContent = text.sending;
    const form = new FormData();
    form.append("nonce", nonce);
    frames.forEach((frame, index) => form.append("frames", frame, `frame-${index + 1}.jpg`));
    const answer = await post(text.verifyUrl, form);
    if (answer.ok && answer.data.verified) {
      finish(text.verified, true);
    } else {
      finish(answer.data.detail || text.failed, false);
    }
  }

  function begin() {
    run().catch(() => finish(text.failed, false));
  }

  find("[data-live=begin]").addEventListener("click", begin);
  retry.addEventListener("click", begin);
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    explainNoCamera(null);
  } else {
    show(start);
  }
})();
