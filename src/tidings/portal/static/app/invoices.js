// Invoices: the landlord issues one for a tenancy with lines; the renter
// sees theirs and its status (PAID arrives live, from the payment webhook).
import { html, useMutation, useQuery, useQueryClient, useState } from "../vendor/portal-vendor.js";
import { api } from "./api.js";
import { Badge, Card, Empty, ErrorBox, PageHead, QueryView, Stat } from "./components.js";
import { formatDate, formatMoney } from "./format.js";

function listOf(data) {
  return Array.isArray(data) ? data : (data && data.items) || [];
}

function isoDay(offsetDays = 0) {
  const day = new Date(Date.now() + offsetDays * 86400000);
  return day.toISOString().slice(0, 10);
}

const blankLine = () => ({ description: "", qty: "1", unitPrice: "", taxRate: "0" });

/** The total of the lines, tax included (the server computes it again). */
export function linesTotal(lines) {
  return lines.reduce((sum, line) => {
    const net = Number(line.qty || 0) * Number(line.unitPrice || 0);
    return sum + net * (1 + Number(line.taxRate || 0) / 100);
  }, 0);
}

function IssueInvoice({ tenancies }) {
  const queryClient = useQueryClient();
  const first = tenancies[0] ? tenancies[0].id : "";
  const month = new Date().toLocaleString("en-GB", { month: "long", year: "numeric" });
  const [tenancyId, setTenancyId] = useState(first);
  const [issueDate, setIssueDate] = useState(isoDay());
  const [dueDate, setDueDate] = useState(isoDay(14));
  const [lines, setLines] = useState([{ ...blankLine(), description: `Rent - ${month}` }]);
  const issue = useMutation({
    mutationFn: (body) => api("/api/finance/invoices", { method: "POST", body }),
    onSuccess: () => {
      queryClient.invalidateQueries({ queryKey: ["invoices"] });
      setLines([blankLine()]);
    },
  });
  const setLine = (index, name) => (event) =>
    setLines(lines.map((line, i) => (i === index ? { ...line, [name]: event.target.value } : line)));
  const submit = (event) => {
    event.preventDefault();
    issue.mutate({
      tenancyId: tenancyId || first,
      issueDate,
      dueDate,
      lines: lines.map((line) => ({
        description: line.description.trim(),
        qty: Number(line.qty),
        unitPrice: Number(line.unitPrice),
        taxRate: Number(line.taxRate || 0), // percent, as the API takes it
      })),
    });
  };
  if (tenancies.length === 0) {
    return html`<${Empty} title="No tenancies">Invoices are issued for a tenancy; add one first.</${Empty}>`;
  }
  return html`<form class="form invoice-form" onSubmit=${submit}>
    <div class="form-row">
      <label class="field field-wide"><span class="field-label">Tenancy</span>
        <select name="tenancyId" value=${tenancyId} onChange=${(e) => setTenancyId(e.target.value)}>
          ${tenancies.map((t) => html`<option key=${t.id} value=${t.id}>
            ${t.address || t.propertyId}${t.renterName ? ` — ${t.renterName}` : ""} (${t.id})</option>`)}
        </select></label>
      <label class="field"><span class="field-label">Issue date</span>
        <input name="issueDate" type="date" required value=${issueDate} onInput=${(e) => setIssueDate(e.target.value)} /></label>
      <label class="field"><span class="field-label">Due date</span>
        <input name="dueDate" type="date" required value=${dueDate} onInput=${(e) => setDueDate(e.target.value)} /></label>
    </div>
    <table class="table lines">
      <thead><tr><th>Description</th><th class="num">Qty</th><th class="num">Unit price (£)</th>
        <th class="num">Tax %</th><th class="num">Line total</th><th></th></tr></thead>
      <tbody>${lines.map((line, index) => html`<tr key=${index}>
        <td><input name="description" required maxlength="300" value=${line.description}
          onInput=${setLine(index, "description")} placeholder="Rent - November" /></td>
        <td class="num"><input name="qty" type="number" min="1" step="1" required value=${line.qty}
          onInput=${setLine(index, "qty")} /></td>
        <td class="num"><input name="unitPrice" type="number" min="0" step="0.01" required
          value=${line.unitPrice} onInput=${setLine(index, "unitPrice")} placeholder="1500.00" /></td>
        <td class="num"><input name="taxRate" type="number" min="0" max="100" step="0.1"
          value=${line.taxRate} onInput=${setLine(index, "taxRate")} /></td>
        <td class="num">${formatMoney(linesTotal([line]))}</td>
        <td>${lines.length > 1
          ? html`<button type="button" class="link-button" aria-label="Remove line"
              onClick=${() => setLines(lines.filter((_, i) => i !== index))}>Remove</button>`
          : null}</td>
      </tr>`)}</tbody>
    </table>
    <div class="form-actions spread">
      <button type="button" class="button button-ghost" onClick=${() => setLines([...lines, blankLine()])}>
        + Add line</button>
      <div class="total">Total <strong data-total>${formatMoney(linesTotal(lines))}</strong></div>
      <button type="submit" class="button button-primary" disabled=${issue.isPending}>
        ${issue.isPending ? "Issuing…" : "Issue invoice"}</button>
    </div>
    <${ErrorBox} error=${issue.error} />
    ${issue.isSuccess ? html`<div class="alert alert-ok" role="status">Invoice ${issue.data.number} issued and sent to the renter.</div>` : null}
  </form>`;
}

