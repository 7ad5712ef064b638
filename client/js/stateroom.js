// Stateroom browser client: one WebSocket to one room, reconnecting by
// itself. An ES module with no dependencies and no build step:
//
//   import { connect, showState } from "./stateroom.js"; // relative: works under a prefix
//   const room = connect("lobby", {
//     onMessage: (data) => console.log(data),        // string or ArrayBuffer
//     onStateChange: (state) => console.log(state),  // connecting, open, reconnecting, closed
//   });
//   room.send("hello");                               // queued while reconnecting
//   showState(room, document.getElementById("state")); // a status line for a page
//
// Reconnection follows the close-code table of the Go package stateroom
// (CloseCode.Reconnect): reconnect on 1001, 1006, 1011, 1012, 1013, 4000
// and 4001; stop on every other code (1000, 1002, 1007, 1008, 1009, 4002,
// 4003, 4100-4999, ...). A reconnection token kept in sessionStorage per
// room makes every connection of this tab to the room, page reloads
// included, get the same client id for as long as the room lives.

/** Close codes after which a client reconnects (stateroom.CloseCode.Reconnect). */
const RECONNECT_CODES = new Set([1001, 1006, 1011, 1012, 1013, 4000, 4001]);

/**
 * Reports whether a client closed with code should reconnect.
 * @param {number} code a WebSocket close code
 * @returns {boolean}
 */
export function shouldReconnect(code) {
  return RECONNECT_CODES.has(code);
}

/**
 * Returns the WebSocket URL of a room, without token or auth.
 *
 * The base is options.url when given, else the page's document.baseURI (or
 * location.href): "ws/" plus the percent-encoded room id is resolved against
 * it, so a page served under a path prefix (https://host/app/...) reaches
 * the server mounted there (wss://host/app/ws/ROOM). An http base becomes
 * ws, https becomes wss. A base given in options.url is taken as a
 * directory (a "/" is added when missing). With an empty room, options.url
 * is the room's URL itself (.../ws/ROOM, or .../ws for the default room).
 *
 * @param {string} room
 * @param {{url?: string|URL}} [options]
 * @returns {string}
 */
