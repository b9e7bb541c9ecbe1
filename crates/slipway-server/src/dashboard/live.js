// slipway dashboard: live updates. The page names its event stream in
// <meta name="slipway-events">; on each "changed" event the page is fetched again and its
// #live section swapped in. Without JavaScript (or EventSource) a reload shows the same.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="slipway-events"]');
  if (!meta || !window.EventSource || !window.DOMParser) { return; }
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (text) {
        if (text === null) { return; }
        var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("live");
        var old = document.getElementById("live");
        var active = document.activeElement;
        // Leave the section alone while someone is typing or choosing in it (a reason, say).
        var editing = active && old && old.contains(active) &&
          (/^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName) || active.isContentEditable);
        if (fresh && old && !editing) {
          old.replaceWith(fresh);
        }
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }
  var source = new EventSource(meta.content);
  source.addEventListener("changed", refresh);
})();
