/*
 * tidings.js: a small browser client for Tidings live streams. No build step:
 * load it with <script src="/static/tidings.js"></script> (or import it for
 * its side effect) and use the global `Tidings`.
 *
 *   const live = Tidings.connect({
 *     token: () => session.accessToken,          // or getTicket: async () => ...
 *     types: ["qms.*", "tasks.*"],
 *     invalidate: (keys, event) =>
 *       keys.forEach((key) => queryClient.invalidateQueries({ queryKey: [key] })),
 *   });
 *   live.close();
 *
 * Guarantees:
 * - Every connection uses a fresh single-use stream ticket, obtained from
 *   `getTicket()` or from POST /api/events/tickets with the bearer token.
 *   The browser's own EventSource retry (which would reuse a spent ticket) is
 *   replaced: on any error the EventSource is closed and a new one opened
 *   with a new ticket, after an exponential backoff with jitter.
 * - Reconnects resume after the last position seen (`lastEventId`), so no
 *   event is missed or repeated while the log still holds it.
 * - A `reset` message that skipped events (too far behind, unknown position)
 *   invalidates every mapped query key, since only a refetch can bring the
 *   page up to date; `onReset` hears of every reset.
 * - A `closed` message, or a 401/403 when fetching a ticket, stops the
 *   client for good (status "closed"); it never retries forever against a
 *   refusal.
 */
