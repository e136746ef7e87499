// affair pages: window tabs without reloads, filter and sort on the index, live ages, self-refresh.
// Small and dependency-free; every page works without it (the first window shows, a meta refresh reloads).
"use strict";
(function () {
  var body = document.body;
  var built = Number(body.dataset.built);
  var refresh = Number(body.dataset.refresh) || 60;
  var store = window.sessionStorage;

  function age(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 120) return seconds + " s";
    var minutes = Math.floor(seconds / 60);
    if (minutes < 120) return minutes + " min";
    var hours = Math.floor(minutes / 60);
    if (hours < 48) return hours + " h";
    return Math.floor(hours / 24) + " d";
  }

  // --- ages: "12 s" next to every last-sample time, kept current between rebuilds ---
  function updateAges() {
    var now = Date.now() / 1000;
    document.querySelectorAll("[data-t]").forEach(function (element) {
      var t = Number(element.dataset.t);
      if (!t) return;
      var label = element.querySelector("i");
      if (!label) { label = document.createElement("i"); element.appendChild(label); }
      label.textContent = age(now - t) + " ago";
    });
    // A silent host's "no sample for ..." counts on with its "... ago", so the two agree.
    document.querySelectorAll("[data-silent-since]").forEach(function (element) {
      element.textContent = "no sample for " + age(now - Number(element.dataset.silentSince));
    });
    var banner = document.getElementById("stale-page");
    var late = now - built;
    if (banner && late > Math.max(3 * refresh, 300)) {
      banner.querySelector("b").textContent = age(late);
      banner.hidden = false;
    }
  }

  // --- window tabs: swap every graph's image in place; remember the choice ---
  function showWindow(name) {
    document.querySelectorAll(".tabs button").forEach(function (button) {
      button.setAttribute("aria-selected", String(button.dataset.window === name));
    });
    document.querySelectorAll("figure.graph").forEach(function (figure) {
      var url = figure.dataset["w" + name];
      var img = figure.querySelector("img");
      var placeholder = figure.querySelector(".placeholder");
      var full = figure.querySelector("a.full");
      if (full) full.setAttribute("href", url || "");
      if (url) {
        if (img.getAttribute("src") !== url) img.setAttribute("src", url);
        img.hidden = false;
        placeholder.hidden = true;
      } else {
        img.hidden = true;
        placeholder.querySelector(".window").textContent = name;
        placeholder.hidden = false;
      }
    });
    try { window.localStorage.setItem("affair.window", name); } catch (e) { /* private mode */ }
    if (window.location.hash !== "#" + name) window.history.replaceState(null, "", "#" + name);
  }

  var tabs = document.querySelectorAll(".tabs button");
  tabs.forEach(function (button) {
    button.addEventListener("click", function () { showWindow(button.dataset.window); });
  });
  if (tabs.length) {
    var wanted = window.location.hash.slice(1);
    try { wanted = wanted || window.localStorage.getItem("affair.window"); } catch (e) { /* ignore */ }
    var known = Array.prototype.some.call(tabs, function (b) { return b.dataset.window === wanted; });
    if (wanted && known) showWindow(wanted);
  }

  // --- index: filter by name (substring or glob) and by colour ---
  var filter = document.getElementById("filter");
  var colourButtons = document.querySelectorAll(".count[data-colour]");
  var colours = {};

  function globToRegExp(text) {
    var escaped = text.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
    return new RegExp(text.indexOf("*") >= 0 || text.indexOf("?") >= 0 ? "^" + escaped + "$" : escaped, "i");
  }

  function applyFilter() {
    var text = filter ? filter.value.trim() : "";
    var words = text ? text.split(/[\s,]+/) : [];
    var wantedColours = Object.keys(colours).filter(function (c) { return colours[c]; });
    var patterns = [];
    words.forEach(function (word) {
      if (["red", "yellow", "grey", "green"].indexOf(word.toLowerCase()) >= 0) wantedColours.push(word.toLowerCase());
      else patterns.push(globToRegExp(word));
    });
    document.querySelectorAll("section.group").forEach(function (section) {
      var shown = 0;
      section.querySelectorAll("tbody tr").forEach(function (row) {
        var host = row.cells[0].textContent;
        var colour = (row.className.match(/\br-(\w+)/) || ["", ""])[1];
        var ok = (!patterns.length || patterns.some(function (p) { return p.test(host); })) &&
          (!wantedColours.length || wantedColours.indexOf(colour) >= 0);
        row.hidden = !ok;
        if (ok) shown++;
      });
      section.hidden = shown === 0;
    });
    store.setItem("affair.filter", JSON.stringify({ text: text, colours: colours }));
  }

  colourButtons.forEach(function (button) {
    if (button.querySelector("b").textContent === "0") button.classList.add("zero");
    button.addEventListener("click", function () {
      var colour = button.dataset.colour;
      colours[colour] = !colours[colour];
      button.setAttribute("aria-pressed", String(colours[colour]));
      applyFilter();
    });
  });
  if (filter) {
    try {
      var saved = JSON.parse(store.getItem("affair.filter") || "{}");
      filter.value = saved.text || "";
      colours = saved.colours || {};
      colourButtons.forEach(function (b) { b.setAttribute("aria-pressed", String(!!colours[b.dataset.colour])); });
    } catch (e) { /* ignore a corrupt saved filter */ }
    filter.addEventListener("input", applyFilter);
    if (filter.value || Object.keys(colours).length) applyFilter();
  }

  // --- index: sortable columns (numbers by data-v, text naturally), kept across reloads ---
  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  var sorts = {};
  try { sorts = JSON.parse(store.getItem("affair.sort") || "{}") || {}; } catch (e) { sorts = {}; }

  function sortBy(th, descending) {
    var table = th.closest("table");
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    table.querySelectorAll("th[aria-sort]").forEach(function (other) { other.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var numeric = th.dataset.sort === "num";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[index], y = b.cells[index], order;
      if (numeric) {
        var u = x.dataset.v === "" ? -Infinity : Number(x.dataset.v);
        var v = y.dataset.v === "" ? -Infinity : Number(y.dataset.v);
        order = u - v;
      } else {
        order = collator.compare(x.textContent, y.textContent);
      }
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    // The 30 s reload must not undo it: remembered per group, by column title.
    var group = table.closest("[data-group]");
    if (group) {
      sorts[group.dataset.group] = { column: th.textContent, descending: descending };
      store.setItem("affair.sort", JSON.stringify(sorts));
    }
  }

  document.querySelectorAll("th[data-sort]").forEach(function (th) {
    th.addEventListener("click", function () {
      sortBy(th, th.getAttribute("aria-sort") === "ascending");
    });
  });
  document.querySelectorAll("section.group[data-group]").forEach(function (section) {
    var saved = sorts[section.dataset.group];
    if (!saved) return;
    section.querySelectorAll("th[data-sort]").forEach(function (th) {
      if (th.textContent === saved.column) sortBy(th, !!saved.descending);
    });
  });

  updateAges();
  window.setInterval(updateAges, 5000);
  // Reload when the next rebuild should be on disk; the hash keeps the chosen window.
  window.setTimeout(function () { window.location.reload(); }, refresh * 1000);
})();

// --- jobs index: filter rows by any of their text (id, user, account, state, flags) ---
(function () {
  var input = document.getElementById("job-filter");
  if (!input) return;
  function apply() {
    var words = input.value.trim().toLowerCase().split(/[\s,]+/).filter(Boolean);
    document.querySelectorAll("table.jobs tbody tr").forEach(function (row) {
      var text = row.textContent.toLowerCase();
      row.hidden = !words.every(function (word) { return text.indexOf(word) >= 0; });
    });
  }
  input.addEventListener("input", apply);
})();
