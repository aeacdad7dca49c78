// How the portal writes money, dates and states for people.
const LOCALE = "en-GB";
export const CURRENCY = "GBP";

const money = new Intl.NumberFormat(LOCALE, { style: "currency", currency: CURRENCY });
const dateTime = new Intl.DateTimeFormat(LOCALE, { dateStyle: "medium", timeStyle: "short" });
const dateOnly = new Intl.DateTimeFormat(LOCALE, { dateStyle: "medium", timeZone: "UTC" });
const relative = new Intl.RelativeTimeFormat(LOCALE, { numeric: "auto" });

/** A Date from an ISO string or epoch seconds (the hub's notifications). */
function toDate(value) {
  if (value == null || value === "") return null;
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function formatMoney(amount, currency = CURRENCY) {
  if (amount == null || amount === "") return "—";
  const value = Number(amount);
  if (currency === CURRENCY) return money.format(value);
  return new Intl.NumberFormat(LOCALE, { style: "currency", currency }).format(value);
}

export function formatDateTime(value) {
  const date = toDate(value);
  return date ? dateTime.format(date) : "—";
}

/** A calendar date ("2025-11-07" or an ISO time at midnight UTC). */
export function formatDate(value) {
  const date = toDate(value);
  return date ? dateOnly.format(date) : "—";
}

/** "5 minutes ago", "yesterday"... */
export function formatAgo(value, now = Date.now()) {
  const date = toDate(value);
  if (!date) return "";
  const seconds = Math.round((date.getTime() - now) / 1000);
  const steps = [
    [60, "second"],
    [3600, "minute", 60],
    [86400, "hour", 3600],
    [604800, "day", 86400],
    [Infinity, "week", 604800],
  ];
  for (const [limit, unit, size = 1] of steps) {
    if (Math.abs(seconds) < limit) return relative.format(Math.round(seconds / size), unit);
  }
  return dateTime.format(date);
}

export const TICKET_STATES = [
  "OPEN",
  "TRIAGED",
  "QUOTED",
  "APPROVED",
  "IN_PROGRESS",
  "COMPLETED",
  "AUDITED",
];

const STATE_LABELS = {
  OPEN: "Open",
  TRIAGED: "Triaged",
  QUOTED: "Quoted",
  APPROVED: "Approved",
  IN_PROGRESS: "In progress",
  COMPLETED: "Completed",
  AUDITED: "Audited",
  CANCELLED: "Cancelled",
  SENT: "Due",
  PAID: "Paid",
  OVERDUE: "Overdue",
  DRAFT: "Draft",
};

export function stateLabel(state) {
  return STATE_LABELS[state] || String(state || "").replace(/_/g, " ").toLowerCase();
}

const ROLE_LABELS = {
  TENANT: "Renter",
  LANDLORD: "Landlord",
  CONTRACTOR: "Contractor",
  OPS: "Operations",
};

export function roleLabel(role) {
  return ROLE_LABELS[role] || role;
}

export function priorityLabel(priority) {
  const text = String(priority || "").toLowerCase();
  return text ? text.charAt(0).toUpperCase() + text.slice(1) : "—";
}

/** The initials of a name, for avatars. */
export function initials(name) {
  return String(name || "?")
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((word) => word.charAt(0).toUpperCase())
    .join("");
}
