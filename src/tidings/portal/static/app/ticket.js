// One ticket: its state on the way through the state machine, the actions
// the viewer's role may take now, and its timeline.
import {
  html,
  useEffect,
  useMutation,
  useQuery,
  useQueryClient,
  useRef,
  useState,
} from "../vendor/portal-vendor.js";
import { ApiError, api, newIdempotencyKey } from "./api.js";
import { Badge, Card, Empty, ErrorBox, Loading, PageHead } from "./components.js";
import { TICKET_STATES, formatDateTime, formatMoney, priorityLabel, stateLabel } from "./format.js";
import { addressOf, quoteOf, useAddresses } from "./tickets.js";

// The machine's terminal states: nothing moves out of them.
const TERMINAL = new Set(["AUDITED", "CANCELLED"]);

/** What `user` may do to `ticket` now, as the portal's rules say
 *  (tidings/portal/tickets.py; the server decides again and a refusal
 *  shows as an error). Each: [action, label, style]. */
export function actionsFor(user, ticket) {
  const { status } = ticket;
  const actions = [];
  if (user.role === "LANDLORD") {
    if (status === "OPEN") actions.push(["triage", "Triage", "primary"]);
    if (status === "QUOTED") actions.push(["approve", "Approve quote", "primary"]);
    if (status === "APPROVED") actions.push(["start", "Start work", "secondary"]);
    if (status === "IN_PROGRESS") actions.push(["complete", "Mark complete", "secondary"]);
    if (status === "COMPLETED") actions.push(["audit", "Mark audited", "primary"]);
  } else if (user.role === "CONTRACTOR") {
    // A ticket assigned to another contractor is theirs alone.
    if (ticket.contractorId && ticket.contractorId !== user.id) return actions;
    if (status === "TRIAGED") actions.push(["quote", "Submit quote", "primary"]);
    if (status === "APPROVED") actions.push(["start", "Start work", "primary"]);
    if (status === "IN_PROGRESS") actions.push(["complete", "Mark complete", "primary"]);
  }
  const mayCancel =
    user.role === "LANDLORD" || (user.role === "TENANT" && status === "OPEN" && ticket.renterId === user.id);
  if (mayCancel && !TERMINAL.has(status)) actions.push(["cancel", "Cancel ticket", "danger"]);
  return actions;
}

const MOVES = { triage: "TRIAGED", start: "IN_PROGRESS", complete: "COMPLETED", audit: "AUDITED", cancel: "CANCELLED" };

function ticketPath(id, tail = "") {
  return `/api/tickets/${encodeURIComponent(id)}${tail}`;
}

function Progress({ status }) {
  const at = TICKET_STATES.indexOf(status);
  return html`<ol class=${status === "CANCELLED" ? "progress progress-cancelled" : "progress"}>
    ${TICKET_STATES.map((state, index) => html`<li key=${state}
      class=${index < at ? "step step-done" : index === at ? "step step-current" : "step"}>
      <span class="step-dot"></span><span class="step-label">${stateLabel(state)}</span></li>`)}
  </ol>`;
}

function QuoteForm({ onSubmit, pending }) {
  const [amount, setAmount] = useState("");
  const [notes, setNotes] = useState("");
  const submit = (event) => {
    event.preventDefault();
    onSubmit({ amount: Number(amount), notes: notes.trim() });
  };
  return html`<form class="form quote-form" onSubmit=${submit}>
    <div class="form-row">
      <label class="field"><span class="field-label">Amount (£)</span>
        <input name="amount" type="number" min="0.01" step="0.01" required value=${amount}
          onInput=${(e) => setAmount(e.target.value)} placeholder="150.00" /></label>
      <label class="field field-wide"><span class="field-label">Notes</span>
        <input name="notes" maxlength="2000" value=${notes} onInput=${(e) => setNotes(e.target.value)}
          placeholder="What the work involves" /></label>
    </div>
    <div class="form-actions">
      <button type="submit" class="button button-primary" disabled=${pending}>
        ${pending ? "Sending…" : "Submit quote"}</button>
    </div>
  </form>`;
}

