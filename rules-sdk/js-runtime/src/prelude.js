// The globals Auth0 code expects, set up once when the runtime is snapshotted (so no execution
// pays for them), and the entry points the Rust side calls per execution: `startRule` /
// `finishRule` for an Auth0 Rule, `startAction` / `finishAction` for an Auth0 Action.
//
// One instance serves every JavaScript rule and action of one trigger run, one after the
// other. So that none can change what the next one sees, the intrinsics and the globals set
// up here are frozen at the end (`lockdown`), and each run starts from fresh per-run state.
// Runs in strict mode inside an arrow so nothing but the listed globals leaks.
(() => {
  'use strict';
  const g = globalThis;
  const take = (name) => {
    const value = g[name];
    delete g[name];
    return value;
  };
  const hostLog = take('__wardstone_log');
  const hostTake = take('__wardstone_take');
  const hostKeys = take('__wardstone_keys');
  const hostGetter = take('__wardstone_getter');
  const hostSettle = take('__wardstone_settle');
  const hostFetch = take('__wardstone_fetch');
  const hostCrypto = take('__wardstone_crypto');
  const hostEmit = take('__wardstone_emit');
  const hostEmitValue = take('__wardstone_emit_value');
  const hostIsPromise = take('__wardstone_is_promise');
  const NativePromise = Promise;
  const hostModule = take('__wardstone_module');
  const hasOwn = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

  class UnauthorizedError extends Error {
    constructor(message) {
      super(message);
      this.name = 'UnauthorizedError';
    }
  }

  const show = (value) => {
    if (typeof value === 'string') return value;
    if (value instanceof Error) return `${value.name}: ${value.message}`;
    if (typeof value === 'function') return `[function ${value.name || 'anonymous'}]`;
    try {
      const text = JSON.stringify(value);
      return text === undefined ? String(value) : text;
    } catch (_) {
      return String(value);
    }
  };
  const console = {};
  for (const [name, level] of [['debug', 0], ['log', 1], ['info', 1], ['warn', 2], ['error', 3]]) {
    console[name] = (...args) => hostLog(level, args.map(show).join(' '));
  }

  const freeze = (value) => {
    if (value && typeof value === 'object') {
      Object.values(value).forEach(freeze);
      Object.freeze(value);
    }
    return value;
  };

  // Math.random: a snapshot would replay one frozen state, so every run reseeds from the host
  // (xorshift128, 32-bit words: no BigInt work per execution).
  let x = 1, y = 2, z = 3, w = 4;
  const seed = (high, low) => {
    x = high | 0;
    y = low | 0;
    z = (high ^ 0x9e3779b9) | 0;
    w = (low ^ 0x7f4a7c15) | 0;
    if ((x | y | z | w) === 0) w = 1;
  };
  const next = () => {
    const t = x ^ (x << 11);
    x = y;
    y = z;
    z = w;
    w = (w ^ (w >>> 19) ^ t ^ (t >>> 8)) | 0;
    return w >>> 0;
  };
  Math.random = function random() {
    // 53 bits: 27 from one draw, 26 from the next.
    return ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
  };

  // The objects a run is given are parsed one property at a time, when the code first reads
  // it: most code reads a few properties of a 2 KB input, and parsing and re-serializing all
  // of it would cost most of an execution. The host side (Rust) holds each property's JSON
  // text until it is taken. For a rule, a property never read is unchanged, so it is left out
  // of the output (a merge patch); one read or assigned is output whole. One Proxy handler
  // per kind of object (a rule's user and context, an action's event and event.user), built
  // here in the snapshot, serves every run: a trap knows its slot without a lookup, and a
  // read of a property already there costs one trap call and one property read.
  const deletedOf = new WeakMap();
  const handlerFor = (which) => {
    const settle = (target, key) => {
      if (typeof key !== 'string' || hasOwn(target, key)) return;
      const text = hostTake(which, key, true);
      // `true`: a post-login event's user, itself lazy (most actions read a field or two).
      if (text === true) target[key] = lazy(3)[0];
      else if (text !== undefined) target[key] = JSON.parse(text);
    };
    // `get`: native (see the runtime's `lazy_get`), the same as `settle` then `target[key]`;
    // `lazy` is hoisted, so the user's lazy object is made when first read.
    return {
      get: hostGetter(which, () => lazy(3)[0]),
      has(target, key) {
        settle(target, key);
        return Reflect.has(target, key);
      },
      deleteProperty(target, key) {
        if (typeof key === 'string') {
          hostTake(which, key, false);
          let deleted = deletedOf.get(target);
          if (!deleted) deletedOf.set(target, (deleted = new Set()));
          deleted.add(key);
        }
        return Reflect.deleteProperty(target, key);
      },
      ownKeys(target) {
        for (const key of JSON.parse(hostKeys(which))) settle(target, key);
        return Reflect.ownKeys(target);
      },
      getOwnPropertyDescriptor(target, key) {
        settle(target, key);
        return Reflect.getOwnPropertyDescriptor(target, key);
      },
    };
  };
  const handlers = [0, 1, 2, 3].map(handlerFor);
  const lazy = (which) => {
    const target = {};
    return [new Proxy(target, handlers[which]), target];
  };

  // What goes back for one of the objects a rule was given: the properties it read or wrote
  // (the rest is unchanged) and null for those it deleted. The Rust side then turns each
  // object-valued property into a merge patch against what the rule read.
  const outputOf = (proxies, targets, object) => {
    const i = proxies.indexOf(object);
    if (i < 0) return object;
    const target = targets[i];
    const out = {};
    for (const key of Object.keys(target)) out[key] = target[key];
    const deleted = deletedOf.get(target);
    if (deleted) for (const key of deleted) if (!hasOwn(target, key)) out[key] = null;
    return out;
  };

  // ---- outbound HTTP: fetch over wardstone.http_fetch (the tenant's allow-list) ----

  class Headers {
    constructor(init) {
      this._map = new Map();
      if (init instanceof Headers) init.forEach((v, k) => this.append(k, v));
      else if (Array.isArray(init)) for (const [k, v] of init) this.append(k, v);
      else if (init && typeof init === 'object') for (const k of Object.keys(init)) this.append(k, init[k]);
    }
    append(name, value) {
      const key = String(name).toLowerCase();
      const old = this._map.get(key);
      this._map.set(key, old === undefined ? String(value) : `${old}, ${value}`);
    }
    set(name, value) { this._map.set(String(name).toLowerCase(), String(value)); }
    get(name) {
      const value = this._map.get(String(name).toLowerCase());
      return value === undefined ? null : value;
    }
    has(name) { return this._map.has(String(name).toLowerCase()); }
    delete(name) { this._map.delete(String(name).toLowerCase()); }
    forEach(f, self) { this._map.forEach((v, k) => f.call(self, v, k, this)); }
    entries() { return this._map.entries(); }
    keys() { return this._map.keys(); }
    values() { return this._map.values(); }
    [Symbol.iterator]() { return this._map.entries(); }
    toJSON() { return Object.fromEntries(this._map); }
  }

  const STATUS_TEXT = { 200: 'OK', 201: 'Created', 204: 'No Content', 301: 'Moved Permanently',
    302: 'Found', 304: 'Not Modified', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden',
    404: 'Not Found', 409: 'Conflict', 429: 'Too Many Requests', 500: 'Internal Server Error',
    502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' };

  class Response {
    constructor(body, init = {}) {
      this._body = body === undefined || body === null ? '' : String(body);
      this.status = init.status === undefined ? 200 : init.status;
      this.statusText = init.statusText || STATUS_TEXT[this.status] || '';
      this.ok = this.status >= 200 && this.status < 300;
      this.headers = new Headers(init.headers);
      this.url = init.url || '';
      this.redirected = false;
      this.bodyUsed = false;
    }
    text() {
      this.bodyUsed = true;
      return Promise.resolve(this._body);
    }
    json() {
      this.bodyUsed = true;
      try {
        return Promise.resolve(JSON.parse(this._body));
      } catch (e) {
        return Promise.reject(e);
      }
    }
  }

  // One request through the host: a Promise of a Response, or a rejection (a TypeError, as a
  // browser's fetch gives for a network failure) carrying the host's reason.
  const fetch = (resource, init) => {
    try {
      const options = init || {};
      const url = typeof resource === 'string' ? resource : resource && resource.url ? resource.url : String(resource);
      const headers = {};
      new Headers(options.headers).forEach((v, k) => { headers[k] = v; });
      const request = { method: String(options.method || 'GET').toUpperCase(), url: String(url), headers };
      if (options.body !== undefined && options.body !== null) {
        request.body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
      }
      const answer = JSON.parse(hostFetch(JSON.stringify(request)));
      if (answer.error !== undefined) {
        return Promise.reject(new TypeError(`fetch ${request.url} failed: ${answer.error}`));
      }
      return Promise.resolve(new Response(answer.body, { status: answer.status, headers: answer.headers, url: request.url }));
    } catch (e) {
      return Promise.reject(e);
    }
  };

  // Host-backed cryptography: HMACs, hashes and JWTs are computed by the host, not by
  // JavaScript arithmetic.
  const crypto = (request) => {
    const answer = JSON.parse(hostCrypto(JSON.stringify(request)));
    if (answer.error !== undefined) throw new Error(answer.error);
    return answer;
  };

  // ---- Auth0 Rules ----

  // `configuration` is parsed (and frozen) when a rule first reads it: most rules don't.
  Object.defineProperty(g, 'configuration', {
    get() {
      const state = run;
      if (!state || state.configurationText === undefined) return undefined;
      if (state.configuration === undefined) {
        state.configuration = freeze(JSON.parse(state.configurationText));
      }
      return state.configuration;
    },
    enumerable: true,
    configurable: false,
  });

  // The state of the current run (a rule or an action), or null between runs.
  let run = null;

  const update = (field, slot) => (userId, metadata) => {
    const state = run;
    if (!state || state.kind !== 'rule') return Promise.reject(new Error(`auth0.users.${field}: no rule is running`));
    if (userId !== state.user.user_id) {
      return Promise.reject(new Error(
        `auth0.users.${field}: only the user who is logging in (${state.user.user_id}) can be updated`));
    }
    if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
      return Promise.reject(new TypeError(`auth0.users.${field}: metadata must be an object`));
    }
    state[slot] = JSON.parse(JSON.stringify(metadata));
    return Promise.resolve();
  };
  const auth0 = {
    users: {
      updateAppMetadata: update('updateAppMetadata', 'appMetadata'),
      updateUserMetadata: update('updateUserMetadata', 'userMetadata'),
    },
  };

  const isDenial = (error) =>
    error instanceof UnauthorizedError || (error !== null && typeof error === 'object' && error.name === 'UnauthorizedError');
  const denialOf = (error) => JSON.stringify({
    error: { kind: 'unauthorized', message: error.message === undefined ? '' : String(error.message) },
  });
  // The first outcome is final: the host is told at once (a denial is recorded there, so a
  // trap in code that runs after it cannot undo it), and QuickJS stops running the code.
  const concludeWithError = (state, error) => {
    state.done = true;
    state.error = error;
    hostSettle(state.kind === 'rule' && isDenial(error) ? denialOf(error) : undefined);
  };
  const callback = (error, newUser, newContext) => {
    const state = run;
    if (!state || state.kind !== 'rule') return;
    if (state.done) {
      console.warn('callback was called more than once; only the first call counts');
      return;
    }
    if (error) {
      concludeWithError(state, error);
      return;
    }
    state.done = true;
    if (newUser !== undefined) state.user = newUser;
    if (newContext !== undefined) state.context = newContext;
    hostSettle(undefined);
  };
  // A throw or a rejection fails the run whatever was thrown (`throw 0` too).
  const failWith = (e) => {
    const state = run;
    if (!state || state.done) return;
    concludeWithError(state, e !== null && typeof e === 'object' ? e : new Error(`the code threw ${show(e)}`));
  };

  const startRule = (rule, configuration, seedHigh, seedLow) => {
    seed(seedHigh, seedLow);
    const [user, userTarget] = lazy(0);
    const [context, contextTarget] = lazy(1);
    run = {
      kind: 'rule', done: false, error: null, user, context, appMetadata: null, userMetadata: null,
      proxies: [user, context], targets: [userTarget, contextTarget], configurationText: configuration,
    };
    try {
      const result = rule(user, context, callback);
      if (result && typeof result.then === 'function') result.then(undefined, failWith);
    } catch (e) {
      failWith(e);
    }
  };

  // The output of a rule (rule ABI v1), or a throw that fails it closed.
  const finishRule = () => {
    const state = run;
    run = null;
    if (!state || !state.done) {
      throw new Error('the rule finished without calling callback');
    }
    const error = state.error;
    if (error) {
      if (isDenial(error)) return denialOf(error);
      throw error;
    }
    const user = state.user;
    if (!user || typeof user !== 'object') throw new TypeError('callback was given a user that is not an object');
    if (!state.context || typeof state.context !== 'object') throw new TypeError('callback was given a context that is not an object');
    if (state.appMetadata) user.app_metadata = Object.assign({}, user.app_metadata, state.appMetadata);
    if (state.userMetadata) user.user_metadata = Object.assign({}, user.user_metadata, state.userMetadata);
    return JSON.stringify({
      user: outputOf(state.proxies, state.targets, user),
      context: outputOf(state.proxies, state.targets, state.context),
    });
  };

  // ---- Auth0 Actions ----

  // Auth0's documented limits for api.cache.
  const CACHE_ENTRIES = 20, CACHE_KEY_BYTES = 64, CACHE_VALUE_BYTES = 4096, CACHE_TOTAL_BYTES = 8192;

  const current = (what) => {
    const state = run;
    if (!state || state.kind !== 'action') throw new Error(`${what}: no action is running`);
    return state;
  };
  // A capability Wardstone does not have ends the action, and the trigger fails closed with a
  // message naming it: a security requirement is never dropped silently.
  // What an action asks for goes to the Rust side at once, as JSON made now (a later change
  // to the object passed does not count): kinds as `__wardstone_emit` numbers them.
  const EMIT = { deny: 0, idToken: 1, accessToken: 2, addScope: 3, removeScope: 4, appMetadata: 5,
    userMetadata: 6, cache: 7, redirect: 8, unsupported: 9 };
  const unsupported = (name) => function () {
    const state = current(name);
    if (state.done) return;
    hostEmit(EMIT.unsupported, name, '');
    state.done = true;
    hostSettle(undefined);
    throw new Error(`${name} is not supported by this server; the login was refused`);
  };
  const unsupportedNamespace = (prefix) => new Proxy({}, {
    get(_, name) {
      return typeof name === 'string' ? unsupported(`${prefix}.${name}`) : undefined;
    },
  });
  // `hostEmitValue` sends the value's JSON.stringify text (null for what it leaves out),
  // made natively for strings, integers and lists of them.
  const claimSetter = (kind, what) => (name, value) => {
    current(what);
    if (typeof name !== 'string' || name === '') throw new TypeError(`${what}: the claim name must be a non-empty string`);
    hostEmitValue(kind, name, value);
  };
  const metadataSetter = (kind, what) => (key, value) => {
    current(what);
    if (typeof key !== 'string' || key === '') throw new TypeError(`${what}: the key must be a non-empty string`);
    hostEmitValue(kind, key, value);
  };
  const scopeChanger = (kind, what) => (scope) => {
    current(what);
    if (typeof scope !== 'string' || scope === '' || /\s/.test(scope)) {
      throw new TypeError(`${what}: a scope is one non-empty word`);
    }
    hostEmit(kind, scope, '');
  };
  // The facts the host gave this run (cache, rules run, redirect state, ...): parsed when an
  // `api` method first needs them, which most actions never do.
  const factsOf = (state) => {
    if (state.facts === undefined) state.facts = JSON.parse(state.factsText);
    return state.facts;
  };
  const cacheOf = (state) => {
    if (state.cache === undefined) state.cache = factsOf(state).cache || {};
    return state.cache;
  };
  const utf8Length = (text) => {
    let n = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      n += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c < 0xdc00 ? (i++, 4) : 3;
    }
    return n;
  };
  const cache = {
    get(key) {
      const state = current('api.cache.get');
      const entry = cacheOf(state)[key];
      if (!entry) return undefined;
      if (entry.expires_at !== undefined && entry.expires_at <= Date.now()) return undefined;
      return { value: entry.value, expires_at: entry.expires_at };
    },
    set(key, value, options) {
      const state = current('api.cache.set');
      if (typeof key !== 'string' || utf8Length(key) > CACHE_KEY_BYTES) {
        return { type: 'error', code: 'invalid_argument', message: `cache keys are strings of at most ${CACHE_KEY_BYTES} bytes` };
      }
      if (typeof value !== 'string' || utf8Length(value) > CACHE_VALUE_BYTES) {
        return { type: 'error', code: 'invalid_argument', message: `cache values are strings of at most ${CACHE_VALUE_BYTES} bytes` };
      }
      const opts = options || {};
      let expiresAt = Date.now() + 15 * 60 * 1000;
      if (typeof opts.ttl === 'number') expiresAt = Date.now() + opts.ttl;
      if (typeof opts.expires_at === 'number') expiresAt = opts.expires_at;
      const next = Object.assign({}, cacheOf(state), { [key]: { value, expires_at: expiresAt } });
      const keys = Object.keys(next);
      let total = 0;
      for (const k of keys) total += utf8Length(k) + utf8Length(next[k].value);
      if (keys.length > CACHE_ENTRIES || total > CACHE_TOTAL_BYTES) {
        return { type: 'error', code: 'cache_full', message: `the cache holds at most ${CACHE_ENTRIES} entries and ${CACHE_TOTAL_BYTES} bytes` };
      }
      state.cache = next;
      hostEmit(EMIT.cache, key, JSON.stringify({ value, expires_at: expiresAt }));
      return { type: 'success', record: { value, expires_at: expiresAt } };
    },
    delete(key) {
      const state = current('api.cache.delete');
      if (typeof key !== 'string') return { type: 'error', code: 'invalid_argument', message: 'cache keys are strings' };
      const next = Object.assign({}, cacheOf(state));
      delete next[key];
      state.cache = next;
      hostEmit(EMIT.cache, key, 'null');
      return { type: 'success' };
    },
  };

  const redirect = {
    sendUserTo(url, options) {
      const state = current('api.redirect.sendUserTo');
      if (factsOf(state).can_redirect !== true) {
        return unsupported('api.redirect.sendUserTo outside an interactive login (a refresh or a test)')();
      }
      if (typeof url !== 'string' || !/^https?:\/\//i.test(url)) {
        throw new TypeError('api.redirect.sendUserTo: the URL must be an absolute http(s) URL');
      }
      const query = {};
      const given = options && options.query;
      if (given && typeof given === 'object') {
        for (const k of Object.keys(given)) query[k] = String(given[k]);
      }
      hostEmit(EMIT.redirect, '', JSON.stringify({ url, query }));
    },
    encodeToken(options) {
      const state = current('api.redirect.encodeToken');
      const o = options || {};
      if (typeof o.secret !== 'string' || o.secret === '') throw new TypeError('api.redirect.encodeToken: a secret is required');
      const ttl = typeof o.expiresInSeconds === 'number' ? o.expiresInSeconds : 900;
      const now = Math.floor(Date.now() / 1000);
      const facts = factsOf(state);
      const claims = Object.assign({}, o.payload || {}, {
        iss: facts.issuer, sub: facts.subject, iat: now, exp: now + ttl, ip: facts.ip, state: facts.resume_state,
      });
      return crypto({ op: 'jwt_sign', alg: 'HS256', key: o.secret, claims }).token;
    },
    validateToken(options) {
      const state = current('api.redirect.validateToken');
      const o = options || {};
      if (typeof o.secret !== 'string' || o.secret === '') throw new TypeError('api.redirect.validateToken: a secret is required');
      const name = o.tokenParameterName || 'session_token';
      const request = state.event.request || {};
      const token = (request.query && request.query[name]) || (request.body && request.body[name]);
      if (typeof token !== 'string') throw new Error(`api.redirect.validateToken: no ${name} parameter was sent back`);
      const claims = crypto({ op: 'jwt_verify', alg: 'HS256', key: o.secret, token }).claims;
      const facts = factsOf(state);
      if (facts.continue_state === undefined || facts.continue_state === null || claims.state !== facts.continue_state) {
        throw new Error('api.redirect.validateToken: the token belongs to another login (state)');
      }
      if (claims.sub !== undefined && claims.sub !== facts.subject) throw new Error('api.redirect.validateToken: the token was issued for another user');
      if (claims.iss !== undefined && claims.iss !== facts.issuer) throw new Error('api.redirect.validateToken: the token was issued by another tenant');
      return claims;
    },
  };

  const postLoginApi = {
    access: {
      deny(reason) {
        const state = current('api.access.deny');
        if (state.done) return;
        hostEmit(EMIT.deny, '', JSON.stringify({ reason: reason === undefined ? '' : String(reason) }));
        state.done = true;
        hostSettle(undefined);
      },
    },
    idToken: { setCustomClaim: claimSetter(EMIT.idToken, 'api.idToken.setCustomClaim') },
    accessToken: {
      setCustomClaim: claimSetter(EMIT.accessToken, 'api.accessToken.setCustomClaim'),
      addScope: scopeChanger(EMIT.addScope, 'api.accessToken.addScope'),
      removeScope: scopeChanger(EMIT.removeScope, 'api.accessToken.removeScope'),
    },
    user: {
      setAppMetadata: metadataSetter(EMIT.appMetadata, 'api.user.setAppMetadata'),
      setUserMetadata: metadataSetter(EMIT.userMetadata, 'api.user.setUserMetadata'),
    },
    cache,
    redirect,
    rules: {
      wasExecuted(ruleId) {
        return (factsOf(current('api.rules.wasExecuted')).executed_rules || []).indexOf(ruleId) >= 0;
      },
    },
    multifactor: unsupportedNamespace('api.multifactor'),
    authentication: unsupportedNamespace('api.authentication'),
    samlResponse: unsupportedNamespace('api.samlResponse'),
    prompt: unsupportedNamespace('api.prompt'),
    session: unsupportedNamespace('api.session'),
    refreshToken: unsupportedNamespace('api.refreshToken'),
    transaction: unsupportedNamespace('api.transaction'),
    validation: unsupportedNamespace('api.validation'),
  };

  const CREDENTIALS_DENIAL_CODES = ['invalid_scope', 'invalid_request', 'server_error'];
  const credentialsExchangeApi = {
    access: {
      deny(code, reason) {
        const state = current('api.access.deny');
        if (state.done) return;
        if (CREDENTIALS_DENIAL_CODES.indexOf(code) < 0) {
          throw new TypeError(`api.access.deny: the code must be one of ${CREDENTIALS_DENIAL_CODES.join(', ')}`);
        }
        hostEmit(EMIT.deny, '', JSON.stringify({ code, reason: reason === undefined ? '' : String(reason) }));
        state.done = true;
        hostSettle(undefined);
      },
    },
    accessToken: { setCustomClaim: claimSetter(EMIT.accessToken, 'api.accessToken.setCustomClaim') },
    cache,
  };

  // One action run: `entry` of `handlers` with the event of this trigger and the cache as it is
  // now. Settles when the handler's promise does (or the action denies or asks for what this
  // server cannot do, which ends it at once).
  const startAction = (handlers, entry, trigger, factsText, seedHigh, seedLow) => {
    seed(seedHigh, seedLow);
    const event = lazy(2)[0];
    const state = { kind: 'action', done: false, error: null, event, factsText, facts: undefined, cache: undefined };
    run = state;
    const api = trigger === 'credentials-exchange' ? credentialsExchangeApi : postLoginApi;
    const fn = handlers && handlers[entry];
    if (typeof fn !== 'function') {
      if (entry === 'onContinuePostLogin') {
        failWith(new Error('the action redirected the user but exports no onContinuePostLogin'));
      } else {
        console.warn(`the action exports no ${entry}; nothing to do`);
        state.done = true;
        hostSettle(undefined);
      }
      return;
    }
    try {
      const result = fn(event, api);
      if (result && typeof result.then === 'function') {
        // A promise `await` takes as it is (an async handler's): handed to the runtime, which
        // queues `settleAction` where the reaction of this `.then` would run.
        if (result.constructor === NativePromise && hostIsPromise(result)) return result;
        result.then(() => {
          if (!state.done) {
            state.done = true;
            hostSettle(undefined);
          }
        }, failWith);
      } else if (!state.done) {
        state.done = true;
        hostSettle(undefined);
      }
    } catch (e) {
      failWith(e);
    }
  };

  // The handler's promise settled (`how`: 1 fulfilled, 2 rejected, with `result`): what the
  // `.then` above does, run by the runtime as a job.
  const settleAction = (how, result) => {
    const state = run;
    if (!state || state.kind !== 'action' || state.done) return;
    if (how === 2) {
      failWith(result);
    } else {
      state.done = true;
      hostSettle(undefined);
    }
  };

  // Nothing when the action finished (what it asked for went out through `hostEmit`), or a
  // throw that fails it closed.
  const finishAction = () => {
    const state = run;
    run = null;
    if (!state) throw new Error('no action ran');
    if (state.error) throw state.error;
    if (!state.done) throw new Error('the action did not finish: its promise never settled');
  };

  // ---- modules ----

  // Node's `crypto`, the part Auth0 code uses, backed by the host (aws-lc): hashes and HMACs
  // over UTF-8, hex or base64 input, random bytes, UUIDs, constant-time comparison. Bytes are
  // `ByteString`s (hex inside) with Buffer's `toString(encoding)` and `length`.
  class ByteString {
    // Every ByteString is a host answer, which carries both encodings.
    constructor(answer) {
      this._hex = answer.hex;
      this._base64 = answer.base64;
    }
    get length() { return this._hex.length / 2; }
    toString(encoding) {
      const e = encoding === undefined ? 'hex' : String(encoding).toLowerCase();
      if (e === 'hex') return this._hex;
      if (e === 'base64') return this._base64;
      if (e === 'base64url') return this._base64.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
      throw new TypeError(`ByteString.toString: encoding ${encoding} is not supported (hex, base64, base64url)`);
    }
    equals(other) { return other instanceof ByteString && timingSafeEqual(this, other); }
    toJSON() { return { type: 'Buffer', hex: this._hex }; }
  }
  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const inputOf = (data, encoding) => {
    if (data instanceof ByteString) return [data._hex, 'hex'];
    if (ArrayBuffer.isView(data)) {
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      let hex = '';
      for (const b of bytes) hex += (b < 16 ? '0' : '') + b.toString(16);
      return [hex, 'hex'];
    }
    if (typeof data !== 'string') throw new TypeError('crypto: data must be a string, a Buffer or bytes from crypto');
    const e = encoding === undefined ? 'utf8' : String(encoding).toLowerCase().replace('-', '');
    if (e === 'utf8' || e === 'hex' || e === 'base64') return [data, e];
    throw new TypeError(`crypto: input encoding ${encoding} is not supported (utf8, hex, base64)`);
  };
  const utf8Hex = (text) => {
    let hex = '';
    for (const ch of unescape(encodeURIComponent(text))) hex += ch.charCodeAt(0).toString(16).padStart(2, '0');
    return hex;
  };
  const hexOf = ([data, encoding]) => {
    if (encoding === 'hex') return data;
    if (encoding === 'utf8') return utf8Hex(data);
    return base64ToHex(data);
  };
  const base64ToHex = (b64) => {
    const clean = b64.replace(/[^A-Za-z0-9+/]/g, '');
    let bits = 0, value = 0, hex = '';
    for (const c of clean) {
      value = (value << 6) | B64.indexOf(c);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        hex += ((value >> bits) & 255).toString(16).padStart(2, '0');
      }
    }
    return hex;
  };
  // One digest: the updates are joined (as hex when their encodings differ) and sent once.
  class Digest {
    constructor(op, alg, key) {
      this._op = op;
      this._alg = String(alg);
      this._key = key;
      this._parts = [];
      this._done = false;
    }
    update(data, encoding) {
      if (this._done) throw new Error('Digest already called');
      this._parts.push(inputOf(data, encoding));
      return this;
    }
    digest(encoding) {
      if (this._done) throw new Error('Digest already called');
      this._done = true;
      const same = this._parts.every((p) => p[1] === (this._parts[0] || [0, 'utf8'])[1]);
      const [data, dataEncoding] = same && this._parts.length
        ? [this._parts.map((p) => p[0]).join(''), this._parts[0][1]]
        : [this._parts.map(hexOf).join(''), 'hex'];
      const request = { op: this._op, alg: this._alg.replace(/-/g, ''), data, data_encoding: dataEncoding };
      if (this._op === 'hmac') {
        request.key = this._key[0];
        request.key_encoding = this._key[1];
      }
      const bytes = new ByteString(crypto(request));
      return encoding === undefined ? bytes : bytes.toString(encoding);
    }
  }
  const timingSafeEqual = (a, b) => {
    const x = a instanceof ByteString ? a._hex : String(a);
    const y = b instanceof ByteString ? b._hex : String(b);
    if (x.length !== y.length) throw new RangeError('Input buffers must have the same byte length');
    let diff = 0;
    for (let i = 0; i < x.length; i++) diff |= x.charCodeAt(i) ^ y.charCodeAt(i);
    return diff === 0;
  };
  const randomAnswer = (n) => {
    if (!Number.isInteger(n) || n < 0) throw new RangeError('randomBytes: size must be a non-negative integer');
    return n === 0 ? { hex: '', base64: '' } : crypto({ op: 'random', bytes: n });
  };
  const randomHex = (n) => randomAnswer(n).hex;
  const randomUUID = () => {
    const h = randomHex(16);
    const variant = ((parseInt(h[16], 16) & 3) | 8).toString(16);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
  };
  const cryptoModule = {
    createHash: (alg) => new Digest('hash', alg),
    createHmac: (alg, key) => new Digest('hmac', alg, inputOf(key)),
    randomBytes: (n, cb) => {
      const bytes = new ByteString(randomAnswer(n));
      if (typeof cb === 'function') {
        cb(null, bytes);
        return undefined;
      }
      return bytes;
    },
    randomUUID,
    timingSafeEqual,
    getHashes: () => ['md5', 'sha1', 'sha256', 'sha384', 'sha512'],
  };
  // Web Crypto's synchronous part (what browser builds of npm packages call).
  const webCrypto = {
    getRandomValues(array) {
      if (!ArrayBuffer.isView(array)) throw new TypeError('getRandomValues: an integer typed array is required');
      const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
      const hex = randomHex(bytes.length);
      for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.substr(i * 2, 2), 16);
      return array;
    },
    randomUUID,
  };

  // `require` inside actions and rules: the built-in module set (SPEC §15): the host-backed
  // `crypto` here, and the bundled modules (modules/entries), whose bytecode is in the
  // snapshot but which are loaded into an instance only when first required there, then
  // shared by the instance's later scripts — frozen, so one cannot change what the next sees.
  // Anything else is refused at upload, and throws here if it got past that check. Auth0's
  // versioned form (`crypto@1.0.0`) names the same module.
  const builtins = Object.assign(Object.create(null), { crypto: cryptoModule });
  // What the runtime gives its own modules: host crypto, and failing the running rule or
  // action with an error thrown where no caller can catch it (a `request` callback: Node would
  // crash the rule with it; swallowed, the rule would only "never call back").
  // The `auth0` module's ManagementClient reaches the user logging in through these.
  const moduleHost = Object.freeze({
    crypto,
    fail: failWith,
    ruleUser: () => (run && run.kind === 'rule' ? run.user : undefined),
    users: auth0.users,
  });
  let loaded = null;
  const requireModule = function require(name) {
    // Not a regular expression: one costs more than the rest of a require.
    const text = String(name);
    const at = text.indexOf('@', 1);
    const bare = at < 0 ? text : text.slice(0, at);
    if (hasOwn(builtins, bare)) return builtins[bare];
    if (loaded === null) loaded = new Map();
    const cached = loaded.get(bare);
    if (cached !== undefined) return cached.exports;
    const wrapper = hostModule(bare);
    if (typeof wrapper !== 'function') throw new Error(`require('${name}') is not available in Wardstone`);
    const module = { exports: {} };
    // A cycle between built-ins sees the exports as they stand, as Node's require does.
    loaded.set(bare, module);
    try {
      wrapper.call(module.exports, module.exports, module, requireModule, moduleHost);
    } catch (e) {
      loaded.delete(bare);
      throw e;
    }
    freezeModule(module.exports);
    return module.exports;
  };
  // The exports and what hangs directly off them (lodash's ~300 functions, a class's
  // prototype): what a script could replace for the next one. Deeper objects are a module's
  // own business and freezing them all costs more than the load.
  const freezeModule = (exports) => {
    if ((typeof exports !== 'object' && typeof exports !== 'function') || exports === null) return;
    Object.freeze(exports);
    for (const key of Object.getOwnPropertyNames(exports)) {
      const value = exports[key];
      if ((typeof value === 'object' || typeof value === 'function') && value !== null) {
        Object.freeze(value);
        if (typeof value === 'function' && value.prototype) Object.freeze(value.prototype);
      }
    }
    if (typeof exports === 'function' && exports.prototype) Object.freeze(exports.prototype);
  };
  // Node's globals that live in modules: loaded on first use.
  const lazyGlobal = (name, from) => ({
    get() { return requireModule(from)[name]; },
    configurable: true,
  });

  Object.defineProperties(g, {
    // Auth0 rules sometimes cache in `global`; it exists, but every run starts afresh.
    global: { value: g, writable: true, configurable: true },
    UnauthorizedError: { value: UnauthorizedError, writable: true, configurable: true },
    console: { value: console, writable: true, configurable: true },
    require: { value: requireModule, writable: true, configurable: true },
    fetch: { value: fetch, writable: true, configurable: true },
    Headers: { value: Headers, writable: true, configurable: true },
    Response: { value: Response, writable: true, configurable: true },
    auth0: { value: auth0, writable: true, configurable: true },
    crypto: { value: webCrypto, writable: true, configurable: true },
    Buffer: lazyGlobal('Buffer', 'buffer'),
    URL: lazyGlobal('URL', 'url'),
    URLSearchParams: lazyGlobal('URLSearchParams', 'url'),
  });

  // ---- lockdown: what one run could change for the next is frozen ----

  // Freezing an intrinsic prototype makes assigning an inherited name (`Foo.prototype.toString
  // = ...`, `err.name = ...`) fail — JavaScript's "override mistake". As SES does, the
  // properties code commonly overrides become accessors whose setter defines the property on
  // the object assigned to instead.
  const tame = (proto, names) => {
    for (const name of names) {
      const desc = Object.getOwnPropertyDescriptor(proto, name);
      if (!desc || !('value' in desc) || !desc.configurable) continue;
      const value = desc.value;
      Object.defineProperty(proto, name, {
        get() { return value; },
        set(v) {
          if (this === proto) throw new TypeError(`Cannot assign to read only property '${String(name)}' of a frozen intrinsic`);
          Object.defineProperty(this, name, { value: v, writable: true, enumerable: true, configurable: true });
        },
        enumerable: desc.enumerable,
        configurable: false,
      });
    }
  };
  tame(Object.prototype, Object.getOwnPropertyNames(Object.prototype).filter((n) => n !== '__proto__'));
  tame(Function.prototype, ['constructor', 'toString', 'name']);
  tame(Error.prototype, ['constructor', 'name', 'message', 'toString']);
  for (const E of [TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError]) {
    tame(E.prototype, ['constructor', 'name', 'message']);
  }
  tame(Array.prototype, ['constructor', 'toString']);
  tame(Promise.prototype, ['constructor', 'then']);

  Object.defineProperty(g, '__wardstone', {
    value: Object.freeze({ startRule, finishRule, startAction, settleAction, finishAction }),
  });

  const frozen = new Set([g]);
  const deepFreeze = (value) => {
    if ((typeof value !== 'object' && typeof value !== 'function') || value === null || frozen.has(value)) return;
    frozen.add(value);
    Object.freeze(value);
    for (const key of Reflect.ownKeys(value)) {
      const desc = Object.getOwnPropertyDescriptor(value, key);
      if (!desc) continue;
      if ('value' in desc) deepFreeze(desc.value);
      else {
        deepFreeze(desc.get);
        deepFreeze(desc.set);
      }
    }
    deepFreeze(Object.getPrototypeOf(value));
  };
  for (const key of Reflect.ownKeys(g)) {
    if (key === 'global' || key === 'configuration') continue;
    const desc = Object.getOwnPropertyDescriptor(g, key);
    // The global object itself (`globalThis`) stays extensible: code may add its own globals.
    if ('value' in desc && desc.value !== g) deepFreeze(desc.value);
    if (desc.configurable) {
      if ('value' in desc) Object.defineProperty(g, key, { writable: false, configurable: false });
      else Object.defineProperty(g, key, { configurable: false });
    }
  }
  deepFreeze(postLoginApi);
  deepFreeze(credentialsExchangeApi);
  // The modules are shared by every run of the instance: frozen like the intrinsics.
  deepFreeze(builtins);
})();
