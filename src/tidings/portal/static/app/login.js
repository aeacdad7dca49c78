// The sign-in page: email + password, and the demo accounts to pick from.
import { html, useMutation, useState } from "../vendor/portal-vendor.js";
import { api, saveSession } from "./api.js";
import { BRAND, ErrorBox, landingPage } from "./components.js";
import { roleLabel } from "./format.js";

export const DEMO_ACCOUNTS = [
  ["tenant@example.com", "TENANT", "Renter at Northwind Lettings"],
  ["landlord@example.com", "LANDLORD", "Northwind Lettings"],
  ["contractor@example.com", "CONTRACTOR", "Works for Northwind Lettings"],
  ["ops@example.com", "OPS", "Sees every organisation"],
  ["landlord2@example.com", "LANDLORD", "Harbour Homes"],
  ["tenant2@example.com", "TENANT", "Renter at Harbour Homes"],
];
const DEMO_PASSWORD = "password123";

/** Where to go after signing in: ?next= if it is a path of this site. */
function nextPage(user) {
  const next = new URLSearchParams(location.search).get("next");
  if (next && next.startsWith("/") && !next.startsWith("//") && next !== "/login") return next;
  return landingPage(user.role);
}

export function Login() {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const login = useMutation({
    mutationFn: (body) => api("/api/auth/login", { method: "POST", body }),
    onSuccess: (answer) => {
      saveSession({ accessToken: answer.accessToken, user: answer.user });
      location.assign(nextPage(answer.user));
    },
  });
  const submit = (event) => {
    event.preventDefault();
    login.mutate({ email: email.trim(), password });
  };
  const pick = (address) => {
    setEmail(address);
    setPassword(DEMO_PASSWORD);
  };
  return html`<main class="login">
    <section class="login-card">
      <div class="login-brand"><span class="brand-mark" aria-hidden="true">⌂</span>${BRAND}</div>
      <h1>Sign in</h1>
      <p class="subtitle">Repairs, quotes and invoices between renters, landlords and contractors, live.</p>
      <form class="form" onSubmit=${submit}>
        <label class="field"><span class="field-label">Email</span>
          <input name="email" type="email" required autocomplete="username" value=${email}
            onInput=${(e) => setEmail(e.target.value)} placeholder="you@example.com" /></label>
        <label class="field"><span class="field-label">Password</span>
          <input name="password" type="password" required autocomplete="current-password"
            value=${password} onInput=${(e) => setPassword(e.target.value)} /></label>
        <${ErrorBox} error=${login.error} />
        <button type="submit" class="button button-primary button-block" disabled=${login.isPending}>
          ${login.isPending ? "Signing in…" : "Sign in"}</button>
      </form>
    </section>
    <aside class="demo-accounts">
      <h2>Demo accounts</h2>
      <p class="muted">Password <code>${DEMO_PASSWORD}</code>. Pick one to fill the form; open a second browser as another role to watch updates arrive live.</p>
      <ul>${DEMO_ACCOUNTS.map(([address, role, note]) => html`<li key=${address}>
        <button type="button" class="account" onClick=${() => pick(address)}>
          <span class=${`role-chip role-${role.toLowerCase()}`}>${roleLabel(role)}</span>
          <span class="account-email">${address}</span>
          <span class="account-note">${note}</span>
        </button></li>`)}
      </ul>
    </aside>
  </main>`;
}
