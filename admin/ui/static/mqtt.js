// A small MQTT 3.1.1 client for the dashboard's subscribe panel: MQTT over
// WebSocket (subprotocol "mqtt", binary frames) to one of Tern's ws/wss
// listeners. It does what the panel needs and no more: CONNECT with keep
// alive, SUBSCRIBE/UNSUBSCRIBE, PUBLISH at QoS 0, receiving PUBLISH at any
// QoS (acknowledged as the QoS asks), PINGREQ, DISCONNECT.
//
// The codec functions are exported on their own so that the browser test
// can compare their bytes with the Go packet encoder's.

const utf8 = new TextEncoder();
const text = new TextDecoder('utf-8');

// Packet types (high nibble of the first byte).
export const CONNECT = 1, CONNACK = 2, PUBLISH = 3, PUBACK = 4, PUBREC = 5,
  PUBREL = 6, PUBCOMP = 7, SUBSCRIBE = 8, SUBACK = 9, UNSUBSCRIBE = 10,
  UNSUBACK = 11, PINGREQ = 12, PINGRESP = 13, DISCONNECT = 14;

const MAX_REMAINING = 268435455; // four length bytes

// encodeLength returns the Remaining Length varint: seven bits a byte,
// least significant first, high bit set while more follow [MQTT-2.2.3].
export function encodeLength(n) {
  if (!Number.isInteger(n) || n < 0 || n > MAX_REMAINING) {
    throw new RangeError(`remaining length ${n} out of range`);
  }
  const out = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Uint8Array.from(out);
}

function u16(n) {
  return Uint8Array.of((n >> 8) & 0xff, n & 0xff);
}

// A length-prefixed UTF-8 string [MQTT-1.5.3].
function str(s) {
  const b = typeof s === 'string' ? utf8.encode(s) : s;
  if (b.length > 65535) throw new RangeError('string longer than 65535 bytes');
  const out = new Uint8Array(2 + b.length);
  out.set(u16(b.length), 0);
  out.set(b, 2);
  return out;
}

function bytes(payload) {
  if (payload == null) return new Uint8Array(0);
  if (typeof payload === 'string') return utf8.encode(payload);
  if (payload instanceof Uint8Array) return payload;
  return new Uint8Array(payload);
}

