// The console's only way to the server: the public GraphQL API at /graphql, over HTTP
// (fetch) and over a websocket with the graphql-transport-ws protocol for progress.

const TOKEN_KEY = "recoverly:token"; // shared with the GraphiQL page

export function savedToken() {
  return localStorage.getItem(TOKEN_KEY);
}

export function saveToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
  closeSocket();
}

function bearer(token) {
  return /^bearer\s/i.test(token) ? token : `Bearer ${token}`;
}

/** A failed request: `code` is the GraphQL error's extensions.code (UNAUTHENTICATED, …). */
export class ApiError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

/** Run a query or mutation; resolves to `data`, rejects with an ApiError. */
export async function gql(query, variables = {}, token = savedToken()) {
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        Authorization: bearer(token || ""),
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch (error) {
    throw new ApiError("The server cannot be reached: check your connection.", "NETWORK");
  }
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    throw new ApiError(`The server answered ${response.status} without a GraphQL body.`, "BAD_RESPONSE");
  }
  if (body.errors && body.errors.length) {
    const first = body.errors[0];
    const code = (first.extensions && first.extensions.code) || "ERROR";
    // A token refused mid-session (revoked, expired): the console goes back to sign-in.
    if (code === "UNAUTHENTICATED" && token === savedToken()) dispatchEvent(new Event("recoverly:unauthenticated"));
    throw new ApiError(first.message, code);
  }
  return body.data;
}

// --- graphql-transport-ws: one shared socket, opened on the first subscription -------

let socket = null;
let acknowledged = false;
let nextId = 0;
const operations = new Map(); // id -> {payload, sink}

function closeSocket() {
  if (socket) socket.close(1000, "Normal Closure");
  socket = null;
  acknowledged = false;
}

function send(message) {
  socket.send(JSON.stringify(message));
}

function openSocket() {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;
  const ws = new WebSocket(url, "graphql-transport-ws");
  socket = ws;
  acknowledged = false;
  ws.onopen = () => {
    send({ type: "connection_init", payload: { Authorization: bearer(savedToken() || "") } });
  };
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "connection_ack") {
      acknowledged = true;
      for (const [id, operation] of operations) send({ type: "subscribe", id, payload: operation.payload });
      return;
    }
    if (message.type === "ping") return send({ type: "pong" });
    const operation = operations.get(message.id);
    if (!operation) return;
    if (message.type === "next") {
      const errors = message.payload.errors;
      if (errors && errors.length) operation.sink.error(new ApiError(errors[0].message, errors[0].extensions?.code));
      else operation.sink.next(message.payload.data);
    } else if (message.type === "error") {
      operations.delete(message.id);
      operation.sink.error(new ApiError(message.payload[0]?.message || "subscription failed", "ERROR"));
    } else if (message.type === "complete") {
      operations.delete(message.id);
      operation.sink.complete();
    }
  };
  ws.onclose = (event) => {
    if (socket === ws) {
      socket = null;
      acknowledged = false;
    }
    const reason = event.code === 4401 ? "Your token was refused: sign in again." : "The live connection closed.";
    for (const [id, operation] of operations) {
      operations.delete(id);
      operation.sink.error(new ApiError(reason, event.code === 4401 ? "UNAUTHENTICATED" : "NETWORK"));
    }
  };
}

/**
 * Subscribe to an operation; `sink` has next(data), error(ApiError) and complete().
 * Returns a function that stops the subscription.
 */
export function subscribe(query, variables, sink) {
  const id = String(++nextId);
  const payload = { query, variables };
  operations.set(id, { payload, sink });
  if (!socket) openSocket();
  else if (acknowledged) send({ type: "subscribe", id, payload });
  return () => {
    if (!operations.delete(id)) return;
    if (socket && acknowledged) send({ type: "complete", id });
    if (!operations.size) closeSocket();
  };
}
