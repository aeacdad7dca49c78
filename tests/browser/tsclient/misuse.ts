// Deliberate misuses: tsc must reject each line marked "error TSnnnn" with
// that code, and nothing else (tests/browser/test_tidings_client_types.py).
import * as React from "react";
import { QueryClient } from "@tanstack/query-core";
import { connect, useTidings, type TidingsEvent } from "tidings-client";

type TicketCreated = TidingsEvent<{ ticketId: string }, "ticket.created">;
type InvoicePaid = TidingsEvent<{ invoiceId: string }, "invoice.paid">;

connect<TicketCreated | InvoicePaid>({
  onEvent(event) {
    if (event.type === "ticket.created") {
      console.log(event.data.invoiceId); // error TS2339: a ticket has no invoiceId
    }
  },
});
connect({ types: 42 }); // error TS2322: types are a string or a list of strings
connect({ transport: "long-polling" }); // error TS2322: not a transport
connect().close(true); // error TS2554: close takes no argument
useTidings({ react: React, token: "jwt" }); // error TS2741: the hook needs the QueryClient
useTidings({ react: React, queryClient: new QueryClient(), enabled: "yes" }); // error TS2322
