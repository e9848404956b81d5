/* The photo page, enhanced: arrow keys and swipes step through the list, a
   share button where the browser can share, and the face choices drawn as
   buttons over the photo. Without this script the page keeps its links and
   forms: previous, next, download and the list of faces all work. */
(function () {
  "use strict";

  var previous = document.querySelector('a[rel="prev"]');
  var next = document.querySelector('a[rel="next"]');

  function go(link) {
    if (link) {
      window.location.assign(link.href);
    }
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) {
      return;
    }
    var target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) {
      return;
    }
    if (event.key === "ArrowLeft") {
      go(previous);
    } else if (event.key === "ArrowRight") {
      go(next);
    }
  });

  // A horizontal swipe on the photo: left for the next one, right for the previous one.
  var figure = document.querySelector("figure.photo");
  var start = null;
  if (figure) {
    figure.addEventListener("touchstart", function (event) {
      start = event.touches.length === 1 ? { x: event.touches[0].clientX, y: event.touches[0].clientY } : null;
    }, { passive: true });
    figure.addEventListener("touchend", function (event) {
      if (!start || event.changedTouches.length !== 1) {
        return;
      }
      var dx = event.changedTouches[0].clientX - start.x;
      var dy = event.changedTouches[0].clientY - start.y;
      start = null;
      if (Math.abs(dx) >= 50 && Math.abs(dx) > 2 * Math.abs(dy)) {
        go(dx < 0 ? next : previous);
      }
    }, { passive: true });
  }

  // Share the photo itself where the browser can share files, else the page's address.
  var share = document.getElementById("share");
  if (share && navigator.share) {
    share.hidden = false;
    share.addEventListener("click", function () {
      var data = { title: share.dataset.title, url: share.dataset.url };
      fetch(share.dataset.image, { credentials: "same-origin" })
        .then(function (response) { return response.blob(); })
        .then(function (blob) {
          var file = new File([blob], "photo.jpg", { type: blob.type || "image/jpeg" });
          if (navigator.canShare && navigator.canShare({ files: [file] })) {
            return navigator.share({ title: data.title, files: [file] });
          }
          return navigator.share(data);
        })
        .catch(function () { /* the guest closed the share sheet */ });
    });
  }

  // Each face choice again as a box over the face, submitting the same form.
  var frame = document.querySelector(".photo-frame");
  var choices = document.querySelectorAll("button.face-choice");
  if (frame && choices.length) {
    Array.prototype.forEach.call(choices, function (choice) {
      var box = document.createElement("button");
      box.type = "submit";
      box.name = "face_id";
      box.value = choice.value;
      box.className = "face-box";
      box.setAttribute("form", choice.form.id);
      box.setAttribute("aria-label", choice.getAttribute("aria-label"));
      box.style.left = parseFloat(choice.dataset.left) * 100 + "%";
      box.style.top = parseFloat(choice.dataset.top) * 100 + "%";
      box.style.width = parseFloat(choice.dataset.width) * 100 + "%";
      box.style.height = parseFloat(choice.dataset.height) * 100 + "%";
      frame.appendChild(box);
    });
  }
})();
