// The page's only script: it replaces each panel's HTML with the one the
// server rendered (and escaped), as frames arrive on the event stream.
// Without EventSource it polls api/frame.json. Nothing here sends anything
// but GET requests: the page is read-only.
(function () {
  "use strict";
  var status = document.getElementById("status");
  var frames = 0;
  function show(f) {
    frames++;
    Object.keys(f.panels).forEach(function (id) {
      var el = document.getElementById(id);
      if (el) { el.innerHTML = f.panels[id]; }
    });
    status.textContent = "live · " + f.time;
    status.className = "live";
    document.body.setAttribute("data-frames", String(frames));
  }
  function poll() {
    fetch("api/frame.json", {cache: "no-store"})
      .then(function (r) { return r.json(); })
      .then(show)
      .catch(function () { status.textContent = "disconnected, retrying…"; status.className = "down"; })
      .finally(function () { setTimeout(poll, 1000); });
  }
  if (!window.EventSource) { poll(); return; }
  var es = new EventSource("events");
  es.addEventListener("frame", function (e) { show(JSON.parse(e.data)); });
  es.onerror = function () { status.textContent = "disconnected, reconnecting…"; status.className = "down"; };
})();
