// SIP user agents for the end-to-end tests, in Node, over WebSocket (RFC 7118):
// JsSIP 3.13.8 and SIP.js 0.21.2 (both pinned in package.json), plus a raw
// one-socket client and a raw UDP sender for the negative cases. Every wait is
// bounded; every agent has an idempotent close().
//
// No WebRTC in Node. How calls work without it:
//  * JsSIP's RTCSession always creates `new RTCPeerConnection()` and runs
//    createOffer/createAnswer → setLocalDescription → waits for ICE gathering.
//    `installFakeWebRTC()` puts a minimal global `RTCPeerConnection` (and
//    `RTCSessionDescription`) in place: it returns a static SDP (`staticSdp()`,
//    audio PCMU on a dummy port), reports iceGatheringState 'complete' (so
//    JsSIP sends at once), accepts any remote description and records it.
//    Calls are made and answered with mediaConstraints { audio: false,
//    video: false } (no getUserMedia) and `sessionTimers: false`.
//  * SIP.js takes a `sessionDescriptionHandlerFactory`; `StaticSdh` returns
//    the static SDP and records the remote one.
//  * Both need a global `WebSocket` (Node 20 has it only with
//    --experimental-websocket): `ensureWebSocket()` installs the `ws`
//    package's. JsSIP opens `new WebSocket(url, 'sip')`; SIP.js likewise.

import dgram from 'node:dgram';
import crypto from 'node:crypto';

/** How long an agent lets an incoming call ring before answering it. */
const ANSWER_DELAY_MS = 50;

export const STEP_TIMEOUT_MS = 10_000;

