// Live updates: the hub's stream through tidings.js's React hook (a fresh
// stream ticket per connection, resume, reconnect per the server's retry),
// and the invalidation map that turns each event into exactly the React
// Query keys it makes stale.
import { useEffect, useQueryClient, useRef, useState } from "../vendor/portal-vendor.js";

const REACT = { useEffect, useRef, useState }; // what useTidings needs of React

/** event-type prefix -> (event) => query keys. Keys of one ticket or invoice
 *  name its id (data.ticketId / data.invoiceId), so an event for ticket A
 *  refetches nothing on ticket B's page. */
export const INVALIDATION_MAP = Object.freeze({
  "ticket.": (event) => {
    const id = event.data && event.data.ticketId;
    const one = id ? [["ticket", id], ["timeline", id]] : [];
    return [["tickets"], ...one, ["jobs"], ["ops"]];
  },
  "invoice.": (event) => {
    const id = event.data && event.data.invoiceId;
    return [["invoices"], ...(id ? [["invoice", id]] : [])];
  },
  "notification.": () => [["notifications"], ["unread-count"]],
});

/** Open the stream while the page is shown; returns its status
 *  (connecting | connected | reconnecting | closed), also written to
 *  <body data-live> (and the count of events heard to data-live-events).
 *  The hook invalidates each event's keys, and every query after a reset
 *  that skipped events (only a full refetch is right then). */
export function useLiveUpdates(token) {
  return globalThis.Tidings.useTidings({
    react: REACT,
    queryClient: useQueryClient(),
    token,
    enabled: Boolean(token),
    queryKeys: INVALIDATION_MAP,
    onEvent: () => {
      // How many events this page heard: people see the badge move,
      // tests wait on this count.
      document.body.dataset.liveEvents = String(Number(document.body.dataset.liveEvents || 0) + 1);
    },
    onStatus: (value) => {
      document.body.dataset.live = value;
    },
  });
}
