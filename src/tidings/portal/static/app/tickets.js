// Ticket lists: the renter's tickets and new-ticket form, the landlord's
// maintenance board, the contractor's jobs and the operations overview.
import { html, useMutation, useQuery, useQueryClient, useState } from "../vendor/portal-vendor.js";
import { api } from "./api.js";
import { Badge, Card, Empty, ErrorBox, PageHead, QueryView, Stat } from "./components.js";
import { formatAgo, formatDateTime, formatMoney, priorityLabel } from "./format.js";

const OPEN_STATES = new Set(["OPEN", "TRIAGED", "QUOTED", "APPROVED", "IN_PROGRESS"]);
// The choices besides the server's defaults (category "general", priority MEDIUM).
export const CATEGORIES = ["plumbing", "electrical", "heating", "appliance", "structural", "pests"];
export const PRIORITIES = ["LOW", "HIGH", "URGENT"];

function listOf(data) {
  return Array.isArray(data) ? data : (data && data.items) || [];
}

/** propertyId -> address, from the caller's tenancies (renters and
 *  landlords have some; other roles see the property's id). */
export function useAddresses(user) {
  const query = useQuery({
    queryKey: ["tenancies"],
    queryFn: () => api("/api/tenancies").then(listOf),
    enabled: user.role === "TENANT" || user.role === "LANDLORD",
  });
  const addresses = {};
  for (const tenancy of query.data || []) addresses[tenancy.propertyId] = tenancy.address;
  return addresses;
}

export function addressOf(ticket, addresses) {
  return ticket.propertyAddress || addresses[ticket.propertyId] || ticket.propertyId;
}

export function quoteOf(ticket) {
  const quote = ticket.quote || {};
  const amount = quote.amount ?? ticket.quoteAmount;
  return amount == null ? null : { amount, notes: quote.notes ?? ticket.quoteNotes ?? "" };
}

function newestFirst(tickets) {
  return [...tickets].sort((a, b) => String(b.createdAt).localeCompare(String(a.createdAt)));
}

/** The table every ticket list uses; `columns` adds optional ones. */
function TicketTable({ tickets, columns = [], addresses = {} }) {
  return html`<div class="table-wrap"><table class="table tickets">
    <thead><tr>
      <th>Ticket</th>
      ${columns.includes("organisation") ? html`<th>Organisation</th>` : null}
      <th>Category</th><th>Priority</th><th>Status</th>
      ${columns.includes("quote") ? html`<th class="num">Quote</th>` : null}
      <th>Reported</th>
    </tr></thead>
    <tbody>
      ${tickets.map(
        (ticket) => html`<tr key=${ticket.id} data-ticket-id=${ticket.id}>
          <td><a class="row-title" href=${`/tickets/${encodeURIComponent(ticket.id)}`}>${ticket.title}</a>
            <span class="row-sub">${addressOf(ticket, addresses)}</span></td>
          ${columns.includes("organisation")
            ? html`<td>${ticket.organisationName || ticket.landlordId}</td>`
            : null}
          <td class="cap">${ticket.category}</td>
          <td><span class=${`priority priority-${String(ticket.priority).toLowerCase()}`}>
            ${priorityLabel(ticket.priority)}</span></td>
          <td><${Badge} state=${ticket.status} /></td>
          ${columns.includes("quote")
            ? html`<td class="num">${quoteOf(ticket) ? formatMoney(quoteOf(ticket).amount) : "—"}</td>`
            : null}
          <td title=${formatDateTime(ticket.createdAt)}>${formatAgo(ticket.createdAt)}</td>
        </tr>`,
      )}
    </tbody>
  </table></div>`;
}

function useTickets(key) {
  return useQuery({ queryKey: [key], queryFn: () => api("/api/tickets").then(listOf) });
}

function NewTicketButton() {
  return html`<a class="button button-primary" href="/tickets/new">Report a problem</a>`;
}

export function RenterTickets({ user }) {
  const query = useTickets("tickets");
  const addresses = useAddresses(user);
  return html`<${PageHead} title="My tickets"
      subtitle="Problems you reported and where they stand. Updates arrive as they happen."
      actions=${html`<${NewTicketButton} />`} />
    <${Card}>
      <${QueryView} query=${query}>${(tickets) =>
        tickets.length === 0
          ? html`<${Empty} title="No tickets yet"
              action=${html`<${NewTicketButton} />`}>
              Something broken or not working? Report it and your landlord sees it at once.</${Empty}>`
          : html`<${TicketTable} tickets=${newestFirst(tickets)} columns=${["quote"]} addresses=${addresses} />`}</${QueryView}>
    </${Card}>`;
}

