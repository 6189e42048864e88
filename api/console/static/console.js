// The admin console's script: it only improves pages that work without
// it. It shows times in the viewer's time zone, relative to now; reloads
// the live parts of a page every so often (no full reload, and never the
// forms); enables Delete once the name is typed; keeps the name typed
// when the New token form switches kind; and moves on from the page that
// /callback answers.
(function () {
  "use strict";

  function human(ms) {
    var s = Math.round(Math.abs(ms) / 1000);
    if (s < 60) return s + " s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + " min";
    var h = Math.floor(m / 60);
    if (h < 48) return h + " h" + (m % 60 ? " " + (m % 60) + " min" : "");
    var d = Math.floor(h / 24);
    return d + " days" + (h % 24 ? " " + (h % 24) + " h" : "");
  }

  var thisYear = new Intl.DateTimeFormat(undefined, {
    day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", timeZoneName: "short"
  });
  var otherYear = new Intl.DateTimeFormat(undefined, {
    day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short"
  });
  var full = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });

  function absolute(d) {
    return (d.getFullYear() === new Date().getFullYear() ? thisYear : otherYear).format(d);
  }

  function localize(root) {
    var now = Date.now();
    root.querySelectorAll("time[data-when]").forEach(function (el) {
      var t = Date.parse(el.getAttribute("datetime"));
      if (isNaN(t)) return;
      var rel = t > now ? "in " + human(t - now) : human(now - t) + " ago";
      var abs = absolute(new Date(t));
      el.textContent = "";
      var r = document.createElement("span");
      r.className = "rel";
      r.textContent = rel;
      var a = document.createElement("span");
      a.className = "abs";
      a.textContent = abs;
      el.appendChild(r);
      el.appendChild(a);
      el.title = full.format(new Date(t));
    });
  }

  function poll(seconds) {
    var busy = false;
    function refresh() {
      if (busy || document.hidden) return;
      busy = true;
      fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (resp) {
          if (resp.redirected && resp.url.indexOf("/admin/signin") >= 0) throw new Error("signed out");
          if (!resp.ok) return null;
          return resp.text();
        })
        .then(function (html) {
          if (html === null) return;
          var doc = new DOMParser().parseFromString(html, "text/html");
          var live = document.querySelectorAll("[data-live]");
          if (live.length && !doc.getElementById(live[0].id)) throw new Error("signed out");
          live.forEach(function (el) {
            var fresh = doc.getElementById(el.id);
            if (fresh) {
              // Keep what the person ticked (tokens chosen for a bulk refresh).
              var ticked = {};
              el.querySelectorAll("input[type=checkbox][id]").forEach(function (c) { ticked[c.id] = c.checked; });
              var copy = document.importNode(fresh, true);
              copy.querySelectorAll("input[type=checkbox][id]").forEach(function (c) {
                if (Object.prototype.hasOwnProperty.call(ticked, c.id) && !c.disabled) c.checked = ticked[c.id];
              });
              el.replaceWith(copy);
            }
          });
          pickAll();
          localize(document);
        })
        .catch(function (err) {
          if (String(err.message) === "signed out") {
            var note = document.getElementById("session-ended");
            if (note) note.hidden = false;
            clearInterval(timer);
          }
        })
        .finally(function () { busy = false; });
    }
    var timer = setInterval(refresh, seconds * 1000);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
    // Relative times move on between polls too.
    setInterval(function () { localize(document); }, 30000);
  }

  function confirmDelete() {
    var form = document.getElementById("delete-form");
    if (!form) return;
    var input = document.getElementById("confirm-name");
    var button = document.getElementById("delete");
    var name = form.getAttribute("data-name");
    function update() { button.disabled = input.value !== name; }
    input.addEventListener("input", update);
    update();
  }

  // The New token form's kind links keep the name typed so far.
  function kindLinks() {
    var name = document.getElementById("name");
    var links = document.querySelectorAll(".kinds a");
    if (!name || !links.length) return;
    name.addEventListener("input", function () {
      links.forEach(function (a) {
        var u = new URL(a.getAttribute("href"), window.location.href);
        if (name.value) u.searchParams.set("name", name.value); else u.searchParams.delete("name");
        a.setAttribute("href", u.pathname + u.search);
      });
    });
  }

  // Copy buttons: hidden without the script, whose values can still be
  // selected by hand.
  function copyButtons() {
    document.querySelectorAll("button.copy[data-copy]").forEach(function (b) {
      var src = document.getElementById(b.getAttribute("data-copy"));
      if (!src) return;
      var label = b.textContent;
      b.hidden = false;
      b.addEventListener("click", function () {
        var text = src.textContent.trim();
        var done = function (msg) {
          b.textContent = msg;
          setTimeout(function () { b.textContent = label; }, 2000);
        };
        var select = function () {
          var range = document.createRange();
          range.selectNodeContents(src);
          var sel = window.getSelection();
          sel.removeAllRanges();
          sel.addRange(range);
          done("Press Ctrl+C");
        };
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(text).then(function () { done("Copied"); }, select);
        } else {
          select();
        }
      });
    });
  }

  // The overview's "select every token" box, shown only with the script.
  function pickAll() {
    var all = document.getElementById("pick-all");
    if (!all) return;
    var boxes = function () { return document.querySelectorAll("#tokens input.pick:not(:disabled)"); };
    all.hidden = boxes().length === 0;
    all.addEventListener("change", function () {
      boxes().forEach(function (c) { c.checked = all.checked; });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var go = document.body.getAttribute("data-goto");
    if (go && go.charAt(0) === "/" && go.charAt(1) !== "/") {
      window.location.replace(go);
      return;
    }
    var canonical = document.body.getAttribute("data-url");
    if (canonical && canonical.charAt(0) === "/" && canonical.charAt(1) !== "/" &&
        window.location.pathname + window.location.search !== canonical) {
      window.history.replaceState(null, "", canonical);
    }
    localize(document);
    confirmDelete();
    kindLinks();
    copyButtons();
    pickAll();
    var every = parseInt(document.body.getAttribute("data-poll"), 10);
    if (every > 0) poll(every);
  });
})();
