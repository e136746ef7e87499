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
  // Reload when the next rebuild should be on disk (the hash keeps the chosen window), but not
  // under someone typing a custom range (a filter survives a reload: it is kept): once they left.
  function reloadWhenIdle() {
    var field = document.activeElement;
    if (field && field.closest("#range-form")) window.setTimeout(reloadWhenIdle, 5000);
    else window.location.reload();
  }
  window.setTimeout(reloadWhenIdle, refresh * 1000);
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

// --- zoom, custom ranges and 2x graphs: only where `affair serve` draws graphs on request ---
// GET /_affair/features answers only under affair serve. Elsewhere (nginx, file://) the graphs stay
// as drawn, a drag does nothing, and view.html says that zooming needs affair serve.
(function () {
  var body = document.body;
  var siteRoot = new URL(body.dataset.root || "./", window.location.href);
  var NODE_GRAPH = /(^|\/)node\/[^\/]+\/[^\/]+\.png$|\.node\.[^\/]+\.png$/;  // what serve draws
  var SAFE_GRAPH = /^[A-Za-z0-9._~@%\/-]+\.png$/;
  var features = null;
  var areas = {};  // graph URL -> promise of its plot area
  var drag = null;
  var swallowClick = false;
  var probing = true;

  // "graphs/node/ldc01/system.1h.png": a graph's path from the site's root, without its query.
  function graphPath(src) {
    if (!src) return null;
    var url = new URL(src, window.location.href);
    if (url.origin !== siteRoot.origin || url.pathname.indexOf(siteRoot.pathname) !== 0) return null;
    return url.pathname.slice(siteRoot.pathname.length);
  }
  function safe(path) {
    return !!path && SAFE_GRAPH.test(path) && path.indexOf("..") < 0 && path.indexOf("//") < 0 && path[0] !== "/";
  }
  function zoomable(path) { return !!features && safe(path) && NODE_GRAPH.test(path); }
  function withQuery(url, query) { return url + (url.indexOf("?") >= 0 ? "&" : "?") + query; }
  function viewHref(path, from, to) {
    var hash = "g=" + encodeURIComponent(path) + (from ? "&from=" + from + "&to=" + to : "");
    return siteRoot.href.replace(/[?#].*$/, "") + "view.html#" + hash;
  }

  // --- each graph: its full-size page, 2x pixels on HiDPI screens, a crosshair where it zooms ---
  function dress(img) {
    var figure = img.closest("figure.graph");
    var path = graphPath(img.getAttribute("src"));
    var full = figure && figure.querySelector("a.full");
    // A window not drawn yet hides its image and empties the link: nothing to open then.
    if (full && safe(path) && !img.hidden && full.getAttribute("href") !== viewHref(path)) {
      full.setAttribute("href", viewHref(path));
    }
    var sharp = zoomable(path) && features.scales.indexOf(2) >= 0;
    var srcset = sharp ? withQuery(img.getAttribute("src"), "scale=2") + " 2x" : null;
    if (img.getAttribute("srcset") !== srcset) {
      if (srcset) img.setAttribute("srcset", srcset);
      else img.removeAttribute("srcset");
    }
    if (figure) figure.classList.toggle("zoomable", zoomable(path));
  }
  function dressAll() { document.querySelectorAll("figure.graph img[src]").forEach(dress); }
  // The window tabs swap an image's src and its link's href: the srcset and the link follow.
  new MutationObserver(function (changes) {
    changes.forEach(function (change) {
      var figure = change.target.closest("figure.graph");
      var img = figure && figure.querySelector("img[src]");
      if (img) dress(img);
    });
  }).observe(body, { subtree: true, attributes: true, attributeFilter: ["src", "href"] });

  // --- where a graph's plot area is, and its times: the PNG's "affair:plot" text chunk ---
  function plotArea(src) {
    if (!areas[src]) {
      areas[src] = fetch(src).then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.arrayBuffer();
      }).then(readPlotArea);
    }
    return areas[src];
  }
  function readPlotArea(buffer) {
    var view = new DataView(buffer);
    for (var at = 8; at + 8 <= buffer.byteLength;) {
      var length = view.getUint32(at);
      var kind = String.fromCharCode.apply(null, new Uint8Array(buffer, at + 4, 4));
      if (kind === "IDAT") break;
      if (kind === "tEXt") {
        var text = String.fromCharCode.apply(null, new Uint8Array(buffer, at + 8, length));
        var cut = text.indexOf("\0");
        if (text.slice(0, cut) === "affair:plot") return JSON.parse(text.slice(cut + 1));
      }
      at += 12 + length;
    }
    throw new Error("the graph does not say where its plot is");
  }

  // --- a drag across a graph: the band, then the range it covers ---
  function band(figure) {
    var element = figure.querySelector(".zoom-band");
    if (!element) { element = document.createElement("div"); element.className = "zoom-band"; figure.appendChild(element); }
    return element;
  }
  function showBand(state) {
    var element = band(state.figure);
    var box = state.figure.getBoundingClientRect();
    element.style.left = (Math.min(state.x0, state.x1) - box.left - state.figure.clientLeft) + "px";
    element.style.width = Math.abs(state.x1 - state.x0) + "px";
    element.style.top = state.img.offsetTop + "px";
    element.style.height = state.img.offsetHeight + "px";
    element.hidden = false;
  }
  function rangeOf(state, area) {
    var box = state.img.getBoundingClientRect();
    function time(x) {
      var pixel = (x - box.left) / box.width * area.width;
      var share = Math.min(1, Math.max(0, (pixel - area.x0) / (area.x1 - area.x0)));
      return area.start + share * (area.end - area.start);
    }
    var limits = features.ranges;
    var from = Math.floor(time(Math.min(state.x0, state.x1)));
    var to = Math.ceil(time(Math.max(state.x0, state.x1)));
    if (to - from < limits.min_span) {  // a narrow drag: the narrowest range, around its middle
      from = Math.floor((from + to - limits.min_span) / 2);
      to = from + limits.min_span;
    }
    from = Math.max(from, limits.earliest);
    to = Math.min(to, limits.latest);
    return to > from ? { from: from, to: to } : null;
  }

  document.addEventListener("pointerdown", function (event) {
    swallowClick = false;
    var img = event.target.closest ? event.target.closest("figure.graph img") : null;
    if (!img || event.button !== 0) return;
    var src = img.currentSrc || img.src;
    if (!zoomable(graphPath(src))) return;
    event.preventDefault();  // no image dragging, no text selection
    img.setPointerCapture(event.pointerId);
    drag = { img: img, figure: img.closest("figure.graph"), x0: event.clientX, x1: event.clientX,
      moved: false, area: plotArea(src) };
  });
  document.addEventListener("pointermove", function (event) {
    if (!drag) return;
    drag.x1 = event.clientX;
    drag.moved = drag.moved || Math.abs(drag.x1 - drag.x0) > 4;
    if (drag.moved) showBand(drag);
  });
  function endDrag(event) {
    if (!drag) return;
    var state = drag;
    drag = null;
    if (!state.moved || event.type === "pointercancel") { band(state.figure).hidden = true; return; }
    swallowClick = true;  // a drag is not a click on the graph's link
    state.area.then(function (area) {
      var range = rangeOf(state, area);
      band(state.figure).hidden = true;
      if (!range) return;
      var path = graphPath(state.img.currentSrc || state.img.src);
      window.location.href = viewHref(path, range.from, range.to);
    }).catch(function (error) {
      band(state.figure).hidden = true;
      showError("cannot zoom: " + error.message);
    });
  }
  document.addEventListener("dragstart", function (event) {  // the browser's own image dragging
    if (event.target.closest && event.target.closest("figure.graph.zoomable")) event.preventDefault();
  });
  document.addEventListener("pointerup", endDrag);
  document.addEventListener("pointercancel", endDrag);
  document.addEventListener("click", function (event) {
    if (swallowClick && event.target.closest && event.target.closest("figure.graph")) {
      event.preventDefault();
      event.stopPropagation();
    }
    swallowClick = false;
  }, true);

  // --- view.html: one graph, full size, its window or a range; the custom-range form ---
  var viewImg = document.getElementById("view-img");
  var form = document.getElementById("range-form");
  var errorLine = document.getElementById("range-error");

  function showError(text) {
    if (!errorLine) return;
    errorLine.textContent = text;
    errorLine.hidden = !text;
  }
  function readHash() {
    var params = new URLSearchParams(window.location.hash.slice(1));
    var path = params.get("g");
    var from = Number(params.get("from")), to = Number(params.get("to"));
    var ranged = params.has("from") && Number.isInteger(from) && Number.isInteger(to) && from < to;
    return { path: safe(path) ? path : null, from: ranged ? from : 0, to: ranged ? to : 0 };
  }
  function localInput(seconds) {
    var d = new Date(seconds * 1000);
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate()) + "T" + two(d.getHours()) + ":" + two(d.getMinutes());
  }
  function describe(path) {
    var name = path.split("/").pop().replace(/\.png$/, "");
    var node = path.match(/node\/([^\/]+)\/([^\/]+)\.([^.\/]+)\.png$/);
    if (node) return { host: node[1], title: node[1] + " · " + node[2] + " · " + node[3] };
    var configured = name.match(/^([^.]+)\.node\.(.+)\.([^.]+)$/);
    if (configured) return { host: configured[2], title: configured[2] + " · " + configured[1] + " · " + configured[3] };
    return { host: "", title: name };
  }
  function showView() {
    var state = readHash();
    showError("");
    if (!state.path) {
      document.getElementById("view-missing").hidden = false;
      viewImg.hidden = true;
      return;
    }
    var about = describe(state.path);
    document.getElementById("view-title").textContent = about.title;
    document.getElementById("view-name").textContent = about.title;
    document.title = about.title + (state.from ? " · zoom" : "") + " · " + document.title.split(" · ").pop();
    var host = document.getElementById("view-host");
    host.textContent = "";
    if (about.host) {
      var link = document.createElement("a");
      link.href = "host/" + encodeURIComponent(about.host) + ".html";
      link.textContent = about.host;
      host.appendChild(link);
      host.appendChild(document.createTextNode(" › "));
    }
    // The range goes in the URL whatever answers it: plain files ignore it (and say so below).
    var src = state.path + (state.from ? "?from=" + state.from + "&to=" + state.to : "");
    viewImg.alt = about.title;
    viewImg.hidden = false;
    if (viewImg.getAttribute("src") !== src) viewImg.setAttribute("src", src);
    var canZoom = zoomable(state.path);
    form.hidden = !canZoom;
    var reset = document.getElementById("range-reset");
    reset.hidden = !state.from;
    reset.setAttribute("href", "#g=" + encodeURIComponent(state.path));
    var note = document.getElementById("no-zoom");
    note.hidden = canZoom || probing;  // said once the server has been asked
    if (features && !canZoom) {
      note.textContent = "Zooming and custom ranges are for per-node graphs: aggregates and " +
        "overlays read every host's files, and only the plotter draws them.";
    }
    if (canZoom && state.from) {
      form.elements.from.value = localInput(state.from);
      form.elements.to.value = localInput(state.to);
    } else if (canZoom) {  // the window's own edges, from the graph itself
      plotArea(viewImg.currentSrc || viewImg.src).then(function (area) {
        if (readHash().from) return;
        form.elements.from.value = localInput(area.start);
        form.elements.to.value = localInput(area.end);
      }).catch(function () { /* the image's own error says why */ });
    }
  }
  if (viewImg) {
    viewImg.addEventListener("error", function () {
      // An image cannot carry the server's reason: ask for it once more as text.
      fetch(viewImg.currentSrc || viewImg.src).then(function (response) { return response.text(); })
        .then(function (text) { showError("the graph could not be drawn: " + text.trim()); })
        .catch(function () { showError("the graph could not be loaded"); });
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var from = new Date(form.elements.from.value).getTime() / 1000;  // local time, as typed
      var to = new Date(form.elements.to.value).getTime() / 1000;
      if (!isFinite(from) || !isFinite(to)) { showError("give both times, from and to"); return; }
      if (from >= to) { showError("from must be before to"); return; }
      window.location.hash = "g=" + encodeURIComponent(readHash().path) + "&from=" + Math.floor(from) + "&to=" + Math.ceil(to);
    });
    window.addEventListener("hashchange", showView);
    showView();
  }

  function probe() {
    if (!/^https?:$/.test(window.location.protocol) || !window.fetch) return Promise.resolve(null);
    return fetch("/_affair/features").then(function (response) {
      return response.ok ? response.json() : null;
    }).catch(function () { return null; });
  }
  probe().then(function (found) {
    probing = false;
    features = found && found.ranges ? found : null;
    body.dataset.zoom = features ? "on" : "off";  // for the tests and the curious
    dressAll();
    if (viewImg) showView();
  });
  dressAll();
})();
