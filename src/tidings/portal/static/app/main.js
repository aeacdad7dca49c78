// The portal's browser app: one shell per page path (data-page on #app),
// rendered here with React + React Query; live updates from the hub's
// stream invalidate exactly the queries an event concerns (live.js).
import { QueryClient, QueryClientProvider, createRoot, html } from "../vendor/portal-vendor.js";
import { session } from "./api.js";
import { Card, Empty, NAV, TopBar, landingPage } from "./components.js";
import { Invoices } from "./invoices.js";
import { useLiveUpdates } from "./live.js";
import { Login } from "./login.js";
import { TicketPage } from "./ticket.js";
import { Jobs, Maintenance, NewTicket, OpsOverview, RenterTickets } from "./tickets.js";
import { roleLabel } from "./format.js";

/** page name -> [component, roles that may open it] */
const PAGES = {
  tickets: [RenterTickets, ["TENANT"]],
  "new-ticket": [NewTicket, ["TENANT"]],
  maintenance: [Maintenance, ["LANDLORD"]],
  ticket: [TicketPage, ["TENANT", "LANDLORD", "CONTRACTOR", "OPS"]],
  invoices: [Invoices, ["TENANT", "LANDLORD"]],
  jobs: [Jobs, ["CONTRACTOR"]],
  ops: [OpsOverview, ["OPS"]],
};

function NotForRole({ user }) {
  const home = landingPage(user.role);
  const label = (NAV[user.role] || [[home, "your page"]])[0][1];
  return html`<${Card}><${Empty} title="This page is not for your role"
    action=${html`<a class="button button-primary" href=${home}>Go to ${label}</a>`}>
    You are signed in as ${user.name} (${roleLabel(user.role)}).</${Empty}></${Card}>`;
}

function Portal({ user, token, page }) {
  const live = useLiveUpdates(token);
  const [Page, roles] = PAGES[page] || [null, []];
  return html`<${TopBar} user=${user} live=${live} />
    <main class="content" data-page=${page}>
      ${Page && roles.includes(user.role)
        ? html`<${Page} user=${user} />`
        : html`<${NotForRole} user=${user} />`}
    </main>`;
}

function start() {
  const root = document.getElementById("app");
  const page = root.dataset.page;
  const current = session();
  if (page !== "login" && !current) {
    location.replace(`/login?next=${encodeURIComponent(location.pathname)}`);
    return;
  }
  if (page === "home" || (page === "login" && current && !location.search.includes("next="))) {
    location.replace(landingPage(current.user.role));
    return;
  }
  const queryClient = new QueryClient({
    defaultOptions: {
      // Fresh until an event says otherwise: the stream, not a timer or a
      // focus change, decides when to refetch.
      queries: { staleTime: Infinity, refetchOnWindowFocus: false, retry: 1 },
    },
  });
  const body =
    page === "login"
      ? html`<${Login} />`
      : html`<${Portal} user=${current.user} token=${current.accessToken} page=${page} />`;
  createRoot(root).render(html`<${QueryClientProvider} client=${queryClient}>${body}</${QueryClientProvider}>`);
}

start();
