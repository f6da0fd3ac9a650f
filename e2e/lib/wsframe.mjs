// Minimal RFC 6455 framing. Server side (the reference server in
// tests/chromium-sanity.test.mjs): expects masked client frames, writes
// unmasked frames; no extensions are negotiated, so RSV bits must be 0.
// Client side (tests/ws-close-codes.test.mjs): writes any frame, including
// broken ones, and reads the gateway's unmasked frames.

export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa };

export function encodeFrame(opcode, payload = Buffer.alloc(0)) {
  const len = payload.length;
  let header;
  if (len < 126) {
    header = Buffer.from([0x80 | opcode, len]);
  } else if (len < 0x10000) {
    header = Buffer.alloc(4);
    header[0] = 0x80 | opcode;
    header[1] = 126;
    header.writeUInt16BE(len, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x80 | opcode;
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([header, payload]);
}

// Incremental parser: push() bytes, get back complete frames.
export class FrameParser {
  constructor() {
    this.buf = Buffer.alloc(0);
  }

  push(chunk) {
    this.buf = Buffer.concat([this.buf, chunk]);
    const frames = [];
    for (;;) {
      const b = this.buf;
      if (b.length < 2) break;
      const fin = (b[0] & 0x80) !== 0;
      const rsv = b[0] & 0x70;
      const opcode = b[0] & 0x0f;
      const masked = (b[1] & 0x80) !== 0;
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      if (rsv !== 0) throw new Error('RSV bits set but no extension negotiated');
      if (!masked) throw new Error('client frame not masked');
      if (b.length < off + 4 + len) break;
      const mask = b.subarray(off, off + 4);
      const payload = Buffer.from(b.subarray(off + 4, off + 4 + len));
      for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
      frames.push({ fin, opcode, payload });
      this.buf = b.subarray(off + 4 + len);
    }
    return frames;
  }
}

/**
 * A client frame with the given first byte (FIN, RSV bits, opcode), masked
 * unless `masked` is false. Nothing is checked: broken frames are the point.
 */
export function encodeClientFrame(first, payload = Buffer.alloc(0), { masked = true } = {}) {
  const len = payload.length;
  const m = masked ? 0x80 : 0;
  let header;
  if (len < 126) {
    header = Buffer.from([first, m | len]);
  } else if (len < 0x10000) {
    header = Buffer.alloc(4);
    header[0] = first;
    header[1] = m | 126;
    header.writeUInt16BE(len, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = first;
    header[1] = m | 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  if (!masked) return Buffer.concat([header, payload]);
  const mask = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= mask[i & 3];
  return Buffer.concat([header, mask, body]);
}

/**
 * Server frames in `buf`, all complete: [{ fin, opcode, payload }]. Throws on
 * a masked or truncated frame. A close frame also gets `code` and `reason`.
 */
export function parseServerFrames(buf) {
  const frames = [];
  let b = buf;
  while (b.length > 0) {
    if (b.length < 2) throw new Error(`truncated frame header: ${b.toString('hex')}`);
    const fin = (b[0] & 0x80) !== 0;
    const opcode = b[0] & 0x0f;
    if (b[1] & 0x80) throw new Error('server frame is masked');
    let len = b[1] & 0x7f;
    let off = 2;
    if (len === 126) {
      len = b.readUInt16BE(2);
      off = 4;
    } else if (len === 127) {
      len = Number(b.readBigUInt64BE(2));
      off = 10;
    }
    if (b.length < off + len) throw new Error(`truncated frame: ${b.toString('hex')}`);
    const payload = Buffer.from(b.subarray(off, off + len));
    const f = { fin, opcode, payload };
    if (opcode === OP.CLOSE && len >= 2) {
      f.code = payload.readUInt16BE(0);
      f.reason = payload.subarray(2).toString('utf8');
    }
    frames.push(f);
    b = b.subarray(off + len);
  }
  return frames;
}
