// Node's `buffer` (the global `Buffer` too): a Uint8Array with Node's encodings (utf8, hex,
// base64, base64url, latin1/binary, ascii) — what rules use Buffer for: encoding strings.
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

const normal = (encoding) => {
  const e = String(encoding === undefined ? 'utf8' : encoding).toLowerCase().replace('-', '');
  if (e === 'utf8' || e === 'hex' || e === 'base64' || e === 'base64url' || e === 'ascii') return e;
  if (e === 'latin1' || e === 'binary') return 'latin1';
  if (e === 'ucs2' || e === 'utf16le') throw new TypeError(`Buffer: encoding ${encoding} is not supported`);
  throw new TypeError(`Unknown encoding: ${encoding}`);
};

const bytesOf = (text, encoding) => {
  switch (normal(encoding)) {
    case 'hex': {
      const out = [];
      for (let i = 0; i + 1 < text.length; i += 2) {
        const b = parseInt(text.substr(i, 2), 16);
        if (Number.isNaN(b)) break;
        out.push(b);
      }
      return out;
    }
    case 'base64':
    case 'base64url': {
      const clean = text.replace(/-/g, '+').replace(/_/g, '/').replace(/[^A-Za-z0-9+/]/g, '');
      const out = [];
      let bits = 0;
      let value = 0;
      for (const c of clean) {
        value = ((value << 6) | B64.indexOf(c)) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
          bits -= 8;
          out.push((value >> bits) & 255);
        }
      }
      return out;
    }
    case 'latin1':
    case 'ascii':
      return Array.from(text, (c) => c.charCodeAt(0) & 255);
    default: {
      const binary = unescape(encodeURIComponent(text));
      return Array.from(binary, (c) => c.charCodeAt(0));
    }
  }
};

class Buffer extends Uint8Array {
  // Node's legacy forms too (`new Buffer(string, encoding)`, `new Buffer(array)`), which
  // Auth0-era rules use for keys: a Uint8Array would make an empty buffer of a string.
  constructor(value, encodingOrOffset, length) {
    if (typeof value === 'string') super(bytesOf(value, encodingOrOffset));
    else if (Array.isArray(value)) super(value);
    else if (value === undefined) super(0);
    else if (value instanceof ArrayBuffer) super(value, encodingOrOffset || 0, length);
    else super(value);
  }

  static from(value, encodingOrOffset, length) {
    if (typeof value === 'string') return new Buffer(bytesOf(value, encodingOrOffset));
    if (value instanceof ArrayBuffer) return new Buffer(value, encodingOrOffset || 0, length);
    if (value && typeof value.toString === 'function' && typeof value._hex === 'string') {
      return new Buffer(bytesOf(value._hex, 'hex'));
    }
    if (value && (ArrayBuffer.isView(value) || Array.isArray(value))) return new Buffer(Array.from(value));
    if (value && value.type === 'Buffer' && Array.isArray(value.data)) return new Buffer(value.data);
    throw new TypeError('The first argument must be a string, Buffer, ArrayBuffer or array');
  }
  static alloc(size, fill, encoding) {
    const b = new Buffer(size);
    if (typeof fill === 'number') b.fill(fill);
    else if (fill !== undefined) {
      const pattern = bytesOf(String(fill), encoding);
      if (pattern.length) for (let i = 0; i < size; i++) b[i] = pattern[i % pattern.length];
    }
    return b;
  }
  static allocUnsafe(size) { return new Buffer(size); }
  static isBuffer(value) { return value instanceof Buffer; }
  static isEncoding(encoding) {
    try {
      normal(encoding);
      return true;
    } catch (e) {
      return false;
    }
  }
  static byteLength(value, encoding) {
    return typeof value === 'string' ? bytesOf(value, encoding).length : value.byteLength;
  }
  static concat(list, total) {
    const size = total === undefined ? list.reduce((n, b) => n + b.length, 0) : total;
    const out = new Buffer(size);
    let at = 0;
    for (const b of list) {
      if (at >= size) break;
      out.set(b.subarray(0, size - at), at);
      at += b.length;
    }
    return out;
  }
  toString(encoding, start, end) {
    const bytes = this.subarray(start || 0, end === undefined ? this.length : end);
    switch (normal(encoding)) {
      case 'hex':
        return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
      case 'base64':
      case 'base64url': {
        let out = '';
        for (let i = 0; i < bytes.length; i += 3) {
          const n = (bytes[i] << 16) | ((bytes[i + 1] || 0) << 8) | (bytes[i + 2] || 0);
          out += B64[(n >> 18) & 63] + B64[(n >> 12) & 63];
          out += i + 1 < bytes.length ? B64[(n >> 6) & 63] : '=';
          out += i + 2 < bytes.length ? B64[n & 63] : '=';
        }
        return normal(encoding) === 'base64' ? out : out.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
      }
      case 'latin1':
      case 'ascii': {
        let text = '';
        for (const b of bytes) text += String.fromCharCode(normal(encoding) === 'ascii' ? b & 127 : b);
        return text;
      }
      default: {
        let binary = '';
        for (const b of bytes) binary += String.fromCharCode(b);
        try {
          return decodeURIComponent(escape(binary));
        } catch (e) {
          return binary;
        }
      }
    }
  }
  toJSON() { return { type: 'Buffer', data: Array.from(this) }; }
  equals(other) { return this.length === other.length && this.every((b, i) => b === other[i]); }
  slice(start, end) { return this.subarray(start, end); }
  subarray(start, end) {
    const view = Uint8Array.prototype.subarray.call(this, start, end);
    return new Buffer(view.buffer, view.byteOffset, view.length);
  }
  write(text, offset, encoding) {
    const bytes = bytesOf(text, encoding);
    this.set(bytes.slice(0, this.length - (offset || 0)), offset || 0);
    return Math.min(bytes.length, this.length - (offset || 0));
  }
}

module.exports = { Buffer, constants: { MAX_LENGTH: 2 ** 31 - 1 } };
