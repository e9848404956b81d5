// The "preparing your ZIP" page: polls the status endpoint and, once the ZIP
// is ready, shows the download button and starts the download once.
// Without JavaScript the page's meta refresh reloads it instead.
(function () {
  "use strict";

  var POLL_MS = 2000;
  var MAX_POLL_MS = 15000;
  var box = document.getElementById("archive-status");
  if (!box) {
    return;
  }

  function show(state) {
    var parts = box.querySelectorAll("[data-when]");
    for (var i = 0; i < parts.length; i += 1) {
      parts[i].hidden = parts[i].getAttribute("data-when") !== state;
    }
  }

  function stateOf(status) {
    if (status === "ready" || status === "failed") {
      return status;
    }
    return "waiting";
  }

  var delay = POLL_MS;

  function poll() {
    fetch(box.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error(String(response.status));
        }
        return response.json();
      })
      .then(function (body) {
        var state = stateOf(body.status);
        show(state);
        if (state === "ready") {
          window.location.assign(box.dataset.downloadUrl);
        } else if (state === "waiting") {
          window.setTimeout(poll, delay);
        }
      })
      .catch(function () {
        // A network hiccup on a phone: try again, less often.
        delay = Math.min(delay * 2, MAX_POLL_MS);
        window.setTimeout(poll, delay);
      });
  }

  if (stateOf(box.dataset.status) === "waiting") {
    window.setTimeout(poll, POLL_MS);
  }
})();
