// The portal's shared pieces: the top bar with the notification bell, page
// frame, cards, badges, tables' empty states, loading and error boxes.
import {
  html,
  useEffect,
  useMutation,
  useQuery,
  useQueryClient,
  useRef,
  useState,
} from "../vendor/portal-vendor.js";
import { api, signOut } from "./api.js";
import { formatAgo, initials, roleLabel, stateLabel } from "./format.js";

export const BRAND = "Tidings Homes";

/** Where each role works; the first entry is its landing page. */
export const NAV = {
  TENANT: [
    ["/tickets", "My tickets"],
    ["/tickets/new", "Report a problem"],
    ["/invoices", "Invoices"],
  ],
  LANDLORD: [
    ["/maintenance", "Maintenance"],
    ["/invoices", "Invoices"],
  ],
  CONTRACTOR: [["/jobs", "Jobs"]],
  OPS: [["/ops", "Overview"]],
};

export function landingPage(role) {
  const items = NAV[role];
  return items ? items[0][0] : "/login";
}

export function Badge({ state, kind = "state" }) {
  return html`<span class=${`badge badge-${kind} badge-${String(state).toLowerCase()}`}
    data-status=${state}>${stateLabel(state)}</span>`;
}

export function Card({ title, actions, children, className = "" }) {
  return html`<section class=${`card ${className}`}>
    ${title || actions
      ? html`<header class="card-head">
          ${title ? html`<h2>${title}</h2>` : null}
          ${actions ? html`<div class="card-actions">${actions}</div>` : null}
        </header>`
      : null}
    <div class="card-body">${children}</div>
  </section>`;
}

export function Empty({ title, children, action }) {
  return html`<div class="empty" role="status">
    <div class="empty-icon" aria-hidden="true">✦</div>
    <p class="empty-title">${title}</p>
    ${children ? html`<p class="empty-text">${children}</p>` : null}
    ${action || null}
  </div>`;
}

export function Loading({ label = "Loading…" }) {
  return html`<div class="loading" role="status"><span class="spinner"></span>${label}</div>`;
}

export function ErrorBox({ error }) {
  if (!error) return null;
  return html`<div class="alert alert-error" role="alert">${error.message || String(error)}</div>`;
}

/** A query's three states in one place: loading, error, or the content. */
export function QueryView({ query, children }) {
  if (query.isPending) return html`<${Loading} />`;
  if (query.isError) return html`<${ErrorBox} error=${query.error} />`;
  return children(query.data);
}

function Bell() {
  const queryClient = useQueryClient();
  const [open, setOpen] = useState(false);
  const box = useRef(null);
  const count = useQuery({
    queryKey: ["unread-count"],
    queryFn: () => api("/api/notifications/unread-count"),
  });
  const list = useQuery({
    queryKey: ["notifications"],
    queryFn: () => api("/api/notifications?limit=20"),
    enabled: open,
  });
  const markRead = useMutation({
    mutationFn: (ids) =>
      ids ? api("/api/notifications/read", { method: "POST", body: { ids } })
        : api("/api/notifications/read-all", { method: "POST" }),
    onSuccess: (answer) => {
      queryClient.setQueryData(["unread-count"], { count: answer.count });
      queryClient.invalidateQueries({ queryKey: ["notifications"] });
    },
  });
  useEffect(() => {
    if (!open) return undefined;
    const close = (event) => {
      if (box.current && !box.current.contains(event.target)) setOpen(false);
    };
    const escape = (event) => event.key === "Escape" && setOpen(false);
    document.addEventListener("mousedown", close);
    document.addEventListener("keydown", escape);
    return () => {
      document.removeEventListener("mousedown", close);
      document.removeEventListener("keydown", escape);
    };
  }, [open]);
  const unread = count.data ? count.data.count : 0;
  const items = list.data ? list.data.items : [];
  const follow = (item) => {
    if (!item.read) markRead.mutate([item.id]);
    if (item.link) location.assign(item.link);
  };
  return html`<div class="bell" ref=${box}>
    <button type="button" class="bell-button" aria-label=${`Notifications, ${unread} unread`}
      aria-expanded=${open} onClick=${() => setOpen(!open)}>
      <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
        <path fill="currentColor" d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z"/>
      </svg>
      <span class=${unread ? "bell-badge" : "bell-badge bell-badge-zero"} data-count=${unread}>
        ${unread > 99 ? "99+" : unread}</span>
    </button>
    ${open
      ? html`<div class="bell-panel" role="dialog" aria-label="Notifications">
          <header class="bell-head">
            <strong>Notifications</strong>
            <button type="button" class="link-button" disabled=${!unread || markRead.isPending}
              onClick=${() => markRead.mutate(null)}>Mark all as read</button>
          </header>
          ${list.isPending
            ? html`<${Loading} />`
            : items.length === 0
              ? html`<p class="bell-empty">You are all caught up. New activity on your tickets and invoices shows up here.</p>`
              : html`<ul class="bell-list">
                  ${items.map(
                    (item) => html`<li key=${item.id} class=${item.read ? "note" : "note note-unread"}>
                      <button type="button" class="note-button" onClick=${() => follow(item)}>
                        <span class="note-title">${item.title}</span>
                        ${item.body ? html`<span class="note-body">${item.body}</span>` : null}
                        <span class="note-time">${formatAgo(item.createdAt)}</span>
                      </button>
                      ${item.read
                        ? null
                        : html`<button type="button" class="note-read" title="Mark as read"
                            aria-label="Mark as read" onClick=${() => markRead.mutate([item.id])}>●</button>`}
                    </li>`,
                  )}
                </ul>`}
        </div>`
      : null}
  </div>`;
}

function LiveDot({ status }) {
  const text = status === "connected" ? "Live" : status === "closed" ? "Offline" : "Connecting…";
  return html`<span class=${`live live-${status}`} title="Live updates">${text}</span>`;
}

export function TopBar({ user, live }) {
  const here = location.pathname;
  const nav = NAV[user.role] || [];
  return html`<header class="topbar">
    <div class="topbar-inner">
      <a class="brand" href=${landingPage(user.role)}>
        <span class="brand-mark" aria-hidden="true">⌂</span>${BRAND}
      </a>
      <nav class="nav">
        ${nav.map(
          ([path, label]) => html`<a key=${path} href=${path}
            class=${here === path ? "nav-link nav-current" : "nav-link"}
            aria-current=${here === path ? "page" : undefined}>${label}</a>`,
        )}
      </nav>
      <div class="topbar-right">
        <${LiveDot} status=${live} />
        <${Bell} />
        <div class="who">
          <span class="avatar" aria-hidden="true">${initials(user.name)}</span>
          <span class="who-text">
            <span class="who-name">${user.name}</span>
            <span class="who-role" data-role=${user.role}>${roleLabel(user.role)}</span>
          </span>
        </div>
        <button type="button" class="button button-ghost" onClick=${signOut}>Sign out</button>
      </div>
    </div>
  </header>`;
}

export function PageHead({ title, subtitle, actions }) {
  return html`<div class="page-head">
    <div>
      <h1>${title}</h1>
      ${subtitle ? html`<p class="subtitle">${subtitle}</p>` : null}
    </div>
    ${actions ? html`<div class="page-actions">${actions}</div>` : null}
  </div>`;
}

/** A stat tile: a number and what it counts. */
export function Stat({ label, value, tone = "" }) {
  return html`<div class=${`stat ${tone ? `stat-${tone}` : ""}`}>
    <span class="stat-value">${value}</span><span class="stat-label">${label}</span>
  </div>`;
}
