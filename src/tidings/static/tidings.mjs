/*
 * tidings.mjs: the browser client for Tidings live streams, an ES module
 * (types in tidings.d.ts). No build step: import it from the hub,
 *
 *   import { connect } from "/static/tidings.mjs";
 *   const live = connect({
 *     token: () => session.accessToken,          // or getTicket: async () => ...
 *     types: ["qms.*", "tasks.*"],
 *     invalidate: (keys) =>
 *       keys.forEach((key) => queryClient.invalidateQueries({ queryKey: [key] })),
 *   });
 *   live.close();
 *
 * or load the classic script tidings.js (<script src="/static/tidings.js">)
 * and use the global `Tidings`. This file is the one source: tidings.js is
 * generated from it by scripts/build_tidings_js.py (a test checks the
 * committed file is what the generator makes); edit here, then run it.
 *
 * Guarantees:
 * - Every connection uses a fresh single-use stream ticket, obtained from
 *   `getTicket()` or from POST /api/events/tickets with the bearer token.
 *   The browser's own EventSource retry (which would reuse a spent ticket) is
 *   replaced: on any error the connection is closed and a new one opened
 *   with a new ticket.
 * - The wait before a reconnect is never shorter than the server's `retry`
 *   (sent on connect, and again, jittered, when the server shuts down); a
 *   planned reconnect waits what the server said, a failure waits
 *   retry * 2^failures, capped at maxDelay, plus up to 50% jitter. Until a
 *   server said its retry, minDelay stands in for it.
 * - Transport: EventSource (SSE) first. It falls back to the WebSocket
 *   endpoint for the rest of its life when EventSource is not defined, or
 *   when two SSE attempts in a row failed before opening although the hub
 *   had just issued their tickets (so the hub is reachable) and no SSE
 *   connection of this client ever opened (something blocks SSE).
 * - Reconnects resume after the last position seen (`lastEventId`), so no
 *   event is missed or repeated while the log still holds it.
 * - A `reset` message that skipped events (too far behind, unknown position)
 *   invalidates every mapped query key, since only a refetch can bring the
 *   page up to date; `onReset` hears of every reset.
 * - A WebSocket closed with 1001 or 1012 (the server going away) is a
 *   planned reconnect, like a `reconnect` message without a retry.
 * - A `closed` message, a refused WebSocket (4403), or a 401/403 when
 *   fetching a ticket stops the client for good (status "closed"); it never
 *   retries forever against a refusal.
 */

/** Seed 000's React Query table: event-type prefix -> query keys. */
export const DEFAULT_QUERY_KEYS = Object.freeze({
  "qms.": ["qms-dashboard", "qms-documents", "qms-audits", "qms-cars", "qms-change-requests"],
  "training.": ["training-assignments", "training-dashboard"],
  "tasks.": ["tasks", "my-tasks"],
  "accounts.": ["admin-users", "user-profile"],
});

const CONTROL = { connected: true, reconnect: true, closed: true, reset: true };
const SSE_FAILURES_BEFORE_WEBSOCKET = 2;
const WS_REFUSED = 4403; // the server closed this user's streams, or forbids them
const WS_GOING_AWAY = new Set([1001, 1012]); // going away, service restart (RFC 6455)

function noop() {}

function isControl(message) {
  return CONTROL[message.type] === true && !("schema" in message);
}

/** Prefix rules out of a map whose keys are "qms." or "qms.*" and whose
 *  values are key lists or functions (event) -> key list. */
function compileRules(map) {
  return Object.keys(map).map((pattern) => {
    const prefix = pattern.endsWith("*") ? pattern.slice(0, -1) : pattern;
    return { prefix, keys: map[pattern] };
  });
}

/** The query keys an event invalidates: the union over every matching
 *  prefix, without duplicates, in map order. With no event: every key
 *  listed in the map (function rules need an event and are skipped). */
function matchKeys(rules, event) {
  const seen = new Set();
  const keys = [];
  for (const rule of rules) {
    const dynamic = typeof rule.keys === "function";
    if (event ? !String(event.type).startsWith(rule.prefix) : dynamic) continue;
    const found = dynamic ? rule.keys(event) || [] : rule.keys;
    for (const key of found) {
      const id = JSON.stringify(key);
      if (!seen.has(id)) {
        seen.add(id);
        keys.push(key);
      }
    }
  }
  return keys;
}