/** The viewer's actions. One request at a time: a click while one is out
 *  does nothing (a ref, set before React re-renders the disabled button,
 *  so even a double-click's second click is dropped). Approve sends one
 *  Idempotency-Key per intent, kept for a retry after a network failure,
 *  so the server, too, never approves twice. */
function Actions({ ticket, user }) {
  const queryClient = useQueryClient();
  const approveKey = useRef(null);
  const inFlight = useRef(false);
  const refresh = (answer) => {
    if (answer && answer.id) queryClient.setQueryData(["ticket", ticket.id], answer);
    queryClient.invalidateQueries({ queryKey: ["ticket", ticket.id] });
    queryClient.invalidateQueries({ queryKey: ["timeline", ticket.id] });
  };
  const act = useMutation({
    mutationFn: ({ action, body }) => {
      if (action === "quote") return api(ticketPath(ticket.id, "/quote"), { method: "POST", body });
      if (action === "approve") {
        approveKey.current = approveKey.current || newIdempotencyKey();
        return api(ticketPath(ticket.id, "/approve"), {
          method: "POST",
          body: {},
          headers: { "Idempotency-Key": approveKey.current },
        });
      }
      return api(ticketPath(ticket.id, "/status"), { method: "PATCH", body: { to: MOVES[action] } });
    },
    onSuccess: refresh,
    onSettled: () => {
      inFlight.current = false;
    },
    onError: (error, { action }) => {
      if (action === "approve" && error instanceof ApiError && error.status) approveKey.current = null;
    },
  });
  const actions = actionsFor(user, ticket);
  if (actions.length === 0) return null;
  const run = (action, body) => {
    if (inFlight.current) return;
    if (action === "cancel" && !confirm("Cancel this ticket? This cannot be undone.")) return;
    inFlight.current = true;
    act.mutate({ action, body });
  };
  const buttons = actions.filter(([action]) => action !== "quote");
  return html`<${Card} title="Your next step" className="actions-card">
    ${actions.some(([action]) => action === "quote")
      ? html`<${QuoteForm} pending=${act.isPending} onSubmit=${(body) => run("quote", body)} />`
      : null}
    ${buttons.length
      ? html`<div class="action-row">${buttons.map(([action, label, style]) => html`<button key=${action}
          type="button" class=${`button button-${style}`} data-action=${action}
          disabled=${act.isPending} onClick=${() => run(action)}>
          ${act.isPending && act.variables && act.variables.action === action ? "Working…" : label}
        </button>`)}</div>`
      : null}
    <${ErrorBox} error=${act.error} />
  </${Card}>`;
}

function parseDetails(details) {
  if (!details) return {};
  if (typeof details === "object") return details;
  try {
    return JSON.parse(details) || {};
  } catch {
    return { text: String(details) };
  }
}

const TIMELINE_TEXT = {
  created: (d) => `Reported${d.priority ? ` · ${priorityLabel(d.priority)} priority` : ""}`,
  status_changed: (d) => `Status changed from ${stateLabel(d.from)} to ${stateLabel(d.to)}`,
  quote_submitted: (d) => `Quote submitted: ${formatMoney(d.amount)}${d.notes ? ` — ${d.notes}` : ""}`,
  approved: (d) => `Quote approved${d.amount != null ? ` (${formatMoney(d.amount)})` : ""}`,
  completed: () => "Work completed",
  cancelled: () => "Ticket cancelled",
};

/** Who did it, as the viewer knows them: you, or the ticket's renter or
 *  contractor, or the landlord's staff. */
function actorLabel(actorId, ticket, me) {
  if (!actorId) return "System";
  if (actorId === me.id) return "You";
  if (actorId === ticket.renterId) return "Renter";
  if (actorId === ticket.contractorId) return "Contractor";
  return "Landlord";
}