export function roomURL(room, options = {}) {
  const page = globalThis.document?.baseURI ?? globalThis.location?.href;
  let u;
  if (room === undefined || room === null || room === "") {
    if (!options.url) throw new TypeError("stateroom: connect needs a room id, or options.url naming the room's URL");
    u = new URL(String(options.url), page);
  } else {
    let base = page;
    if (options.url) {
      base = new URL(String(options.url), page).href;
      const q = base.search(/[?#]/);
      if (q >= 0) base = base.slice(0, q);
      if (!base.endsWith("/")) base += "/";
    }
    if (!base) throw new TypeError("stateroom: no page URL to derive the server's from: pass options.url");
    u = new URL("ws/" + encodeURIComponent(String(room)), base);
  }
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  else if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    throw new TypeError("stateroom: the server URL must be http(s) or ws(s), not " + u.protocol);
  }
  u.hash = "";
  return u.href;
}

/** Returns a random reconnection token (works outside secure contexts too). */
function newToken() {
  const b = new Uint8Array(18);
  crypto.getRandomValues(b);
  return btoa(String.fromCharCode(...b)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The sessionStorage key of a room's token. */
function tokenKey(url) {
  return "stateroom:token:" + url;
}

function loadToken(url) {
  try {
    return globalThis.sessionStorage?.getItem(tokenKey(url)) ?? null;
  } catch {
    return null; // storage disabled (sandboxed frame, privacy settings)
  }
}

function saveToken(url, token) {
  try {
    globalThis.sessionStorage?.setItem(tokenKey(url), token);
  } catch {
    // the token then lasts as long as the page
  }
}

/**
 * A connection to one room. Events (it is an EventTarget):
 *   "message": a MessageEvent whose data is a string (text) or an
 *              ArrayBuffer (binary);
 *   "state":   a CustomEvent, detail {state, code, reason}: the new state,
 *              with the close code and reason that caused a "reconnecting"
 *              or "closed";
 *   "close":   a CustomEvent, detail {code, reason}: closed for good (a
 *              code the table says to stop on, or close() was called).
 */
export class StateroomConnection extends EventTarget {
  #url; // the room's WebSocket URL, without query parameters of ours
  #fullURL;
  #opts;
  #token;
  #ws = null;
  #state = "connecting";
  #queue = [];
  #attempt = 0;
  #openedAt = 0;
  #timer = null;
  #lastClose = null;
  #connects = 0;

  /**
   * @param {string} room the room id ("" to use options.url as the room's URL)
   * @param {object} [options]
   * @param {string} [options.token] reconnection token; by default one is
   *   kept in sessionStorage per room URL, so reloads keep the client id
   * @param {string} [options.auth] client token of a server that needs one (sent as ?auth=)
   * @param {string|URL} [options.url] the server's base URL (default: the page's)
   * @param {boolean} [options.reconnect=true]
   * @param {number} [options.maxQueue=256] messages queued while not open
   * @param {number} [options.minDelay=250] first reconnection delay, ms
   * @param {number} [options.maxDelay=10000] longest reconnection delay, ms
   * @param {(data: string|ArrayBuffer, ev: MessageEvent) => void} [options.onMessage]
   * @param {(state: string, info: {code?: number, reason?: string}) => void} [options.onStateChange]
   */
  constructor(room, options = {}) {
    super();
    this.#opts = {
      reconnect: true,
      maxQueue: 256,
      minDelay: 250,
      maxDelay: 10000,
      ...options,
    };
    this.#url = roomURL(room, options);
    this.#token = options.token || loadToken(this.#url) || newToken();
    if (!options.token) saveToken(this.#url, this.#token);
    const u = new URL(this.#url);
    u.searchParams.set("token", this.#token);
    if (options.auth) u.searchParams.set("auth", options.auth);
    this.#fullURL = u.href;
    this.#emitState({});
    this.#open();
  }

  /** "connecting", "open", "reconnecting" or "closed". */
  get state() {
    return this.#state;
  }

  /** The room's WebSocket URL (without the token). */
  get url() {
    return this.#url;
  }

  /** The reconnection token this connection sends. */
  get token() {
    return this.#token;
  }

  /** How many messages wait to be sent. */
  get queued() {
    return this.#queue.length;
  }

  /** How many times a connection opened. */
  get connects() {
    return this.#connects;
  }

  /** {code, reason} of the last connection that ended, or null. */
  get lastClose() {
    return this.#lastClose;
  }

  /**
   * Sends a text (string) or binary (ArrayBuffer, a typed array such as
   * Uint8Array, DataView, Blob) message. While not open it is queued and
   * sent once the connection opens; a full queue (options.maxQueue) or a
   * closed connection throws.
   * @param {string|ArrayBuffer|ArrayBufferView|Blob} data
   */
  send(data) {
    if (this.#state === "closed") {
      const why = this.#lastClose ? ` (${this.#lastClose.code}${this.#lastClose.reason ? ": " + this.#lastClose.reason : ""})` : "";
      throw new Error("stateroom: send on a closed connection" + why);
    }
    if (this.#state === "open" && this.#ws?.readyState === WebSocket.OPEN) {
      this.#ws.send(data);
      return;
    }
    if (this.#queue.length >= this.#opts.maxQueue) {
      throw new Error(`stateroom: send queue full (${this.#opts.maxQueue} messages) while ${this.#state}`);
    }
    // Copy views: the caller may reuse its buffer before the queue is sent.
    if (ArrayBuffer.isView(data)) {
      data = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
    } else if (data instanceof ArrayBuffer) {
      data = data.slice(0);
    }
    this.#queue.push(data);
  }

  /**
   * Closes the connection for good (no reconnection) with code (1000 or
   * 3000-4999) and reason. The queued messages are dropped.
   */
  close(code = 1000, reason = "") {
    if (this.#state === "closed") return;
    clearTimeout(this.#timer);
    this.#timer = null;
    const ws = this.#ws;
    this.#ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(code, reason);
      } catch {
        ws.close();
      }
    }
    this.#finish(code, reason);
  }

  #open() {
    const ws = new WebSocket(this.#fullURL);
    ws.binaryType = "arraybuffer";
    this.#ws = ws;
    ws.onopen = () => {
      this.#openedAt = Date.now();
      this.#connects++;
      this.#setState("open", {});
      // Sent in order; a message sent from a "state" handler goes after.
      const queued = this.#queue;
      this.#queue = [];
      for (const data of queued) ws.send(data);
    };
    ws.onmessage = (ev) => {
      const me = new MessageEvent("message", { data: ev.data, origin: ev.origin });
      try {
        this.#opts.onMessage?.(ev.data, me);
      } finally {
        this.dispatchEvent(me);
      }
    };
    ws.onclose = (ev) => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      this.#lastClose = { code: ev.code, reason: ev.reason };
      if (!this.#opts.reconnect || !shouldReconnect(ev.code)) {
        this.#finish(ev.code, ev.reason);
        return;
      }
      if (this.#openedAt && Date.now() - this.#openedAt >= this.#opts.maxDelay) this.#attempt = 0;
      this.#openedAt = 0;
      const d = Math.min(this.#opts.minDelay * 2 ** Math.min(this.#attempt, 30), this.#opts.maxDelay);
      const wait = d / 2 + Math.random() * (d / 2);
      this.#attempt++;
      this.#setState("reconnecting", { code: ev.code, reason: ev.reason, delay: Math.round(wait) });
      this.#timer = setTimeout(() => {
        this.#timer = null;
        if (this.#state !== "closed") this.#open();
      }, wait);
    };
  }

  #finish(code, reason) {
    this.#lastClose = { code, reason };
    this.#queue = [];
    this.#setState("closed", { code, reason });
    this.dispatchEvent(new CustomEvent("close", { detail: { code, reason } }));
  }

  #setState(state, info) {
    if (this.#state === state) return;
    this.#state = state;
    this.#emitState(info);
  }

  #emitState(info) {
    const state = this.#state;
    try {
      this.#opts.onStateChange?.(state, info);
    } finally {
      this.dispatchEvent(new CustomEvent("state", { detail: { state, ...info } }));
    }
  }
}

/**
 * Keeps a status element of a page in step with a connection: its text
 * says the state, with the close code and reason behind a "reconnecting"
 * or "closed"; its attributes data-state (connecting, open, reconnecting,
 * closed), data-connects (how many times a connection opened) and
 * data-last-close (the last close code) are for stylesheets (stateroom.css
 * colours .sr-status by data-state) and tests.
 * @param {StateroomConnection} conn
 * @param {HTMLElement} el
 */
export function showState(conn, el) {
  const render = (info) => {
    const state = conn.state;
    const close = info.code ? ` (${info.code}${info.reason ? ": " + info.reason : ""})` : "";
    el.dataset.state = state;
    el.dataset.connects = String(conn.connects);
    if (conn.lastClose) el.dataset.lastClose = String(conn.lastClose.code);
    el.textContent = state === "open" ? "connected"
      : state === "reconnecting" ? `reconnecting in ${((info.delay ?? 0) / 1000).toFixed(1)} s${close}`
      : state === "closed" ? "disconnected" + close
      : "connecting\u2026";
  };
  conn.addEventListener("state", (ev) => render(ev.detail));
  render({});
}

/**
 * Connects to a room and returns its StateroomConnection at once (state
 * "connecting"); see the class for options, events and methods.
 * @param {string} room
 * @param {object} [options]
 * @returns {StateroomConnection}
 */
export function connect(room, options = {}) {
  return new StateroomConnection(room, options);
}