/** The query keys `event` invalidates under `queryKeys` (default
 *  DEFAULT_QUERY_KEYS). */
export function keysFor(event, queryKeys) {
  return matchKeys(compileRules(queryKeys || DEFAULT_QUERY_KEYS), event);
}

/** `base` plus up to half of it again: never sooner than `base`. */
function jitter(base) {
  return base * (1 + Math.random() / 2);
}

function refusal(status, text) {
  const error = new Error(`ticket request refused (HTTP ${status}): ${text}`);
  error.status = status;
  return error;
}

/** A value, or what a (maybe async) function returns, as a promise; a
 *  function that throws gives a rejected promise. */
function resolve(value) {
  return new Promise((done) => done(typeof value === "function" ? value() : value));
}

/** ws(s)://host/base + path: the WebSocket twin of an http(s) URL, relative
 *  URLs taken against the page's address. */
function webSocketUrl(httpUrl) {
  const url = new URL(httpUrl, globalThis.location ? globalThis.location.href : undefined);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

/**
 * Open a live stream. Options:
 *   url          base URL of the hub: "" = this origin at its root; a
 *                path ("/hub") where a host app mounts it; or another
 *                origin ("https://hub.example.com", CORS permitting)
 *   path         SSE stream path (default "/api/events")
 *   wsPath       WebSocket stream path (default "/ws/events")
 *   transport    "auto" (default: SSE, WebSocket fallback), "sse", "websocket"
 *   token        bearer JWT, or a function returning one (or a promise)
 *   getTicket    async () => ticket; replaces the token-based ticket request
 *   types        "qms.*,tasks.*" or an array of patterns (narrows the stream)
 *   lastEventId  resume after this position
 *   queryKeys    prefix -> keys map (default DEFAULT_QUERY_KEYS); a value is
 *                a key list or a function (event) => key list
 *   invalidate   (keys, event) => void, called for each event with keys
 *   onEvent      (event) => void, every event envelope
 *   onReset      (message) => void, a reset (skipped events, or a slow
 *                connection dropped and resumed)
 *   onStatus     (status, detail) => void: connecting | connected |
 *                reconnecting (detail.delay: the wait in ms) | closed
 *   onError      (error) => void
 *   minDelay, maxDelay  reconnect wait before the server said its retry,
 *                and the cap of the backoff after failures, in ms (1000, 10000)
 * Returns { close(), status, lastEventId, transport, retry }.
 */
export function connect(options) {
  const opts = options || {};
  const base = (opts.url || "").replace(/\/+$/, "");
  const path = opts.path || "/api/events";
  const wsPath = opts.wsPath || "/ws/events";
  const mode = opts.transport || "auto";
  const types = Array.isArray(opts.types) ? opts.types.join(",") : opts.types || "";
  const rules = compileRules(opts.queryKeys || DEFAULT_QUERY_KEYS);
  const invalidate = opts.invalidate || noop;
  const onEvent = opts.onEvent || noop;
  const onReset = opts.onReset || noop;
  const onStatus = opts.onStatus || noop;
  const onError = opts.onError || noop;
  const minDelay = opts.minDelay || 1000;
  const maxDelay = opts.maxDelay || 10000;

  let source = null; // the open connection: { close() }
  let timer = null;
  let failures = 0; // failed attempts since the last "connected"
  let stopped = false;
  let lastPosition = null;
  let sseOpened = false; // an EventSource of this client ever opened
  let sseFailures = 0; // SSE attempts in a row that failed before opening

  const handle = {
    status: "connecting",
    lastEventId: opts.lastEventId == null ? null : String(opts.lastEventId),
    transport:
      mode === "websocket" || (mode === "auto" && typeof EventSource === "undefined")
        ? "websocket"
        : "sse",
    retry: null, // the server's latest retry, in ms
    close() {
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
    return resolve(opts.token).then((token) =>
      fetch(`${base}/api/events/tickets`, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}` },
        credentials: "same-origin",
      }).then((response) => {
        if (response.ok) return response.json().then((body) => body.ticket);
        return response.text().then((text) => {
          throw refusal(response.status, text.slice(0, 200));
        });
      })
    );
  }

  function streamUrl(streamPath, ticketValue) {
    const query = [`ticket=${encodeURIComponent(ticketValue)}`];
    if (types) query.push(`types=${encodeURIComponent(types)}`);
    if (handle.lastEventId) query.push(`lastEventId=${encodeURIComponent(handle.lastEventId)}`);
    return `${base}${streamPath}?${query.join("&")}`;
  }

  function open() {
    timer = null;
    if (stopped) return;
    setStatus("connecting", { transport: handle.transport, attempt: failures });
    ticket().then(
      (value) => {
        if (stopped) return;
        if (handle.transport === "websocket") openWebSocket(value);
        else openEventSource(value);
      },
      (error) => {
        onError(error);
        if (error && (error.status === 401 || error.status === 403)) {
          stop({ reason: "unauthorized", error });
        } else {
          retry({ reason: "ticket_failed", error });
        }
      }
    );
  }

  function openEventSource(ticketValue) {
    let opened = false;
    let events;
    try {
      events = new EventSource(streamUrl(path, ticketValue));
    } catch (error) {
      onError(error);
      fallBack();
      return;
    }
    events.onopen = () => {
      opened = true;
      sseOpened = true;
      sseFailures = 0;
    };
    events.onmessage = (message) => receive(message.data, message.lastEventId);
    events.onerror = () => {
      if (!opened && !sseOpened && ++sseFailures >= SSE_FAILURES_BEFORE_WEBSOCKET) fallBack();
      else retry({ reason: "connection_lost" });
    };
    source = {
      close() {
        events.onopen = events.onmessage = events.onerror = null;
        events.close();
      },
    };
  }

  /** SSE cannot work here: the WebSocket from now on (in "auto" mode). */
  function fallBack() {
    if (mode !== "auto") {
      retry({ reason: "connection_lost" });
      return;
    }
    handle.transport = "websocket";
    retry({ reason: "sse_unavailable", transport: "websocket" });
  }

  function openWebSocket(ticketValue) {
    let socket;
    try {
      socket = new WebSocket(webSocketUrl(streamUrl(wsPath, ticketValue)));
    } catch (error) {
      onError(error);
      retry({ reason: "connection_lost" });
      return;
    }
    socket.onmessage = (message) => {
      const data = parse(message.data);
      if (data) receiveData(data, wsId(data));
    };
    socket.onclose = (closing) => {
      const code = closing.code;
      if (code === WS_REFUSED) stop({ reason: "refused", code });
      // A server going away (its reconnect message may not have made it
      // first): a planned reconnect, after the server's retry, jittered.
      else if (WS_GOING_AWAY.has(code)) retry({ reason: "shutdown", code }, jitter(floorDelay()));
      else retry({ reason: "connection_lost", code });
    };
    source = {
      close() {
        socket.onmessage = socket.onclose = null;
        socket.close();
      },
    };
  }

  /** What an SSE message's `id:` says, for a WebSocket message (JSON only). */
  function wsId(data) {
    if (!isControl(data)) return data.position == null ? "" : String(data.position);
    if (data.type === "connected") return String(data.position);
    return data.lastEventId == null ? "" : String(data.lastEventId);
  }

  function dropSource() {
    if (source) {
      source.close();
      source = null;
    }
  }

  /** The wait after the `failures`-th failure in a row: the server's retry
   *  (minDelay until it said one) doubled per failure, capped at maxDelay,
   *  then up to 50% more (so capped clients still spread out), never below
   *  the server's retry. */
  function failureDelay() {
    const floor = floorDelay();
    return Math.max(floor, jitter(Math.min(maxDelay, floor * 2 ** failures)));
  }

  /** The shortest wait: the server's retry, or minDelay until it said one. */
  function floorDelay() {
    return handle.retry == null ? minDelay : handle.retry;
  }

  function retry(detail, delay) {
    dropSource();
    if (stopped || timer) return;
    // A planned reconnect (the delay given) is no failure: it does not grow the backoff.
    const wait = delay == null ? failureDelay() : delay;
    if (delay == null) failures += 1;
    setStatus("reconnecting", { delay: Math.round(wait), transport: handle.transport, ...detail });
    timer = setTimeout(open, wait);
  }

  function stop(detail) {
    stopped = true;
    if (timer) clearTimeout(timer);
    timer = null;
    dropSource();
    setStatus("closed", detail);
  }

  function parse(text) {
    try {
      const data = JSON.parse(text);
      return data && typeof data === "object" ? data : null;
    } catch (error) {
      onError(error);
      return null;
    }
  }

  function receive(text, id) {
    const data = parse(text);
    if (data) receiveData(data, id);
  }

  function receiveData(data, id) {
    if (isControl(data)) {
      control(data, id);
      return;
    }
    const position = /^\d+$/.test(id) ? Number(id) : null;
    if (position !== null) {
      if (lastPosition !== null && position <= lastPosition) return; // seen already
      moveTo(id);
    }
    onEvent(data);
    const keys = matchKeys(rules, data);
    if (keys.length) invalidate(keys, data);
  }

  function control(data, id) {
    if (typeof data.retry === "number" && data.retry >= 0) handle.retry = data.retry;
    if (data.type === "connected") {
      failures = 0;
      if (handle.lastEventId === null) moveTo(id);
      setStatus("connected", { transport: handle.transport, ...data });
    } else if (data.type === "reset") {
      moveTo(id);
      onReset(data);
      // A reset naming lastEventId ends a slow connection: the reconnect
      // resumes there and loses nothing. Any other reset skipped events.
      const all = "lastEventId" in data ? [] : matchKeys(rules, null);
      if (all.length) invalidate(all, data);
    } else if (data.type === "reconnect") {
      // token_expired: at once, with a new ticket; a shutdown: the
      // server's own jittered retry (or ours, jittered, if it sent none).
      const planned = typeof data.retry === "number" ? data.retry : jitter(floorDelay());
      retry(data, data.reason === "token_expired" ? 0 : planned);
    } else if (data.type === "closed") {
      stop(data);
    }
  }

  setStatus("connecting", { transport: handle.transport, attempt: 0 });
  open();
  return handle;
}

/** Invalidate each key in `queryClient`: a string key is the one-element
 *  query key [key], an array key is the query key itself. */
function invalidateKeys(queryClient, keys) {
  for (const key of keys) {
    queryClient.invalidateQueries({ queryKey: Array.isArray(key) ? key : [key] });
  }
}

/**
 * A React hook: the live stream while the component is mounted, turning
 * events into React Query invalidations. The app passes its own React and
 * QueryClient (no bare `import "react"` here, so it works without a
 * bundler or import map):
 *
 *   const status = useTidings({ react: React, queryClient: useQueryClient(),
 *                               token, queryKeys: MAP });
 *
 * Options: those of connect(), plus `react` (an object with useEffect,
 * useRef, useState: React itself), `queryClient` (React Query's
 * QueryClient) and `enabled` (default true). Without an `invalidate`
 * option, each event's keys are invalidated in `queryClient`; a reset that
 * skipped events invalidates every query. It reconnects when url, path,
 * wsPath, transport, types, a string token, queryClient or enabled
 * change; the callbacks may change on every render. Returns the status:
 * idle (not enabled) | connecting | connected | reconnecting | closed.
 */
export function useTidings(options) {
  const { useEffect, useRef, useState } = options.react;
  const { queryClient, enabled = true } = options;
  const latest = useRef(options);
  latest.current = options;
  const [status, setStatus] = useState(enabled ? "connecting" : "idle");
  const token = typeof options.token === "function" ? null : options.token;
  const types = Array.isArray(options.types) ? options.types.join(",") : options.types || "";
  const { url, path, wsPath, transport } = options;

  useEffect(() => {
    if (!enabled) {
      setStatus("idle");
      return undefined;
    }
    let active = true; // status changes after unmount are not reported
    const now = latest.current;
    const live = connect({
      ...now,
      token: () => resolve(latest.current.token),
      getTicket: now.getTicket ? () => latest.current.getTicket() : undefined,
      invalidate: (keys, cause) => {
        if (latest.current.invalidate) latest.current.invalidate(keys, cause);
        else if (!isControl(cause)) invalidateKeys(queryClient, keys);
      },
      onEvent: (event) => latest.current.onEvent && latest.current.onEvent(event),
      onReset: (message) => {
        if (!latest.current.invalidate && !("lastEventId" in message)) {
          queryClient.invalidateQueries(); // events were skipped: only a full refetch is right
        }
        if (latest.current.onReset) latest.current.onReset(message);
      },
      onStatus: (value, detail) => {
        if (!active) return;
        setStatus(value);
        if (latest.current.onStatus) latest.current.onStatus(value, detail);
      },
      onError: (error) => latest.current.onError && latest.current.onError(error),
    });
    return () => {
      active = false;
      live.close();
    };
  }, [queryClient, enabled, url, path, wsPath, transport, types, token]);
  return status;
}
