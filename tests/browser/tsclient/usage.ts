// How an app uses tidings-client with TypeScript: this file must compile
// (tsc --noEmit, strict) against the package npm installed from its tarball.
import * as React from "react";
import { QueryClient } from "@tanstack/query-core";
import {
  DEFAULT_QUERY_KEYS,
  connect,
  keysFor,
  useTidings,
  type QueryKeyMap,
  type ResetMessage,
  type TidingsConnection,
  type TidingsEvent,
  type TidingsGlobal,
  type TidingsHookStatus,
  type TidingsStatus,
} from "tidings-client";

// The app's events: a discriminated union on `type`.
type TicketCreated = TidingsEvent<{ ticketId: string; title: string }, "ticket.created">;
type InvoicePaid = TidingsEvent<{ invoiceId: string; amountCents: number }, "invoice.paid">;
type AppEvent = TicketCreated | InvoicePaid;

const INVALIDATION: QueryKeyMap<AppEvent> = {
  "ticket.": (event) =>
    event.type === "ticket.created" ? [["tickets"], ["ticket", event.data.ticketId]] : [["tickets"]],
  "invoice.*": [["invoices"]],
};

const seen: string[] = [];
const live: TidingsConnection = connect<AppEvent>({
  url: "/hub",
  token: async () => "jwt",
  types: ["ticket.*", "invoice.*"],
  lastEventId: 41,
  transport: "auto",
  queryKeys: INVALIDATION,
  minDelay: 500,
  maxDelay: 10_000,
  onEvent(event) {
    switch (event.type) {
      case "ticket.created":
        seen.push(event.data.title);
        break;
      case "invoice.paid": {
        const cents: number = event.data.amountCents;
        seen.push(String(cents), String(event.position), event.tenantId);
        break;
      }
    }
  },
  invalidate(keys, cause) {
    if (cause.type === "reset") {
      const reset: ResetMessage = cause;
      seen.push(reset.reason);
    }
    seen.push(...keys.map((key) => JSON.stringify(key)));
  },
  onStatus(status: TidingsStatus, detail) {
    if (status === "reconnecting" && detail.delay !== undefined) seen.push(`${detail.delay} ms`);
  },
});
const where: string | null = live.lastEventId;
const retry: number | null = live.retry;
live.close();

const plain = keysFor({ type: "qms.car.updated" });
const defaults: readonly string[] | undefined = DEFAULT_QUERY_KEYS["qms."];
declare const Tidings: TidingsGlobal; // the classic script's global
Tidings.connect({ token: "jwt", onEvent: (event) => seen.push(event.type) });

// The hook with React and React Query's QueryClient, as a component uses it.
const queryClient = new QueryClient();
export function LiveBadge(props: { token: string }): string {
  const status: TidingsHookStatus = useTidings<AppEvent>({
    react: React,
    queryClient,
    token: props.token,
    queryKeys: INVALIDATION,
    onReset: () => queryClient.invalidateQueries({ queryKey: ["tickets"] }),
  });
  return status;
}

export { defaults, plain, retry, where };
