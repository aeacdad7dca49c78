// Live updates: the hub's stream through tidings.js (a fresh stream ticket
// per connection, resume, reconnect), and the invalidation map that turns
// each event into exactly the React Query keys it makes stale.
import { useEffect, useQueryClient, useState } from "../vendor/portal-vendor.js";

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
 *  <body data-live> (and the count of events heard to data-live-events). */
export function useLiveUpdates(token) {
  const queryClient = useQueryClient();
  const [status, setStatus] = useState("connecting");
  useEffect(() => {
    if (!token || !globalThis.Tidings) return undefined;
    const live = globalThis.Tidings.connect({
      token,
      queryKeys: INVALIDATION_MAP,
      invalidate: (keys) => {
        for (const queryKey of keys) queryClient.invalidateQueries({ queryKey });
      },
      onEvent: () => {
        // How many events this page heard: people see the badge move,
        // tests wait on this count.
        document.body.dataset.liveEvents = String(Number(document.body.dataset.liveEvents || 0) + 1);
      },
      // Events were skipped (the log moved on): only a full refetch is right.
      onReset: () => queryClient.invalidateQueries(),
      onStatus: (value) => {
        document.body.dataset.live = value;
        setStatus(value);
      },
    });
    return () => live.close();
  }, [token, queryClient]);
  return status;
}