function Timeline({ ticket, me }) {
  const ticketId = ticket.id;
  const query = useQuery({
    queryKey: ["timeline", ticketId],
    queryFn: () => api(ticketPath(ticketId, "/timeline")),
  });
  if (query.isPending) return html`<${Loading} />`;
  if (query.isError) return html`<${ErrorBox} error=${query.error} />`;
  const rows = Array.isArray(query.data) ? query.data : [];
  if (rows.length === 0) return html`<p class="muted">No history yet.</p>`;
  return html`<ol class="timeline">
    ${rows.map((row) => {
      const details = parseDetails(row.details);
      const text = (TIMELINE_TEXT[row.eventType] || (() => row.eventType.replace(/_/g, " ")))(details);
      const who = row.actorName || actorLabel(row.actorId, ticket, me);
      return html`<li key=${row.id} class=${`tl tl-${row.eventType}`} data-event-type=${row.eventType}>
        <span class="tl-dot" aria-hidden="true"></span>
        <div class="tl-body"><span class="tl-text">${text}</span>
          <span class="tl-meta">${who} · ${formatDateTime(row.createdAt)}</span></div>
      </li>`;
    })}
  </ol>`;
}

export function TicketPage({ user }) {
  const id = decodeURIComponent(location.pathname.split("/")[2] || "");
  const query = useQuery({ queryKey: ["ticket", id], queryFn: () => api(ticketPath(id)), retry: false });
  const addresses = useAddresses(user);
  const title = query.data && query.data.title;
  useEffect(() => {
    if (title) document.title = `${title} · Tidings Homes`;
  }, [title]);
  const back = user.role === "LANDLORD" ? ["/maintenance", "Maintenance"]
    : user.role === "CONTRACTOR" ? ["/jobs", "Jobs"]
      : user.role === "OPS" ? ["/ops", "Overview"] : ["/tickets", "My tickets"];
  const crumb = html`<a class="crumb" href=${back[0]}>← ${back[1]}</a>`;
  if (query.isPending) return html`${crumb}<${Loading} />`;
  if (query.isError) {
    const missing = query.error.status === 404;
    return html`${crumb}<${Card}><${Empty} title=${missing ? "Ticket not found" : "Could not load the ticket"}
      action=${html`<a class="button" href=${back[0]}>Back to ${back[1]}</a>`}>
      ${missing ? "It does not exist, or it belongs to another organisation." : query.error.message}</${Empty}></${Card}>`;
  }
  const ticket = query.data;
  const quote = quoteOf(ticket);
  return html`${crumb}
    <${PageHead} title=${ticket.title}
      subtitle=${html`<${Badge} state=${ticket.status} /> <span class="muted">Reported ${formatDateTime(ticket.createdAt)}</span>`} />
    <${Progress} status=${ticket.status} />
    <div class="grid-2">
      <div class="stack">
        <${Card} title="Details">
          <dl class="facts">
            <dt>Property</dt><dd>${addressOf(ticket, addresses)}</dd>
            <dt>Category</dt><dd class="cap">${ticket.category || "—"}</dd>
            <dt>Priority</dt><dd><span class=${`priority priority-${String(ticket.priority).toLowerCase()}`}>${priorityLabel(ticket.priority)}</span></dd>
            <dt>Quote</dt><dd data-quote>${quote ? html`<strong>${formatMoney(quote.amount)}</strong>${quote.notes ? html` · ${quote.notes}` : null}` : "Not quoted yet"}</dd>
          </dl>
          ${ticket.description ? html`<p class="description">${ticket.description}</p>` : null}
        </${Card}>
        <${Actions} ticket=${ticket} user=${user} />
      </div>
      <${Card} title="Timeline"><${Timeline} ticket=${ticket} me=${user} /></${Card}>
    </div>`;
}