function InvoiceTable({ invoices, showTenancy, tenancies = [] }) {
  const places = Object.fromEntries(tenancies.map((t) => [t.id, t.address || t.propertyId]));
  const sorted = [...invoices].sort((a, b) => String(b.number).localeCompare(String(a.number)));
  return html`<div class="table-wrap"><table class="table">
    <thead><tr><th>Number</th>${showTenancy ? html`<th>Tenancy</th>` : null}<th>Issued</th><th>Due</th>
      <th class="num">Amount</th><th>Status</th></tr></thead>
    <tbody>${sorted.map((invoice) => html`<tr key=${invoice.id} data-invoice-id=${invoice.id}>
      <td><strong class="mono">${invoice.number}</strong>
        <span class="row-sub">${(invoice.lines || []).map((l) => l.description).join(", ")}</span></td>
      ${showTenancy ? html`<td>${places[invoice.tenancyId] || invoice.tenancyId}</td>` : null}
      <td>${formatDate(invoice.issueDate)}</td>
      <td>${formatDate(invoice.dueDate)}</td>
      <td class="num">${formatMoney(invoice.amount, invoice.currency)}</td>
      <td><${Badge} state=${invoice.status} kind="invoice" /></td>
    </tr>`)}</tbody>
  </table></div>`;
}

export function Invoices({ user }) {
  const landlord = user.role === "LANDLORD";
  const invoices = useQuery({ queryKey: ["invoices"], queryFn: () => api("/api/finance/invoices").then(listOf) });
  const tenancies = useQuery({
    queryKey: ["tenancies"],
    queryFn: () => api("/api/tenancies").then(listOf),
    enabled: landlord,
  });
  return html`<${PageHead} title="Invoices"
      subtitle=${landlord ? "Issue invoices to your renters and see payments arrive." : "Your rent and repair invoices. Paid ones turn green as soon as the payment lands."} />
    <${QueryView} query=${invoices}>${(list) => {
      const due = list.filter((i) => i.status !== "PAID");
      return html`<div class="stats">
          <${Stat} label="Outstanding" value=${formatMoney(due.reduce((s, i) => s + Number(i.amount), 0))} tone="amber" />
          <${Stat} label="Unpaid invoices" value=${due.length} />
          <${Stat} label="Paid" value=${list.length - due.length} tone="green" />
        </div>
        ${landlord
          ? html`<${Card} title="Issue an invoice">
              <${QueryView} query=${tenancies}>${(rows) => html`<${IssueInvoice} tenancies=${rows} />`}</${QueryView}>
            </${Card}>`
          : null}
        <${Card} title=${landlord ? "Issued invoices" : "Your invoices"}>
          ${list.length === 0
            ? html`<${Empty} title="No invoices yet">
                ${landlord ? "Issue one above: the renter sees it at once." : "When your landlord issues an invoice it appears here."}</${Empty}>`
            : html`<${InvoiceTable} invoices=${list} showTenancy=${landlord} tenancies=${tenancies.data || []} />`}
        </${Card}>`;
    }}</${QueryView}>`;
}