function Field({ label, hint, children }) {
  return html`<label class="field"><span class="field-label">${label}</span>${children}
    ${hint ? html`<span class="field-hint">${hint}</span>` : null}</label>`;
}

export function NewTicket() {
  const queryClient = useQueryClient();
  const [form, setForm] = useState({ title: "", category: "", priority: "", description: "" });
  const create = useMutation({
    mutationFn: (body) => api("/api/tickets", { method: "POST", body }),
    onSuccess: (ticket) => {
      queryClient.invalidateQueries({ queryKey: ["tickets"] });
      location.assign(`/tickets/${encodeURIComponent(ticket.id)}`);
    },
  });
  const set = (name) => (event) => setForm({ ...form, [name]: event.target.value });
  const submit = (event) => {
    event.preventDefault();
    const body = { title: form.title.trim() };
    for (const name of ["category", "priority", "description"]) {
      if (form[name].trim()) body[name] = form[name].trim();
    }
    create.mutate(body);
  };
  return html`<${PageHead} title="Report a problem"
      subtitle="Tell your landlord what needs fixing. Only a short title is required." />
    <${Card} className="narrow">
      <form class="form" onSubmit=${submit}>
        <${Field} label="What is wrong?">
          <input name="title" required maxlength="200" autocomplete="off" value=${form.title}
            onInput=${set("title")} placeholder="e.g. Leaking tap in the kitchen" />
        </${Field}>
        <div class="form-row">
          <${Field} label="Category">
            <select name="category" value=${form.category} onChange=${set("category")}>
              <option value="">General</option>
              ${CATEGORIES.map((c) => html`<option key=${c} value=${c}>${c.charAt(0).toUpperCase() + c.slice(1)}</option>`)}
            </select>
          </${Field}>
          <${Field} label="Priority">
            <select name="priority" value=${form.priority} onChange=${set("priority")}>
              <option value="">Medium</option>
              ${PRIORITIES.map((p) => html`<option key=${p} value=${p}>${priorityLabel(p)}</option>`)}
            </select>
          </${Field}>
        </div>
        <${Field} label="Details" hint="Optional: when it started, where exactly, access times.">
          <textarea name="description" rows="4" maxlength="5000" value=${form.description}
            onInput=${set("description")}></textarea>
        </${Field}>
        <${ErrorBox} error=${create.error} />
        <div class="form-actions">
          <a class="button button-ghost" href="/tickets">Cancel</a>
          <button type="submit" class="button button-primary" disabled=${create.isPending}>
            ${create.isPending ? "Sending…" : "Report problem"}</button>
        </div>
      </form>
    </${Card}>`;
}

function countBy(tickets, states) {
  return tickets.filter((t) => states.includes(t.status)).length;
}

export function Maintenance({ user }) {
  const query = useTickets("tickets");
  const addresses = useAddresses(user);
  return html`<${PageHead} title="Maintenance"
      subtitle="Every request from your renters, live: new ones appear here as they are reported." />
    <${QueryView} query=${query}>${(tickets) => html`
      <div class="stats">
        <${Stat} label="New" value=${countBy(tickets, ["OPEN"])} tone="blue" />
        <${Stat} label="Awaiting your approval" value=${countBy(tickets, ["QUOTED"])} tone="amber" />
        <${Stat} label="In progress" value=${countBy(tickets, ["TRIAGED", "APPROVED", "IN_PROGRESS"])} tone="indigo" />
        <${Stat} label="Done" value=${countBy(tickets, ["COMPLETED", "AUDITED"])} tone="green" />
      </div>
      <${Card} title="Requests">
        ${tickets.length === 0
          ? html`<${Empty} title="No maintenance requests">
              When a renter reports a problem it shows up here at once, with no reload.</${Empty}>`
          : html`<${TicketTable} tickets=${newestFirst(tickets)} columns=${["quote"]} addresses=${addresses} />`}
      </${Card}>`}</${QueryView}>`;
}

