// Types of tidings.mjs (and of the global `Tidings` that tidings.js, the
// classic script, defines). Checked with `tsc --noEmit` by
// tests/browser/test_tidings_client_types.py against a usage example.

/** An event as the hub streams it: the Tidings envelope, its log position last. */
export interface TidingsEvent<
  TData extends Record<string, unknown> = Record<string, unknown>,
  TType extends string = string,
> {
  readonly id: string;
  readonly type: TType;
  readonly tenantId: string;
  readonly entityType: string | null;
  readonly entityId: string | null;
  readonly action: string;
  /** ISO 8601, as the producer gave it or the hub stamped it. */
  readonly timestamp: string;
  readonly actor: TidingsActor | null;
  readonly metadata: Readonly<Record<string, unknown>>;
  /** Possibly redacted for this viewer (fields marked sensitive). */
  readonly data: TData;
  readonly audiences: readonly string[];
  /** The catalog schema the data was validated against. */
  readonly schema: string;
  /** Its place in the log: strictly increasing along a stream. */
  readonly position: number;
}

export interface TidingsActor {
  readonly userId?: string;
  readonly name?: string;
  readonly [field: string]: unknown;
}

/** The first message of every connection. */
export interface ConnectedMessage {
  readonly type: "connected";
  readonly data: { readonly message: string };
  readonly tenantId: string | null;
  readonly userId?: string | null;
  readonly position: number;
  /** The server's reconnect wait in ms (its SSE `retry:`). */
  readonly retry?: number;
}

/** The stream went on from elsewhere: `lastEventId` set (slow consumer) means
 *  nothing was lost; without it events were skipped (refetch). */
export interface ResetMessage {
  readonly type: "reset";
  readonly reason: "unknown_position" | "too_far_behind" | "slow_consumer" | "log_rewound" | (string & {});
  readonly lastEventId?: string;
}

/** The server ends the connection and asks to be called again. */
export interface ReconnectMessage {
  readonly type: "reconnect";
  readonly reason: "shutdown" | "token_expired" | (string & {});
  /** The wait in ms, already jittered by the server. */
  readonly retry?: number;
}

/** The server ends the connection for good (user deleted, tenant suspended, key revoked). */
export interface ClosedMessage {
  readonly type: "closed";
  readonly reason: "user_deleted" | "tenant_suspended" | "key_revoked" | (string & {});
}

export type ControlMessage = ConnectedMessage | ResetMessage | ReconnectMessage | ClosedMessage;

export type TidingsStatus = "connecting" | "connected" | "reconnecting" | "closed";
export type TidingsTransport = "sse" | "websocket";

/** A React Query key: a string stands for the one-element key `[key]`. */
export type QueryKey = string | readonly unknown[];

/** The keys an event-type prefix invalidates: a list, or computed from the event. */
export type QueryKeyRule<E> = readonly QueryKey[] | ((event: E) => readonly QueryKey[] | null | undefined);

/** event-type prefix ("qms." or "qms.*") -> the keys its events invalidate. */
export type QueryKeyMap<E = TidingsEvent> = Readonly<Record<string, QueryKeyRule<E>>>;

export interface StatusDetail {
  /** Why (reconnecting, closed): connection_lost, ticket_failed, sse_unavailable, shutdown, ... */
  readonly reason?: string;
  /** reconnecting: the wait before the next attempt, in ms. */
  readonly delay?: number;
  readonly transport?: TidingsTransport;
  /** connecting: failed attempts since the last connection. */
  readonly attempt?: number;
  readonly error?: unknown;
  readonly [field: string]: unknown;
}

export type TokenSource = string | (() => string | Promise<string>);

export interface ConnectOptions<E extends TidingsEvent = TidingsEvent> {
  /** The hub: "" (this origin), a mount path ("/hub") or another origin. */
  url?: string;
  /** SSE stream path, default "/api/events". */
  path?: string;
  /** WebSocket stream path, default "/ws/events". */
  wsPath?: string;
  /** "auto" (default): SSE, falling back to the WebSocket when SSE cannot work. */
  transport?: "auto" | TidingsTransport;
  /** A bearer JWT for POST /api/events/tickets (or a function giving one). */
  token?: TokenSource;
  /** Gets a stream ticket some other way; replaces the token's ticket request. */
  getTicket?: () => string | Promise<string>;
  /** Type patterns: "qms.*,tasks.*" or ["qms.*", "tasks.*"]. */
  types?: string | readonly string[];
  /** Resume after this log position. */
  lastEventId?: string | number | null;
  queryKeys?: QueryKeyMap<E>;
  /** Called with the keys an event (or a reset that skipped events) makes stale. */
  invalidate?: (keys: QueryKey[], cause: E | ResetMessage) => void;
  onEvent?: (event: E) => void;
  onReset?: (message: ResetMessage) => void;
  onStatus?: (status: TidingsStatus, detail: StatusDetail) => void;
  onError?: (error: unknown) => void;
  /** ms: the reconnect wait until the server said its retry (default 1000). */
  minDelay?: number;
  /** ms: the cap of the backoff after failures (default 10000), before up to 50% jitter. */
  maxDelay?: number;
}

export interface TidingsConnection {
  readonly status: TidingsStatus;
  /** The last position seen (where a reconnect resumes), or null. */
  readonly lastEventId: string | null;
  readonly transport: TidingsTransport;
  /** The server's latest retry in ms, or null before it said one. */
  readonly retry: number | null;
  close(): void;
}

/** Seed 000's React Query table: event-type prefix -> query keys. */
export declare const DEFAULT_QUERY_KEYS: Readonly<Record<string, readonly string[]>>;

/** Open a live stream (see tidings.mjs for the guarantees). */
export declare function connect<E extends TidingsEvent = TidingsEvent>(
  options?: ConnectOptions<E>,
): TidingsConnection;

/** The query keys `event` invalidates under `queryKeys` (default DEFAULT_QUERY_KEYS). */
export declare function keysFor<E extends { readonly type: string }>(
  event: E,
  queryKeys?: QueryKeyMap<E>,
): QueryKey[];

/** The React hooks useTidings needs: pass React itself. */
export interface ReactHooks {
  useEffect(effect: () => void | (() => void), deps?: readonly unknown[]): void;
  useRef<T>(initialValue: T): { current: T };
  useState<S>(initialState: S): [S, (value: S) => void];
}

/** What useTidings calls on React Query's QueryClient. */
export interface QueryClientLike {
  invalidateQueries(filters?: { queryKey?: readonly unknown[] }): unknown;
}

export interface UseTidingsOptions<E extends TidingsEvent = TidingsEvent> extends ConnectOptions<E> {
  react: ReactHooks;
  /** The app's client, e.g. `useQueryClient()`. */
  queryClient: QueryClientLike;
  /** false: no connection (status "idle"); default true. */
  enabled?: boolean;
}

export type TidingsHookStatus = TidingsStatus | "idle";

/** The live stream while the component is mounted, invalidating React Query keys. */
export declare function useTidings<E extends TidingsEvent = TidingsEvent>(
  options: UseTidingsOptions<E>,
): TidingsHookStatus;

/** The global the classic script tidings.js defines. */
export interface TidingsGlobal {
  readonly DEFAULT_QUERY_KEYS: typeof DEFAULT_QUERY_KEYS;
  readonly connect: typeof connect;
  readonly keysFor: typeof keysFor;
  readonly useTidings: typeof useTidings;
}
