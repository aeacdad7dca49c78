// The portal's HTTP client: the session (token + user) in this tab's
// sessionStorage, JSON requests with the bearer token, problem+json errors.
const SESSION_KEY = "tidings-portal.session";

/** The signed-in session { accessToken, user } or null. */
export function session() {
  try {
    const value = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    return value && value.accessToken && value.user ? value : null;
  } catch {
    return null;
  }
}

export function saveSession(value) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(value));
}

export function signOut() {
  sessionStorage.removeItem(SESSION_KEY);
  location.assign("/login");
}

/** An RFC 9457 problem answered by the server (or a network failure). */
export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `Request failed (HTTP ${status})`);
    this.status = status;
    this.problem = problem || {};
    this.field = this.problem.field || null; // a JSON pointer such as "/title"
  }
}

/** fetch + JSON: resolves with the body, rejects with an ApiError. A 401 on
 *  a signed-in session means the token expired: back to the login page. */
export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const current = session();
  const sent = { Accept: "application/json", ...headers };
  if (current) sent.Authorization = `Bearer ${current.accessToken}`;
  if (body !== undefined) sent["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    throw new ApiError(0, { detail: "The portal cannot be reached. Check your connection." });
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text.slice(0, 200) };
  }
  if (response.status === 401 && current && !path.startsWith("/api/auth/")) {
    sessionStorage.removeItem(SESSION_KEY);
    location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** A fresh idempotency key (one per intent of the person clicking). */
export function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