// [title, states, stat tone]: the contractor's work by what it needs next.
const JOB_GROUPS = [
  ["Needs your quote", ["TRIAGED"], "amber"],
  ["Ready to start", ["APPROVED"], "blue"],
  ["In progress", ["IN_PROGRESS"], "indigo"],
  ["Waiting for the landlord", ["OPEN", "QUOTED"], ""],
  ["Done", ["COMPLETED", "AUDITED"], "green"],
];

export function Jobs({ user }) {
  const query = useTickets("jobs");
  const addresses = useAddresses(user);
  return html`<${PageHead} title="Jobs"
      subtitle="Work for the organisations you serve: quote triaged tickets, start approved ones." />
    <${QueryView} query=${query}>${(tickets) => {
      const groups = JOB_GROUPS.map(([title, states, tone]) => [
        title,
        tone,
        newestFirst(tickets.filter((t) => states.includes(t.status))),
      ]);
      return html`<div class="stats">
          ${groups.map(([title, tone, group]) => html`<${Stat} key=${title} label=${title} value=${group.length} tone=${tone} />`)}
        </div>
        ${tickets.length === 0
          ? html`<${Card}><${Empty} title="No jobs yet">
              Tickets appear here once a landlord has triaged them and asks for a quote.</${Empty}></${Card}>`
          : groups
              .filter(([, , group]) => group.length > 0)
              .map(([title, , group]) => html`<${Card} key=${title}
                  title=${html`${title} <span class="count">${group.length}</span>`}>
                  <${TicketTable} tickets=${group} columns=${["quote"]} addresses=${addresses} />
                </${Card}>`)}`;
    }}</${QueryView}>`;
}

export function OpsOverview() {
  const query = useTickets("ops");
  return html`<${PageHead} title="Operations overview"
      subtitle="Every organisation's maintenance at a glance, updating live." />
    <${QueryView} query=${query}>${(tickets) => {
      const organisations = new Map();
      for (const ticket of tickets) {
        const key = ticket.landlordId;
        if (!organisations.has(key)) {
          organisations.set(key, { id: key, name: ticket.organisationName || key, tickets: [] });
        }
        organisations.get(key).tickets.push(ticket);
      }
      const rows = [...organisations.values()].sort((a, b) => a.name.localeCompare(b.name));
      return html`
        <div class="stats">
          <${Stat} label="Organisations" value=${rows.length} />
          <${Stat} label="Open tickets" value=${tickets.filter((t) => OPEN_STATES.has(t.status)).length} tone="blue" />
          <${Stat} label="Awaiting approval" value=${countBy(tickets, ["QUOTED"])} tone="amber" />
          <${Stat} label="Completed" value=${countBy(tickets, ["COMPLETED", "AUDITED"])} tone="green" />
        </div>
        <${Card} title="Organisations">
          ${rows.length === 0
            ? html`<${Empty} title="No tickets in any organisation">Tickets appear here as renters report them.</${Empty}>`
            : html`<div class="table-wrap"><table class="table">
                <thead><tr><th>Organisation</th><th class="num">Open</th><th class="num">Quoted</th>
                  <th class="num">In progress</th><th class="num">Done</th><th class="num">Total</th></tr></thead>
                <tbody>${rows.map(
                  (org) => html`<tr key=${org.id} data-organisation=${org.id}>
                    <td><strong>${org.name}</strong><span class="row-sub">${org.id}</span></td>
                    <td class="num">${countBy(org.tickets, ["OPEN", "TRIAGED"])}</td>
                    <td class="num">${countBy(org.tickets, ["QUOTED"])}</td>
                    <td class="num">${countBy(org.tickets, ["APPROVED", "IN_PROGRESS"])}</td>
                    <td class="num">${countBy(org.tickets, ["COMPLETED", "AUDITED"])}</td>
                    <td class="num">${org.tickets.length}</td>
                  </tr>`,
                )}</tbody></table></div>`}
        </${Card}>
        <${Card} title="Latest tickets">
          ${tickets.length
            ? html`<${TicketTable} tickets=${newestFirst(tickets).slice(0, 25)} columns=${["organisation"]} />`
            : html`<p class="muted">Nothing reported yet.</p>`}
        </${Card}>`;
    }}</${QueryView}>`;
}

