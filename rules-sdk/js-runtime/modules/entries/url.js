// Node's `url`: the legacy API (parse, format, resolve) from npm's `url`, and the WHATWG
// `URL` / `URLSearchParams` Node also exports (QuickJS has neither), written here over the
// legacy parser for absolute http(s)-like URLs — what rules and actions build and read.
const legacy = require('url');
const querystring = require('querystring-es3');

const encode = (s) => encodeURIComponent(s).replace(/%20/g, '+');
const decode = (s) => {
  try {
    return decodeURIComponent(String(s).replace(/\+/g, ' '));
  } catch (e) {
    return String(s);
  }
};

class URLSearchParams {
  constructor(init) {
    this._list = [];
    this._url = null;
    if (init === undefined || init === null) return;
    if (typeof init === 'string') this._parse(init);
    else if (init instanceof URLSearchParams) this._list = init._list.map((p) => p.slice());
    else if (typeof init[Symbol.iterator] === 'function') {
      for (const pair of init) this._list.push([String(pair[0]), String(pair[1])]);
    } else if (typeof init === 'object') {
      for (const key of Object.keys(init)) this._list.push([key, String(init[key])]);
    }
  }
  _parse(text) {
    this._list = [];
    const s = text.startsWith('?') ? text.slice(1) : text;
    if (s === '') return;
    for (const part of s.split('&')) {
      if (part === '') continue;
      const at = part.indexOf('=');
      this._list.push(at < 0 ? [decode(part), ''] : [decode(part.slice(0, at)), decode(part.slice(at + 1))]);
    }
  }
  _changed() {
    if (this._url) {
      const q = this.toString();
      this._url._search = q ? `?${q}` : '';
    }
  }
  get size() { return this._list.length; }
  append(name, value) { this._list.push([String(name), String(value)]); this._changed(); }
  delete(name) { this._list = this._list.filter(([k]) => k !== String(name)); this._changed(); }
  get(name) {
    const hit = this._list.find(([k]) => k === String(name));
    return hit ? hit[1] : null;
  }
  getAll(name) { return this._list.filter(([k]) => k === String(name)).map(([, v]) => v); }
  has(name) { return this._list.some(([k]) => k === String(name)); }
  set(name, value) {
    const key = String(name);
    const at = this._list.findIndex(([k]) => k === key);
    if (at < 0) this._list.push([key, String(value)]);
    else {
      this._list[at][1] = String(value);
      this._list = this._list.filter(([k], i) => k !== key || i === at);
    }
    this._changed();
  }
  sort() { this._list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)); this._changed(); }
  forEach(f, self) { for (const [k, v] of this._list) f.call(self, v, k, this); }
  keys() { return this._list.map(([k]) => k)[Symbol.iterator](); }
  values() { return this._list.map(([, v]) => v)[Symbol.iterator](); }
  entries() { return this._list.map((p) => p.slice())[Symbol.iterator](); }
  [Symbol.iterator]() { return this.entries(); }
  toString() { return this._list.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&'); }
}

const DEFAULT_PORTS = { 'http:': '80', 'https:': '443', 'ws:': '80', 'wss:': '443', 'ftp:': '21' };

class URL {
  constructor(input, base) {
    let text = String(input).trim();
    if (base !== undefined) text = legacy.resolve(String(new URL(base)), text);
    const parsed = legacy.parse(text);
    if (!parsed.protocol || (!parsed.host && /^(https?|wss?|ftp):$/.test(parsed.protocol))) {
      throw new TypeError(`Invalid URL: ${input}`);
    }
    this._protocol = parsed.protocol.toLowerCase();
    const auth = parsed.auth ? parsed.auth.split(':') : [];
    this._username = auth[0] || '';
    this._password = auth.slice(1).join(':');
    this._hostname = (parsed.hostname || '').toLowerCase();
    this._port = parsed.port && parsed.port !== DEFAULT_PORTS[this._protocol] ? parsed.port : '';
    this._pathname = parsed.pathname || (parsed.host ? '/' : '');
    this._search = parsed.search && parsed.search !== '?' ? parsed.search : '';
    this._hash = parsed.hash && parsed.hash !== '#' ? parsed.hash : '';
    this._params = null;
  }
  get protocol() { return this._protocol; }
  set protocol(v) { this._protocol = String(v).replace(/:?$/, ':').toLowerCase(); }
  get username() { return this._username; }
  set username(v) { this._username = String(v); }
  get password() { return this._password; }
  set password(v) { this._password = String(v); }
  get hostname() { return this._hostname; }
  set hostname(v) { this._hostname = String(v).toLowerCase(); }
  get port() { return this._port; }
  set port(v) {
    const p = String(v);
    this._port = p === DEFAULT_PORTS[this._protocol] ? '' : p;
  }
  get host() { return this._port ? `${this._hostname}:${this._port}` : this._hostname; }
  set host(v) {
    const [h, p] = String(v).split(':');
    this.hostname = h;
    this.port = p || '';
  }
  get origin() { return `${this._protocol}//${this.host}`; }
  get pathname() { return this._pathname; }
  set pathname(v) {
    const p = String(v);
    this._pathname = p.startsWith('/') ? p : `/${p}`;
  }
  get search() { return this._search; }
  set search(v) {
    const s = String(v);
    this._search = s === '' || s === '?' ? '' : s.startsWith('?') ? s : `?${s}`;
    if (this._params) this._params._parse(this._search);
  }
  get searchParams() {
    if (!this._params) {
      this._params = new URLSearchParams(this._search);
      this._params._url = this;
    }
    return this._params;
  }
  get hash() { return this._hash; }
  set hash(v) {
    const h = String(v);
    this._hash = h === '' || h === '#' ? '' : h.startsWith('#') ? h : `#${h}`;
  }
  get href() {
    const auth = this._username ? `${this._username}${this._password ? `:${this._password}` : ''}@` : '';
    return `${this._protocol}//${auth}${this.host}${this._pathname}${this._search}${this._hash}`;
  }
  set href(v) { Object.assign(this, new URL(v)); }
  toString() { return this.href; }
  toJSON() { return this.href; }
}

module.exports = {
  parse: legacy.parse,
  format: (u) => (u instanceof URL ? u.href : legacy.format(u)),
  resolve: legacy.resolve,
  resolveObject: legacy.resolveObject,
  Url: legacy.Url,
  URL,
  URLSearchParams,
  querystring,
};