(function (root) {
  "use strict";

  /** Seed 000's React Query table: event-type prefix -> query keys. */
  var DEFAULT_QUERY_KEYS = Object.freeze({
    "qms.": ["qms-dashboard", "qms-documents", "qms-audits", "qms-cars", "qms-change-requests"],
    "training.": ["training-assignments", "training-dashboard"],
    "tasks.": ["tasks", "my-tasks"],
    "accounts.": ["admin-users", "user-profile"],
  });

  var CONTROL = { connected: true, reconnect: true, closed: true, reset: true };

  function noop() {}

  function isControl(message) {
    return CONTROL[message.type] === true && !("schema" in message);
  }

  /** Prefix rules out of a map whose keys are "qms." or "qms.*" and whose
   *  values are key lists or functions (event) -> key list. */
  function compileRules(map) {
    return Object.keys(map).map(function (pattern) {
      var prefix = pattern.charAt(pattern.length - 1) === "*" ? pattern.slice(0, -1) : pattern;
      return { prefix: prefix, keys: map[pattern] };
    });
  }

  /** The query keys an event invalidates: the union over every matching
   *  prefix, without duplicates, in map order. With no event: every key
   *  listed in the map (function rules need an event and are skipped). */
  function keysFor(rules, event) {
    var seen = Object.create(null);
    var keys = [];
    rules.forEach(function (rule) {
      var dynamic = typeof rule.keys === "function";
      if (event ? String(event.type).indexOf(rule.prefix) !== 0 : dynamic) return;
      var found = dynamic ? rule.keys(event) || [] : rule.keys;
      found.forEach(function (key) {
        var id = JSON.stringify(key);
        if (!seen[id]) {
          seen[id] = true;
          keys.push(key);
        }
      });
    });
    return keys;
  }

  function backoff(attempt, minDelay, maxDelay) {
    var base = Math.min(maxDelay, minDelay * Math.pow(2, attempt));
    return base * (0.5 + Math.random() / 2);
  }

  function refusal(status, text) {
    var error = new Error("ticket request refused (HTTP " + status + "): " + text);
    error.status = status;
    return error;
  }

  /** A value, or what a (maybe async) function returns, as a promise; a
   *  function that throws gives a rejected promise. */
  function resolve(value) {
    return new Promise(function (done) {
      done(typeof value === "function" ? value() : value);
    });
  }

  /**
   * Open a live stream. Options:
   *   url          base URL of the hub: "" = this origin at its root; a
   *                path ("/hub") where a host app mounts it; or another
   *                origin ("https://hub.example.com", CORS permitting)
   *   path         stream path (default "/api/events")
   *   token        bearer JWT, or a function returning one (or a promise)
   *   getTicket    async () => ticket; replaces the token-based ticket request
   *   types        "qms.*,tasks.*" or an array of patterns (narrows the stream)
   *   lastEventId  resume after this position
   *   queryKeys    prefix -> keys map (default Tidings.DEFAULT_QUERY_KEYS); a
   *                value is a key list or a function (event) => key list
   *   invalidate   (keys, event) => void, called for each event with keys
   *   onEvent      (event) => void, every event envelope
   *   onReset      (message) => void, a reset (skipped events, or a slow
   *                connection dropped and resumed)
   *   onStatus     (status, detail) => void: connecting | connected |
   *                reconnecting | closed
   *   onError      (error) => void
   *   minDelay, maxDelay  reconnect backoff bounds in ms (1000, 30000)
   * Returns { close(), status, lastEventId }.
   */
  function connect(options) {
    var opts = options || {};
    var base = (opts.url || "").replace(/\/+$/, "");
    var path = opts.path || "/api/events";
    var types = Array.isArray(opts.types) ? opts.types.join(",") : opts.types || "";
    var rules = compileRules(opts.queryKeys || DEFAULT_QUERY_KEYS);
    var invalidate = opts.invalidate || noop;
    var onEvent = opts.onEvent || noop;
    var onReset = opts.onReset || noop;
    var onStatus = opts.onStatus || noop;
    var onError = opts.onError || noop;
    var minDelay = opts.minDelay || 1000;
    var maxDelay = opts.maxDelay || 30000;

    var source = null;
    var timer = null;
    var attempt = 0;
    var stopped = false;
    var lastPosition = null;

    var handle = {
      status: "connecting",
      lastEventId: opts.lastEventId == null ? null : String(opts.lastEventId),
      close: function () {
        stop({ reason: "closed_by_client" });
      },
    };
    moveTo(handle.lastEventId);

    function setStatus(status, detail) {
      if (handle.status === status && status !== "reconnecting") return;
      handle.status = status;
      onStatus(status, detail || {});
    }

    function moveTo(id) {
      if (id && /^\d+$/.test(id)) {
        lastPosition = Number(id);
        handle.lastEventId = id;
      }
    }

    function ticket() {
      if (opts.getTicket) return resolve(opts.getTicket);
      return resolve(opts.token).then(function (token) {
        return fetch(base + "/api/events/tickets", {
          method: "POST",
          headers: { Authorization: "Bearer " + token },
          credentials: "same-origin",
        }).then(function (response) {
          if (response.ok) {
            return response.json().then(function (body) {
              return body.ticket;
            });
          }
          return response.text().then(function (text) {
            throw refusal(response.status, text.slice(0, 200));
          });
        });
      });
    }

    function streamUrl(ticketValue) {
      var query = ["ticket=" + encodeURIComponent(ticketValue)];
      if (types) query.push("types=" + encodeURIComponent(types));
      if (handle.lastEventId) query.push("lastEventId=" + encodeURIComponent(handle.lastEventId));
      return base + path + "?" + query.join("&");
    }

    function open() {
      timer = null;
      if (stopped) return;
      ticket().then(
        function (value) {
          if (stopped) return;
          source = new EventSource(streamUrl(value));
          source.onmessage = receive;
          source.onerror = function () {
            retry({ reason: "connection_lost" });
          };
        },
        function (error) {
          onError(error);
          if (error && (error.status === 401 || error.status === 403)) {
            stop({ reason: "unauthorized", error: error });
          } else {
            retry({ reason: "ticket_failed", error: error });
          }
        }
      );
    }

    function dropSource() {
      if (source) {
        source.onmessage = null;
        source.onerror = null;
        source.close();
        source = null;
      }
    }

    function retry(detail, delay) {
      dropSource();
      if (stopped || timer) return;
      var wait = delay == null ? backoff(attempt, minDelay, maxDelay) : delay;
      attempt += 1;
      setStatus("reconnecting", Object.assign({ delay: Math.round(wait) }, detail));
      timer = setTimeout(open, wait);
    }

    function stop(detail) {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      dropSource();
      setStatus("closed", detail);
    }

    function receive(message) {
      var data;
      try {
        data = JSON.parse(message.data);
      } catch (error) {
        onError(error);
        return;
      }
      if (!data || typeof data !== "object") return;
      if (isControl(data)) {
        control(data, message.lastEventId);
        return;
      }
      var position = /^\d+$/.test(message.lastEventId) ? Number(message.lastEventId) : null;
      if (position !== null) {
        if (lastPosition !== null && position <= lastPosition) return; // seen already
        moveTo(message.lastEventId);
      }
      onEvent(data);
      var keys = keysFor(rules, data);
      if (keys.length) invalidate(keys, data);
    }

    function control(data, id) {
      if (data.type === "connected") {
        attempt = 0;
        if (handle.lastEventId === null) moveTo(id);
        setStatus("connected", data);
      } else if (data.type === "reset") {
        moveTo(id);
        onReset(data);
        // A reset naming lastEventId ends a slow connection: the reconnect
        // resumes there and loses nothing. Any other reset skipped events.
        var all = "lastEventId" in data ? [] : keysFor(rules, null);
        if (all.length) invalidate(all, data);
      } else if (data.type === "reconnect") {
        retry(data, data.reason === "token_expired" ? 0 : backoff(0, minDelay, maxDelay));
      } else if (data.type === "closed") {
        stop(data);
      }
    }

    setStatus("connecting");
    open();
    return handle;
  }

  root.Tidings = {
    connect: connect,
    keysFor: function (event, queryKeys) {
      return keysFor(compileRules(queryKeys || DEFAULT_QUERY_KEYS), event);
    },
    DEFAULT_QUERY_KEYS: DEFAULT_QUERY_KEYS,
  };
})(typeof globalThis !== "undefined" ? globalThis : this);