// frame joins the fixed header (first byte, remaining length) and parts.
function frame(first, parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const len = encodeLength(n);
  const out = new Uint8Array(1 + len.length + n);
  out[0] = first;
  out.set(len, 1);
  let o = 1 + len.length;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function encodeConnect({ clientId = '', keepAlive = 30, clean = true, username, password } = {}) {
  if (!Number.isInteger(keepAlive) || keepAlive < 0 || keepAlive > 65535) {
    throw new RangeError('keep alive must be 0..65535 seconds');
  }
  // [MQTT-3.1.2-22] a password only with a user name.
  if (password != null && password !== '' && (username == null || username === '')) {
    throw new Error('a password needs a user name in MQTT 3.1.1');
  }
  const hasUser = username != null && username !== '';
  const hasPass = hasUser && password != null && password !== '';
  const flags = (hasUser ? 0x80 : 0) | (hasPass ? 0x40 : 0) | (clean ? 0x02 : 0);
  const parts = [str('MQTT'), Uint8Array.of(4, flags), u16(keepAlive), str(clientId)];
  if (hasUser) parts.push(str(username));
  if (hasPass) parts.push(str(bytes(password)));
  return frame(CONNECT << 4, parts);
}

// encodeSubscribe: filters is [{filter, qos}]; the fixed header flags are
// 0010 [MQTT-3.8.1-1].
export function encodeSubscribe(id, filters) {
  const parts = [u16(id)];
  for (const f of filters) {
    parts.push(str(f.filter), Uint8Array.of(f.qos | 0));
  }
  return frame((SUBSCRIBE << 4) | 0x02, parts);
}

export function encodeUnsubscribe(id, filters) {
  return frame((UNSUBSCRIBE << 4) | 0x02, [u16(id), ...filters.map((f) => str(f))]);
}

export function encodePublish({ topic, payload, qos = 0, retain = false, dup = false, id = 0 }) {
  const first = (PUBLISH << 4) | (dup ? 0x08 : 0) | ((qos & 3) << 1) | (retain ? 1 : 0);
  const parts = [str(topic)];
  if (qos > 0) parts.push(u16(id));
  parts.push(bytes(payload));
  return frame(first, parts);
}

// encodeAck is PUBACK, PUBREC, PUBREL (flags 0010 [MQTT-3.6.1-1]) or PUBCOMP.
export function encodeAck(type, id) {
  return frame((type << 4) | (type === PUBREL ? 0x02 : 0), [u16(id)]);
}

export const pingreq = () => Uint8Array.of(PINGREQ << 4, 0);
export const disconnect = () => Uint8Array.of(DISCONNECT << 4, 0);

// Decoder splits a byte stream into packets: WebSocket frames need not
// line up with MQTT packets, one may hold several or part of one.
export class Decoder {
  constructor(maxSize = 16 << 20) {
    this.buf = new Uint8Array(0);
    this.max = maxSize;
  }

  // push adds bytes and returns the complete packets, each
  // {type, flags, body}; it throws on a malformed length.
  push(chunk) {
    const add = chunk instanceof Uint8Array ? chunk : new Uint8Array(chunk);
    if (this.buf.length === 0) {
      this.buf = add;
    } else {
      const b = new Uint8Array(this.buf.length + add.length);
      b.set(this.buf, 0);
      b.set(add, this.buf.length);
      this.buf = b;
    }
    const out = [];
    for (;;) {
      const p = this.next();
      if (!p) break;
      out.push(p);
    }
    if (this.buf.length === 0) this.buf = new Uint8Array(0);
    return out;
  }

  next() {
    const b = this.buf;
    if (b.length < 2) return null;
    let len = 0, mul = 1, i = 1;
    for (;;) {
      if (i >= b.length) return null; // the length is not all here yet
      const c = b[i++];
      len += (c & 0x7f) * mul;
      if ((c & 0x80) === 0) break;
      mul *= 128;
      if (i > 4) throw new Error('malformed remaining length');
    }
    if (len > this.max) throw new Error(`packet of ${len} bytes is too large`);
    if (b.length < i + len) return null;
    const p = { type: b[0] >> 4, flags: b[0] & 0x0f, body: b.subarray(i, i + len) };
    this.buf = b.subarray(i + len);
    return p;
  }
}

function readU16(b, o) {
  if (o + 2 > b.length) throw new Error('packet too short');
  return (b[o] << 8) | b[o + 1];
}

export function decodePublish(flags, body) {
  const qos = (flags >> 1) & 3;
  if (qos === 3) throw new Error('PUBLISH with QoS 3');
  const tl = readU16(body, 0);
  if (2 + tl > body.length) throw new Error('PUBLISH topic runs past the packet');
  const topic = text.decode(body.subarray(2, 2 + tl));
  let o = 2 + tl, id = 0;
  if (qos > 0) {
    id = readU16(body, o);
    o += 2;
  }
  return { topic, qos, retain: (flags & 1) === 1, dup: (flags & 8) === 8, id, payload: body.slice(o) };
}

const connackReasons = {
  1: 'unacceptable protocol version',
  2: 'client identifier rejected',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized',
};

// Client is one MQTT connection over WebSocket. Handlers: onMessage(msg)
// with {topic, qos, retain, dup, payload: Uint8Array}, onClose(reason).
export class Client {
  constructor(url, { clientId, keepAlive = 30, username, password } = {}, handlers = {}) {
    this.url = url;
    this.opts = { clientId: clientId || `tern-dashboard-${Math.random().toString(36).slice(2, 10)}`, keepAlive, username, password };
    this.onMessage = handlers.onMessage || (() => {});
    this.onClose = handlers.onClose || (() => {});
    this.decoder = new Decoder();
    this.nextId = 1;
    this.pending = new Map(); // packet id -> {resolve, reject} for SUBACK/UNSUBACK
    this.qos2 = new Set(); // QoS 2 packet ids received, PUBREL not yet
    this.connected = false;
    this.closed = false;
  }

  get clientId() { return this.opts.clientId; }

  // connect resolves when the server accepts the CONNECT.
  connect() {
    return new Promise((resolve, reject) => {
      this.connectWaiter = { resolve, reject };
      let ws;
      try {
        ws = new WebSocket(this.url, 'mqtt');
      } catch (e) {
        reject(e);
        return;
      }
      this.ws = ws;
      ws.binaryType = 'arraybuffer';
      ws.onopen = () => {
        try {
          this.send(encodeConnect({ ...this.opts, clean: true }));
        } catch (e) {
          this.fail(e.message);
        }
      };
      ws.onmessage = (ev) => this.receive(ev.data);
      ws.onerror = () => {}; // onclose follows with the code
      ws.onclose = (ev) => {
        const why = ev.reason || (this.connected ? 'connection closed' : `could not connect to ${this.url}`) + (ev.code && ev.code !== 1000 && ev.code !== 1005 ? ` (code ${ev.code})` : '');
        this.finish(this.closeReason || why);
      };
    });
  }

  send(b) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) throw new Error('not connected');
    this.ws.send(b);
    this.lastSent = Date.now();
  }

  receive(data) {
    if (typeof data === 'string') {
      this.fail('the server sent a text frame; MQTT needs binary frames');
      return;
    }
    let packets;
    try {
      packets = this.decoder.push(new Uint8Array(data));
    } catch (e) {
      this.fail(e.message);
      return;
    }
    for (const p of packets) {
      try {
        this.handle(p);
      } catch (e) {
        this.fail(`bad ${p.type} packet: ${e.message}`);
        return;
      }
    }
  }

  handle(p) {
    switch (p.type) {
      case CONNACK: {
        if (p.body.length !== 2) throw new Error('CONNACK length');
        const rc = p.body[1];
        if (rc !== 0) {
          this.fail(`connection refused: ${connackReasons[rc] || `return code ${rc}`}`);
          return;
        }
        this.connected = true;
        this.startKeepAlive();
        const w = this.connectWaiter;
        this.connectWaiter = null;
        if (w) w.resolve();
        break;
      }
      case PUBLISH: {
        const m = decodePublish(p.flags, p.body);
        if (m.qos === 1) {
          this.send(encodeAck(PUBACK, m.id));
        } else if (m.qos === 2) {
          this.send(encodeAck(PUBREC, m.id));
          if (this.qos2.has(m.id)) return; // a resend before PUBREL: delivered already
          this.qos2.add(m.id);
        }
        this.onMessage(m);
        break;
      }
      case PUBREL:
        this.qos2.delete(readU16(p.body, 0));
        this.send(encodeAck(PUBCOMP, readU16(p.body, 0)));
        break;
      case SUBACK:
      case UNSUBACK: {
        const id = readU16(p.body, 0);
        const w = this.pending.get(id);
        if (w) {
          this.pending.delete(id);
          w.resolve(Array.from(p.body.subarray(2)));
        }
        break;
      }
      case PINGRESP:
        this.pingSent = 0;
        break;
      case PUBACK:
      case PUBREC:
      case PUBCOMP:
        break; // we publish at QoS 0 only
      default:
        throw new Error(`unexpected packet type ${p.type}`);
    }
  }

  // [MQTT-3.1.2-23] send a packet within every keep alive period: a
  // PINGREQ when idle for half of it. No PINGRESP within a period: the
  // connection is dead.
  startKeepAlive() {
    const ka = this.opts.keepAlive * 1000;
    if (!ka) return;
    this.timer = setInterval(() => {
      const now = Date.now();
      if (this.pingSent && now - this.pingSent > ka) {
        this.fail('no PINGRESP within the keep alive period');
        return;
      }
      if (!this.pingSent && now - this.lastSent >= ka / 2) {
        try {
          this.send(pingreq());
          this.pingSent = now;
        } catch (e) {
          this.fail(e.message);
        }
      }
    }, Math.max(100, Math.min(1000, ka / 4)));
  }

  request(bytesFor) {
    const id = this.nextId;
    this.nextId = this.nextId === 65535 ? 1 : this.nextId + 1;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      try {
        this.send(bytesFor(id));
      } catch (e) {
        this.pending.delete(id);
        reject(e);
      }
    });
  }

  // subscribe resolves with the granted QoS; it rejects when the server
  // answers 0x80 (failure).
  async subscribe(filter, qos = 0) {
    const [granted] = await this.request((id) => encodeSubscribe(id, [{ filter, qos }]));
    if (granted === 0x80) throw new Error(`the server refused the subscription to ${filter}`);
    return granted;
  }

  async unsubscribe(filter) {
    await this.request((id) => encodeUnsubscribe(id, [filter]));
  }

  publish(topic, payload, { retain = false } = {}) {
    this.send(encodePublish({ topic, payload, qos: 0, retain }));
  }

  fail(reason) {
    this.closeReason = this.closeReason || reason;
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close();
    this.finish(this.closeReason);
  }

  // close ends the session politely.
  close() {
    this.closeReason = 'disconnected';
    try {
      this.send(disconnect());
    } catch {
      // already gone
    }
    if (this.ws) this.ws.close(1000);
    this.finish('disconnected');
  }

  finish(reason) {
    if (this.closed) return;
    this.closed = true;
    this.connected = false;
    clearInterval(this.timer);
    const err = new Error(reason);
    if (this.connectWaiter) {
      this.connectWaiter.reject(err);
      this.connectWaiter = null;
    }
    for (const w of this.pending.values()) w.reject(err);
    this.pending.clear();
    this.onClose(reason);
  }
}