export function withTimeout(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${message}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Make sure `globalThis.WebSocket` exists (Node 20 without the flag: the `ws` package). */
export async function ensureWebSocket() {
  if (typeof globalThis.WebSocket === 'function') return 'global';
  const { WebSocket } = await import('ws');
  globalThis.WebSocket = WebSocket;
  return 'ws';
}

/**
 * A static SDP offer/answer (audio PCMU, dummy port). `padTo` pads it with
 * a= lines to about that many bytes (to build WebRTC-sized INVITEs, 2-5 KB).
 */
export function staticSdp({ user = 'e2e', port = 40000, padTo = 0 } = {}) {
  const id = Math.floor(Math.random() * 1e9);
  let sdp =
    'v=0\r\n' +
    `o=${user} ${id} 1 IN IP4 127.0.0.1\r\n` +
    's=ucgate e2e\r\n' +
    'c=IN IP4 127.0.0.1\r\n' +
    't=0 0\r\n' +
    `m=audio ${port} RTP/AVP 0 101\r\n` +
    'a=rtpmap:0 PCMU/8000\r\n' +
    'a=rtpmap:101 telephone-event/8000\r\n' +
    'a=sendrecv\r\n';
  for (let i = 0; sdp.length < padTo; i++) {
    sdp += `a=x-e2e-pad-${i}:${'p'.repeat(60)}\r\n`;
  }
  return sdp;
}

/** Minimal RTCPeerConnection for JsSIP: static SDP, ICE 'complete' at once. */
class FakeRTCPeerConnection extends EventTarget {
  static sdpOptions = {};
  constructor() {
    super();
    this.localDescription = null;
    this.remoteDescription = null;
    this.signalingState = 'stable';
    this.iceGatheringState = 'complete';
    this.iceConnectionState = 'connected';
    this.connectionState = 'connected';
    this._senders = [];
  }
  async createOffer() {
    return { type: 'offer', sdp: staticSdp(FakeRTCPeerConnection.sdpOptions) };
  }
  async createAnswer() {
    return { type: 'answer', sdp: staticSdp() };
  }
  async setLocalDescription(desc) {
    this.localDescription = { type: desc.type, sdp: desc.sdp };
    this.signalingState = desc.type === 'offer' ? 'have-local-offer' : 'stable';
  }
  async setRemoteDescription(desc) {
    this.remoteDescription = { type: desc.type, sdp: desc.sdp };
    this.signalingState = desc.type === 'offer' ? 'have-remote-offer' : 'stable';
  }
  addTrack(track) {
    const sender = { track, replaceTrack: async () => {} };
    this._senders.push(sender);
    return sender;
  }
  getSenders() {
    return this._senders;
  }
  getReceivers() {
    return [];
  }
  getLocalStreams() {
    return [];
  }
  getRemoteStreams() {
    return [];
  }
  addIceCandidate() {
    return Promise.resolve();
  }
  close() {
    this.signalingState = 'closed';
    this.connectionState = 'closed';
  }
}

/**
 * Install the fake WebRTC globals JsSIP needs (idempotent). JsSIP tests
 * `window.RTCPeerConnection` (RTCSession.connect, UA incoming INVITE) and then
 * calls the global `RTCPeerConnection`; when there is no `window` a minimal
 * object holding just that is installed (not globalThis: other libraries
 * would then believe they run in a browser).
 */
export function installFakeWebRTC() {
  if (!globalThis.RTCPeerConnection) globalThis.RTCPeerConnection = FakeRTCPeerConnection;
  if (typeof globalThis.window === 'undefined') globalThis.window = { RTCPeerConnection: globalThis.RTCPeerConnection };
  else if (!globalThis.window.RTCPeerConnection) globalThis.window.RTCPeerConnection = globalThis.RTCPeerConnection;
  if (!globalThis.RTCSessionDescription) {
    globalThis.RTCSessionDescription = class {
      constructor({ type, sdp }) {
        this.type = type;
        this.sdp = sdp;
      }
    };
  }
}

/** Options for the next JsSIP offers (e.g. { padTo: 3000 } for a large INVITE). */
export function setJssipOfferSdp(options) {
  FakeRTCPeerConnection.sdpOptions = options ?? {};
}

/** A queue of events with a bounded `next()`. */
class Inbox {
  constructor(name) {
    this.name = name;
    this.items = [];
    this.waiters = [];
  }
  push(item) {
    const w = this.waiters.shift();
    if (w) w(item);
    else this.items.push(item);
  }
  next(ms = STEP_TIMEOUT_MS, what = this.name) {
    if (this.items.length) return Promise.resolve(this.items.shift());
    let resolver;
    const p = new Promise((r) => {
      resolver = r;
      this.waiters.push(r);
    });
    return withTimeout(p, ms, what).catch((e) => {
      this.waiters = this.waiters.filter((w) => w !== resolver);
      throw e;
    });
  }
}

// ---------------------------------------------------------------- JsSIP

/**
 * A registered JsSIP UA. `wsUrl` e.g. ws://127.0.0.1:PORT/sip, `aor` e.g.
 * sip:alice@127.0.0.1. Incoming MESSAGEs go to `messages` ({ from, body,
 * contentType }), incoming calls are answered automatically (static SDP) and
 * go to `calls` ({ session, request }). `trace` collects every SIP message
 * sent and received ({ dir: 'in'|'out', text }).
 */
export async function startJssip({ wsUrl, aor, displayName, register = true, timeoutMs = STEP_TIMEOUT_MS }) {
  await ensureWebSocket();
  installFakeWebRTC();
  const JsSIP = (await import('jssip')).default;
  const socket = new JsSIP.WebSocketInterface(wsUrl);
  const ua = new JsSIP.UA({
    sockets: [socket],
    uri: aor,
    display_name: displayName,
    register,
    register_expires: 600,
    session_timers: false,
    connection_recovery_min_interval: 2,
    connection_recovery_max_interval: 30,
    user_agent: 'ucgate-e2e JsSIP',
  });
  const messages = new Inbox(`JsSIP ${aor} MESSAGE`);
  const calls = new Inbox(`JsSIP ${aor} incoming call`);
  const ended = new Inbox(`JsSIP ${aor} call end`);
  const trace = [];
  // Capture raw traffic: wrap the socket interface's send and onmessage.
  const origSend = socket.send.bind(socket);
  socket.send = (msg) => {
    trace.push({ dir: 'out', text: String(msg) });
    return origSend(msg);
  };
  ua.on('newMessage', (e) => {
    if (e.originator !== 'remote') return;
    messages.push({ from: e.request.from.uri.toString(), body: e.request.body, contentType: e.request.getHeader('Content-Type') });
  });
  ua.on('newRTCSession', (e) => {
    if (e.originator !== 'remote') return;
    const { session, request } = e;
    session.on('ended', (ev) => ended.push({ session, cause: ev.cause, originator: ev.originator }));
    session.on('failed', (ev) => ended.push({ session, cause: ev.cause, originator: ev.originator, failed: true }));
    trace.push({ dir: 'in', text: request.toString() });
    calls.push({ session, request });
    // Answered after ANSWER_DELAY_MS, as a person would: the 180 Ringing and
    // the 200 sent back to back over UDP can be reordered by Kamailio's
    // several UDP workers, and SIPp's strict scenarios abort on a late 180.
    setTimeout(() => {
      if (!session.isEnded()) session.answer({ mediaConstraints: { audio: false, video: false }, sessionTimers: false });
    }, ANSWER_DELAY_MS);
  });
  const registered = new Promise((resolve, reject) => {
    ua.once('registered', resolve);
    ua.once('registrationFailed', (e) => reject(new Error(`JsSIP ${aor} registration failed: ${e.cause} ${e.response?.status_code ?? ''}`)));
  });
  registered.catch(() => {});
  const connected = new Promise((resolve) => ua.once('connected', resolve));
  ua.start();
  let closed = false;
  const agent = {
    kind: 'jssip',
    ua,
    aor,
    messages,
    calls,
    ended,
    trace,
    async ready() {
      await withTimeout(register ? registered : connected, timeoutMs, `JsSIP ${aor} ${register ? 'REGISTER' : 'connect'} at ${wsUrl}`);
    },
    /** Send a MESSAGE; resolves with the final status code (rejects on timeout). */
    sendMessage(target, body, ms = timeoutMs) {
      return withTimeout(
        new Promise((resolve) => {
          ua.sendMessage(target, body, {
            eventHandlers: {
              succeeded: (e) => resolve(e.response.status_code),
              failed: (e) => resolve(e.response ? e.response.status_code : `failed: ${e.cause}`),
            },
          });
        }),
        ms,
        `JsSIP ${aor} MESSAGE to ${target}`,
      );
    },
    /**
     * Call `target`; resolves with { session, remoteSdp } when confirmed
     * (200 + ACK sent), rejects with the cause on failure.
     */
    call(target, { ms = timeoutMs, sdp } = {}) {
      if (sdp) setJssipOfferSdp(sdp);
      return withTimeout(
        new Promise((resolve, reject) => {
          const session = ua.call(target, {
            mediaConstraints: { audio: false, video: false },
            sessionTimers: false,
            eventHandlers: {
              confirmed: () => resolve({ session, remoteSdp: session.connection.remoteDescription?.sdp }),
              failed: (e) => reject(Object.assign(new Error(`JsSIP call to ${target} failed: ${e.cause}`), { cause: e.cause, status: e.message?.status_code })),
              ended: (e) => ended.push({ session, cause: e.cause, originator: e.originator }),
            },
          });
        }),
        ms,
        `JsSIP ${aor} call to ${target}`,
      ).finally(() => setJssipOfferSdp({}));
    },
    /** End `session` with BYE; resolves when JsSIP reports it ended. */
    hangup(session, ms = timeoutMs) {
      const done = new Promise((resolve) => session.once('ended', resolve));
      session.terminate();
      return withTimeout(done, ms, `JsSIP ${aor} BYE`);
    },
    async close({ unregister = true } = {}) {
      if (closed) return;
      closed = true;
      try {
        const disc = new Promise((resolve) => ua.once('disconnected', resolve));
        if (!unregister) ua.unregister = () => {};
        ua.stop();
        await withTimeout(disc, 5_000, `JsSIP ${aor} stop`).catch(() => {});
      } catch {
        /* ignore */
      }
    },
  };
  // Wrap incoming raw messages for the trace after the transport exists.
  const origOnMessage = socket.onmessage;
  void origOnMessage;
  ua.on('connected', () => {
    const ws = socket._ws;
    ws?.addEventListener?.('message', (ev) => trace.push({ dir: 'in', text: typeof ev.data === 'string' ? ev.data : Buffer.from(ev.data).toString('utf8') }));
  });
  return agent;
}

// ---------------------------------------------------------------- SIP.js

/** SIP.js SessionDescriptionHandler with a static SDP (no WebRTC). */
export class StaticSdh {
  constructor(sdpOptions = {}) {
    this.sdpOptions = sdpOptions;
    this.remoteSdp = null;
  }
  close() {}
  async getDescription() {
    return { body: staticSdp(this.sdpOptions), contentType: 'application/sdp' };
  }
  hasDescription(contentType) {
    return contentType === 'application/sdp';
  }
  async rollbackDescription() {}
  async setDescription(sdp) {
    this.remoteSdp = sdp;
  }
  sendDtmf() {
    return false;
  }
}

/**
 * A registered SIP.js UA (same shape as startJssip's). Incoming calls are
 * accepted automatically.
 */
export async function startSipjs({ wsUrl, aor, register = true, timeoutMs = STEP_TIMEOUT_MS }) {
  await ensureWebSocket();
  const SIP = await import('sip.js');
  const messages = new Inbox(`SIP.js ${aor} MESSAGE`);
  const calls = new Inbox(`SIP.js ${aor} incoming call`);
  const ended = new Inbox(`SIP.js ${aor} call end`);
  const trace = [];
  let nextSdp = {};
  const ua = new SIP.UserAgent({
    uri: SIP.UserAgent.makeURI(aor),
    transportOptions: { server: wsUrl, connectionTimeout: 5, traceSip: false },
    sessionDescriptionHandlerFactory: () => new StaticSdh(nextSdp),
    logLevel: 'error',
    logBuiltinEnabled: false,
    logConnector: (level, category, label, content) => {
      if (category === 'sip.Transport' && typeof content === 'string') {
        const m = /^(Sending|Received) WebSocket message:\n\n([\s\S]*)$/.exec(content);
        if (m) trace.push({ dir: m[1] === 'Sending' ? 'out' : 'in', text: m[2] });
      }
    },
    userAgentString: 'ucgate-e2e SIP.js',
    delegate: {
      onMessage(message) {
        messages.push({ from: message.request.from.uri.toString(), body: message.request.body, contentType: message.request.getHeader('Content-Type') });
        message.accept();
      },
      onInvite(invitation) {
        invitation.stateChange.addListener((s) => {
          if (s === SIP.SessionState.Terminated) ended.push({ session: invitation });
        });
        calls.push({ session: invitation, request: invitation.request });
        // After ANSWER_DELAY_MS: see the JsSIP agent.
        setTimeout(() => invitation.accept().catch(() => {}), ANSWER_DELAY_MS);
      },
    },
  });
  let registerer = null;
  let closed = false;
  const agent = {
    kind: 'sipjs',
    SIP,
    ua,
    aor,
    messages,
    calls,
    ended,
    trace,
    async ready() {
      await withTimeout(ua.start(), timeoutMs, `SIP.js ${aor} connect to ${wsUrl}`);
      if (!register) return;
      registerer = new SIP.Registerer(ua, { expires: 600 });
      const registered = new Promise((resolve, reject) => {
        registerer.stateChange.addListener((s) => {
          if (s === SIP.RegistererState.Registered) resolve();
        });
        registerer
          .register({
            requestDelegate: {
              onReject: (r) => reject(new Error(`SIP.js ${aor} REGISTER rejected: ${r.message.statusCode}`)),
            },
          })
          .catch(reject);
      });
      await withTimeout(registered, timeoutMs, `SIP.js ${aor} REGISTER`);
    },
    sendMessage(target, body, ms = timeoutMs) {
      const messager = new SIP.Messager(ua, SIP.UserAgent.makeURI(target), body, 'text/plain');
      return withTimeout(
        new Promise((resolve, reject) => {
          messager
            .message({
              requestDelegate: {
                onAccept: (r) => resolve(r.message.statusCode),
                onReject: (r) => resolve(r.message.statusCode),
              },
            })
            .catch(reject);
        }),
        ms,
        `SIP.js ${aor} MESSAGE to ${target}`,
      );
    },
    call(target, { ms = timeoutMs, sdp } = {}) {
      nextSdp = sdp ?? {};
      const inviter = new SIP.Inviter(ua, SIP.UserAgent.makeURI(target));
      return withTimeout(
        new Promise((resolve, reject) => {
          inviter.stateChange.addListener((s) => {
            if (s === SIP.SessionState.Established) resolve({ session: inviter, remoteSdp: inviter.sessionDescriptionHandler?.remoteSdp });
            if (s === SIP.SessionState.Terminated) ended.push({ session: inviter });
          });
          inviter
            .invite({
              requestDelegate: {
                onReject: (r) => reject(Object.assign(new Error(`SIP.js call to ${target} rejected: ${r.message.statusCode}`), { status: r.message.statusCode })),
              },
            })
            .catch(reject);
        }),
        ms,
        `SIP.js ${aor} call to ${target}`,
      ).finally(() => {
        nextSdp = {};
      });
    },
    hangup(session, ms = timeoutMs) {
      const done = new Promise((resolve) => {
        if (session.state === SIP.SessionState.Terminated) resolve();
        session.stateChange.addListener((s) => s === SIP.SessionState.Terminated && resolve());
      });
      return withTimeout(Promise.all([session.bye(), done]), ms, `SIP.js ${aor} BYE`);
    },
    async close({ unregister = true } = {}) {
      if (closed) return;
      closed = true;
      try {
        if (registerer && unregister) await withTimeout(registerer.unregister(), 5_000, 'unregister').catch(() => {});
        await withTimeout(ua.stop(), 5_000, `SIP.js ${aor} stop`).catch(() => {});
      } catch {
        /* ignore */
      }
    },
  };
  return agent;
}

// ---------------------------------------------------------------- raw clients

const rnd = (n = 10) => crypto.randomBytes(n).toString('hex').slice(0, n);

/** Split a SIP message into { startLine, headers: [[name, value]], body, header(name) }. */
export function parseSip(text) {
  const i = text.indexOf('\r\n\r\n');
  const head = i < 0 ? text : text.slice(0, i);
  const body = i < 0 ? '' : text.slice(i + 4);
  const [startLine, ...lines] = head.split('\r\n');
  const headers = lines.map((l) => {
    const c = l.indexOf(':');
    return [l.slice(0, c).trim(), l.slice(c + 1).trim()];
  });
  const compact = { v: 'via', f: 'from', t: 'to', i: 'call-id', m: 'contact', l: 'content-length', c: 'content-type' };
  const norm = (n) => compact[n.toLowerCase()] ?? n.toLowerCase();
  const all = (name) => headers.filter(([n]) => norm(n) === name.toLowerCase()).map(([, v]) => v);
  const status = /^SIP\/2\.0 (\d{3})/.exec(startLine);
  return { startLine, status: status ? Number(status[1]) : null, method: status ? null : startLine.split(' ')[0], headers, body, header: (n) => all(n)[0], headerAll: all };
}

/**
 * A raw SIP-over-WebSocket client (one socket, subprotocol `sip`, no
 * transaction layer): REGISTER an AOR, then `closeAbruptly()` to make its
 * flow vanish without un-REGISTER (for the 430 test).
 */
export async function rawWsClient(wsUrl, { timeoutMs = STEP_TIMEOUT_MS } = {}) {
  await ensureWebSocket();
  const ws = new globalThis.WebSocket(wsUrl, 'sip');
  const inbox = new Inbox(`raw WS ${wsUrl}`);
  ws.addEventListener('message', (ev) => inbox.push(parseSip(typeof ev.data === 'string' ? ev.data : Buffer.from(ev.data).toString('utf8'))));
  await withTimeout(
    new Promise((resolve, reject) => {
      ws.addEventListener('open', resolve);
      ws.addEventListener('error', (e) => reject(new Error(`WebSocket ${wsUrl}: ${e.message ?? 'error'}`)));
    }),
    timeoutMs,
    `raw WS open ${wsUrl}`,
  );
  const viaHost = `${rnd(12)}.invalid`;
  return {
    ws,
    inbox,
    protocol: ws.protocol,
    send: (text) => ws.send(text),
    /** REGISTER `user` at `domain`; resolves with the parsed final response. */
    async register(user, domain, { expires = 600 } = {}) {
      const branch = `z9hG4bK${rnd(10)}`;
      const contactUser = rnd(8);
      ws.send(
        `REGISTER sip:${domain} SIP/2.0\r\n` +
          `Via: SIP/2.0/WS ${viaHost};branch=${branch}\r\n` +
          `Max-Forwards: 70\r\n` +
          `To: <sip:${user}@${domain}>\r\n` +
          `From: <sip:${user}@${domain}>;tag=${rnd(10)}\r\n` +
          `Call-ID: ${rnd(20)}\r\n` +
          `CSeq: 1 REGISTER\r\n` +
          `Contact: <sip:${contactUser}@${viaHost};transport=ws>;expires=${expires}\r\n` +
          `Expires: ${expires}\r\n` +
          `Supported: path, outbound\r\n` +
          `Content-Length: 0\r\n\r\n`,
      );
      for (;;) {
        const m = await inbox.next(timeoutMs, `REGISTER ${user} response`);
        if (m.status && m.status >= 200) return m;
      }
    },
    /** Close the TCP connection without a WebSocket close handshake. */
    closeAbruptly() {
      if (typeof ws.terminate === 'function') ws.terminate();
      else ws.close();
    },
    close() {
      try {
        ws.close();
      } catch {
        /* ignore */
      }
    },
  };
}

/**
 * A raw SIP UDP endpoint on 127.0.0.1 (a stand-in SIP phone next to the core):
 * `request(port, text)` sends and resolves with the first final response
 * (provisionals are collected); `register(...)` binds an AOR to this socket.
 */
export async function udpEndpoint() {
  const sock = dgram.createSocket('udp4');
  await new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, '127.0.0.1', resolve);
  });
  const port = sock.address().port;
  const inbox = new Inbox(`UDP endpoint ${port}`);
  sock.on('message', (buf) => inbox.push(parseSip(buf.toString('utf8'))));
  const ep = {
    port,
    inbox,
    send(text, toPort) {
      return new Promise((resolve, reject) => sock.send(text, toPort, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
    },
    /** Build a request; `extra` is an array of header lines. */
    build({ method, ruri, from, to, toTag, callId = rnd(20), cseq = 1, contact = `<sip:e2e@127.0.0.1:${port}>`, extra = [], body = '', contentType = 'text/plain' }) {
      const branch = `z9hG4bK${rnd(12)}`;
      return (
        `${method} ${ruri} SIP/2.0\r\n` +
        `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=${branch};rport\r\n` +
        `Max-Forwards: 70\r\n` +
        `From: <${from}>;tag=${rnd(10)}\r\n` +
        `To: <${to}>${toTag ? `;tag=${toTag}` : ''}\r\n` +
        `Call-ID: ${callId}\r\n` +
        `CSeq: ${cseq} ${method}\r\n` +
        `Contact: ${contact}\r\n` +
        extra.map((h) => `${h}\r\n`).join('') +
        (body ? `Content-Type: ${contentType}\r\n` : '') +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
      );
    },
    /** Send a request to 127.0.0.1:toPort and wait for its final response. */
    async request(toPort, opts, ms = STEP_TIMEOUT_MS) {
      const text = typeof opts === 'string' ? opts : ep.build(opts);
      const callId = parseSip(text).header('call-id');
      await ep.send(text, toPort);
      const deadline = Date.now() + ms;
      for (;;) {
        const m = await inbox.next(Math.max(1, deadline - Date.now()), `response to ${text.split('\r\n')[0]}`);
        if (m.status && m.header('call-id') === callId && m.status >= 200) return m;
      }
    },
    close() {
      try {
        sock.close();
      } catch {
        /* ignore */
      }
    },
  };
  return ep;
}
