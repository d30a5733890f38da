// npm's `jsonwebtoken` (v9's API): sign, verify and decode, with the signature made and checked
// by the host (HS256/384/512 with a secret; RS256/384/512, PS256/384/512 and ES256/384 with a
// PEM key) and the claim checks (exp, nbf, aud, iss, sub, jti, maxAge) here, with
// jsonwebtoken's error classes and messages.
const host = __wardstone_host;

class JsonWebTokenError extends Error {
  constructor(message, error) {
    super(message);
    this.name = 'JsonWebTokenError';
    if (error) this.inner = error;
  }
}
class TokenExpiredError extends JsonWebTokenError {
  constructor(message, expiredAt) {
    super(message);
    this.name = 'TokenExpiredError';
    this.expiredAt = expiredAt;
  }
}
class NotBeforeError extends JsonWebTokenError {
  constructor(message, date) {
    super(message);
    this.name = 'NotBeforeError';
    this.date = date;
  }
}

const UNITS = { ms: 1, s: 1000, m: 60000, h: 3600000, d: 86400000, w: 604800000, y: 31557600000 };
// `ms`'s grammar: "2 days", "10h", "7d", "1.5h"; a bare number string is milliseconds.
const milliseconds = (text) => {
  const m = /^(-?(?:\d+)?\.?\d+) *(milliseconds?|msecs?|ms|seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|w|years?|yrs?|y)?$/i.exec(text);
  if (!m) return undefined;
  const unit = (m[2] || 'ms').toLowerCase();
  const key = unit.startsWith('ms') || unit.startsWith('msec') || unit.startsWith('milli') ? 'ms' : unit[0];
  return parseFloat(m[1]) * UNITS[key];
};
const timespan = (value, iat, name) => {
  if (typeof value === 'number') return Math.floor(iat + value);
  if (typeof value === 'string') {
    const ms = milliseconds(value);
    if (ms !== undefined) return Math.floor(iat + ms / 1000);
  }
  throw new Error(`"${name}" should be a number of seconds or string representing a timespan`);
};

const keyOf = (key) => {
  if (typeof key === 'string') return { key, key_encoding: 'utf8' };
  if (key && ArrayBuffer.isView(key)) {
    const bytes = new Uint8Array(key.buffer, key.byteOffset, key.byteLength);
    return { key: Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(''), key_encoding: 'hex' };
  }
  if (key && typeof key._hex === 'string') return { key: key._hex, key_encoding: 'hex' };
  if (key && typeof key === 'object' && typeof key.key === 'string') return { key: key.key, key_encoding: 'utf8' };
  throw new JsonWebTokenError('secretOrPrivateKey must have a value');
};
const isPem = (key) => typeof key === 'string' && key.includes('-----BEGIN');

// Decoding is the host's (base64url and JSON inside QuickJS cost a million instructions).
const decode = (token, options) => {
  const opts = options || {};
  if (typeof token !== 'string') return null;
  let decoded;
  try {
    decoded = host.crypto({ op: 'jwt_decode', token });
  } catch (e) {
    return null;
  }
  const { header, payload } = decoded;
  if (header === null || typeof header !== 'object') return null;
  if (typeof payload !== 'object' && opts.json) return null;
  return opts.complete ? { header, payload, signature: token.split('.')[2] } : payload;
};

const deliver = (callback, work) => {
  if (typeof callback !== 'function') return work();
  let result;
  let error = null;
  try {
    result = work();
  } catch (e) {
    error = e;
  }
  Promise.resolve().then(() => (error ? callback(error) : callback(null, result)));
  return undefined;
};

const sign = (payload, secretOrPrivateKey, options, callback) => {
  if (typeof options === 'function') {
    callback = options;
    options = {};
  }
  const opts = options || {};
  return deliver(callback, () => {
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
      throw new Error('payload must be a plain object (string and Buffer payloads are not supported)');
    }
    if (secretOrPrivateKey === undefined || secretOrPrivateKey === null || secretOrPrivateKey === '') {
      throw new Error('secretOrPrivateKey must have a value');
    }
    const alg = opts.algorithm || (isPem(secretOrPrivateKey) ? (/EC PRIVATE KEY/.test(secretOrPrivateKey) ? 'ES256' : 'RS256') : 'HS256');
    if (alg === 'none') throw new Error('"algorithm" none is not allowed');
    const claims = Object.assign({}, payload);
    const now = Math.floor(Date.now() / 1000);
    const iat = typeof claims.iat === 'number' ? claims.iat : now;
    if (!opts.noTimestamp) claims.iat = iat;
    else delete claims.iat;
    if (opts.expiresIn !== undefined) {
      if (claims.exp !== undefined) throw new Error('Bad "options.expiresIn" option the payload already has an "exp" property.');
      claims.exp = timespan(opts.expiresIn, iat, 'expiresIn');
    }
    if (opts.notBefore !== undefined) {
      if (claims.nbf !== undefined) throw new Error('Bad "options.notBefore" option the payload already has an "nbf" property.');
      claims.nbf = timespan(opts.notBefore, iat, 'notBefore');
    }
    for (const [option, claim] of [['audience', 'aud'], ['issuer', 'iss'], ['subject', 'sub'], ['jwtid', 'jti']]) {
      if (opts[option] === undefined) continue;
      if (claims[claim] !== undefined) throw new Error(`Bad "options.${option}" option. The payload already has an "${claim}" property.`);
      claims[claim] = opts[option];
    }
    const header = opts.header || {};
    const request = Object.assign({ op: 'jwt_sign', alg, claims }, keyOf(secretOrPrivateKey));
    const kid = opts.keyid !== undefined ? opts.keyid : header.kid;
    if (kid !== undefined) request.kid = String(kid);
    if (header.typ !== undefined) request.typ = String(header.typ);
    return host.crypto(request).token;
  });
};

