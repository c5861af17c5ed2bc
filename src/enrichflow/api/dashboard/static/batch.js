// Live parts of the batch page: every few seconds, fetch each [data-live] part's fragment and
// swap it in only when it changed and holds neither the keyboard focus nor a text selection,
// so an operator can copy an error or tab to a button while the batch runs.
(function () {
  "use strict";

  function dropNotice() {
    var url = new URL(window.location.href);
    if (url.searchParams.has("notice")) {
      url.searchParams.delete("notice");
      window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
    }
  }

  function busy(part) {
    var active = document.activeElement;
    if (active && active !== document.body && part.contains(active)) {
      return true;
    }
    var selection = window.getSelection();
    if (selection && !selection.isCollapsed && selection.rangeCount) {
      var node = selection.getRangeAt(0).commonAncestorContainer;
      if (part.contains(node) || node.contains(part)) {
        return true;
      }
    }
    return false;
  }

  function refresh(parts, every) {
    var pending = parts.map(function (part) {
      return fetch(part.getAttribute("data-live"), {
        credentials: "same-origin",
        headers: { "accept": "text/html" }
      }).then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      }).then(function (html) {
        if (part.getAttribute("data-html") !== html && !busy(part)) {
          part.innerHTML = html;
          part.setAttribute("data-html", html);
        }
        return html;
      });
    });
    Promise.all(pending).then(function () {
      var still = document.querySelector("[data-running]");
      if (still) {
        window.setTimeout(function () { refresh(parts, every); }, every);
      } else {
        document.documentElement.setAttribute("data-live-stopped", "finished");
      }
    }, function (error) {
      document.documentElement.setAttribute("data-live-stopped", String(error));
      window.setTimeout(function () { refresh(parts, every); }, every * 5);
    });
  }

  function start() {
    dropNotice();
    var first = document.querySelector("[data-every]");
    if (!first || !document.querySelector("[data-running]")) {
      return;
    }
    var every = 1000 * Number(first.getAttribute("data-every"));
    var parts = Array.prototype.slice.call(document.querySelectorAll("[data-live]"));
    window.setTimeout(function () { refresh(parts, every); }, every);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
