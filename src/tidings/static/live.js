/*
 * The /live page: connects through tidings.js and lists incoming events,
 * newest first (at most MAX_ROWS). The token comes from the address fragment
 * (#token=...; removed from the address bar once read) or the form.
 */
(function () {
  "use strict";

  var MAX_ROWS = 200;
  var STATUS_TEXT = {
    idle: "Not connected",
    connecting: "Connecting…",
    connected: "Connected",
    reconnecting: "Reconnecting…",
    closed: "Disconnected",
  };

  var form = document.getElementById("connect");
  var stopButton = document.getElementById("disconnect");
  var statusLine = document.getElementById("status");
  var rows = document.querySelector("#events tbody");
  var empty = document.getElementById("empty");
  var live = null;

  function cell(text, className) {
    var td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (className) td.className = className;
    return td;
  }

  function clock(timestamp) {
    var date = new Date(timestamp);
    if (isNaN(date.getTime())) return "";
    return date.toLocaleTimeString(undefined, {
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hour12: false,
    });
  }

  function entityCell(event) {
    var td = cell(event.entityId || "", "entity");
    if (event.entityType) {
      var kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = event.entityType;
      td.insertBefore(kind, td.firstChild);
    }
    return td;
  }

  function keysCell(keys) {
    var td = cell("", "keys");
    keys.forEach(function (key) {
      var chip = document.createElement("span");
      chip.className = "key";
      chip.textContent = typeof key === "string" ? key : JSON.stringify(key);
      td.appendChild(chip);
    });
    return td;
  }

  function showStatus(state, detail) {
    var text = STATUS_TEXT[state] || state;
    if (detail && detail.reason && state !== "connected") text += " (" + detail.reason + ")";
    statusLine.dataset.state = state;
    statusLine.textContent = text;
    stopButton.disabled = state === "closed" || state === "idle";
  }

  function addRow(cells, className) {
    var tr = document.createElement("tr");
    if (className) tr.className = className;
    cells.forEach(function (td) {
      tr.appendChild(td);
    });
    rows.insertBefore(tr, rows.firstChild);
    while (rows.children.length > MAX_ROWS) rows.removeChild(rows.lastChild);
    empty.hidden = true;
  }

  function showEvent(event) {
    var actor = event.actor ? event.actor.name || event.actor.userId : "";
    var row = [
      cell(clock(event.timestamp), "time"),
      cell(event.position, "position"),
      cell(event.type, "type"),
      entityCell(event),
      cell(actor),
      keysCell(Tidings.keysFor(event)),
    ];
    addRow(row, "event");
    rows.firstChild.dataset.type = event.type;
    rows.firstChild.dataset.position = event.position;
  }

  function showReset(message) {
    var text = "Some events were skipped (" + message.reason + "): reload the data you show.";
    var td = cell(text);
    td.colSpan = 6;
    addRow([td], "reset");
  }

  function start(token, types) {
    if (live) live.close();
    live = Tidings.connect({
      url: document.body.getAttribute("data-hub") || "", // the hub's mount prefix
      token: token,
      types: types || undefined,
      onStatus: showStatus,
      onEvent: showEvent,
      onReset: showReset,
      onError: function (error) {
        console.warn("tidings:", error);
      },
    });
  }

  function tokenFromFragment() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ""));
    var token = params.get("token");
    if (token) history.replaceState(null, "", location.pathname + location.search);
    return { token: token, types: params.get("types") };
  }

  form.addEventListener("submit", function (submit) {
    submit.preventDefault();
    start(form.elements.token.value.trim(), form.elements.types.value.trim());
  });

  stopButton.addEventListener("click", function () {
    if (live) live.close();
  });

  var given = tokenFromFragment();
  if (given.types) form.elements.types.value = given.types;
  if (given.token) {
    form.elements.token.value = given.token;
    start(given.token, given.types);
  }
})();