const matches = (expected, actual) => {
  const list = Array.isArray(expected) ? expected : [expected];
  const values = Array.isArray(actual) ? actual : [actual];
  return values.some((v) => list.some((e) => (e instanceof RegExp ? e.test(v) : e === v)));
};

const verify = (token, secretOrPublicKey, options, callback) => {
  if (typeof options === 'function') {
    callback = options;
    options = {};
  }
  const opts = Object.assign({}, options);
  return deliver(callback, () => {
    if (!token) throw new JsonWebTokenError('jwt must be provided');
    if (typeof token !== 'string') throw new JsonWebTokenError('jwt must be a string');
    if (token.split('.').length !== 3) throw new JsonWebTokenError('jwt malformed');
    const decoded = decode(token, { complete: true });
    if (!decoded) throw new JsonWebTokenError('invalid token');
    if (!decoded.signature) throw new JsonWebTokenError('jwt signature is required');
    if (secretOrPublicKey === undefined || secretOrPublicKey === null || secretOrPublicKey === '') {
      throw new JsonWebTokenError('secret or public key must be provided');
    }
    // The key decides the family, whatever `algorithms` lists: an HS256 token checked with a
    // public key's text as the secret is the classic forgery (jsonwebtoken 9 refuses it too).
    const pem = isPem(secretOrPublicKey);
    const allowed = (opts.algorithms || (pem
      ? ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384']
      : ['HS256', 'HS384', 'HS512'])).filter((a) => pem !== String(a).startsWith('HS'));
    const alg = decoded.header.alg;
    if (!allowed.includes(alg)) throw new JsonWebTokenError('invalid algorithm');
    try {
      host.crypto(Object.assign({ op: 'jwt_verify', alg, token, check_exp: false }, keyOf(secretOrPublicKey)));
    } catch (e) {
      throw new JsonWebTokenError('invalid signature', e);
    }
    const payload = decoded.payload;
    const clock = opts.clockTimestamp !== undefined ? opts.clockTimestamp : Math.floor(Date.now() / 1000);
    const tolerance = opts.clockTolerance || 0;
    if (payload.nbf !== undefined && !opts.ignoreNotBefore) {
      if (typeof payload.nbf !== 'number') throw new JsonWebTokenError('invalid nbf value');
      if (payload.nbf > clock + tolerance) throw new NotBeforeError('jwt not active', new Date(payload.nbf * 1000));
    }
    if (payload.exp !== undefined && !opts.ignoreExpiration) {
      if (typeof payload.exp !== 'number') throw new JsonWebTokenError('invalid exp value');
      if (clock >= payload.exp + tolerance) throw new TokenExpiredError('jwt expired', new Date(payload.exp * 1000));
    }
    if (opts.audience !== undefined && !matches(opts.audience, payload.aud)) {
      throw new JsonWebTokenError(`jwt audience invalid. expected: ${[].concat(opts.audience).join(' or ')}`);
    }
    if (opts.issuer !== undefined && !matches(opts.issuer, payload.iss)) {
      throw new JsonWebTokenError(`jwt issuer invalid. expected: ${[].concat(opts.issuer).join(',')}`);
    }
    if (opts.subject !== undefined && payload.sub !== opts.subject) {
      throw new JsonWebTokenError(`jwt subject invalid. expected: ${opts.subject}`);
    }
    if (opts.jwtid !== undefined && payload.jti !== opts.jwtid) {
      throw new JsonWebTokenError(`jwt jwtid invalid. expected: ${opts.jwtid}`);
    }
    if (opts.maxAge !== undefined) {
      if (typeof payload.iat !== 'number') throw new JsonWebTokenError('iat required when maxAge is specified');
      const max = timespan(opts.maxAge, payload.iat, 'maxAge');
      if (clock >= max + tolerance) throw new TokenExpiredError('maxAge exceeded', new Date(max * 1000));
    }
    return opts.complete ? decoded : payload;
  });
};

module.exports = { sign, verify, decode, JsonWebTokenError, TokenExpiredError, NotBeforeError };
