// The globals an Auth0 rule expects, set up once when the runtime is snapshotted (so no
// execution pays for them), and the two entry points the Rust side calls per execution.
// Runs in strict mode inside an arrow so nothing but the listed globals leaks.
(() => {
  'use strict';
  const g = globalThis;
  const hostLog = g.__wardstone_log;
  delete g.__wardstone_log;

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

  // Math.random: a snapshot would replay one frozen state, so every execution reseeds from
  // the host (xorshift128, 32-bit words: no BigInt work per execution).
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

  // `user` and `context` are parsed one property at a time, when the rule first reads it:
  // most rules read a few properties of a 2 KB input, and parsing and re-serializing all of it
  // would cost most of an execution. The host side (Rust) holds each property's JSON text
  // until it is taken. A property never read is unchanged, so it is left out of the output (a
  // merge patch); one read or assigned is output whole. One Proxy handler, built here in the
  // snapshot, serves every execution: starting one costs two Proxy objects, nothing per key.
  const hostTake = g.__wardstone_take;
  const hostKeys = g.__wardstone_keys;
  const hostSettle = g.__wardstone_settle;
  delete g.__wardstone_take;
  delete g.__wardstone_keys;
  delete g.__wardstone_settle;
  const whichOf = new WeakMap();
  const deletedOf = new WeakMap();
  const settle = (target, key) => {
    if (typeof key !== 'string' || Object.prototype.hasOwnProperty.call(target, key)) return;
    const text = hostTake(whichOf.get(target), key, true);
    if (text !== undefined) target[key] = JSON.parse(text);
  };
  const handler = {
    get(target, key, receiver) {
      settle(target, key);
      return Reflect.get(target, key, receiver);
    },
    has(target, key) {
      settle(target, key);
      return Reflect.has(target, key);
    },
    deleteProperty(target, key) {
      if (typeof key === 'string') {
        hostTake(whichOf.get(target), key, false);
        let deleted = deletedOf.get(target);
        if (!deleted) deletedOf.set(target, (deleted = new Set()));
        deleted.add(key);
      }
      return Reflect.deleteProperty(target, key);
    },
    ownKeys(target) {
      for (const key of JSON.parse(hostKeys(whichOf.get(target)))) settle(target, key);
      return Reflect.ownKeys(target);
    },
    getOwnPropertyDescriptor(target, key) {
      settle(target, key);
      return Reflect.getOwnPropertyDescriptor(target, key);
    },
  };
  const lazy = (which) => {
    const target = {};
    whichOf.set(target, which);
    return [new Proxy(target, handler), target];
  };

  const hasOwn = (o, k) => Object.prototype.hasOwnProperty.call(o, k);
  // What goes back for one of the objects the rule was given: the properties it read or wrote
  // (the rest is unchanged) and null for those it deleted. The Rust side then turns each
  // object-valued property into a merge patch against what the rule read (nested removals as
  // null), cheaper there than here.
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

  // `configuration` is parsed (and frozen) when a rule first reads it: most rules don't.
  Object.defineProperty(g, 'configuration', {
    get() {
      const state = run;
      if (!state) return undefined;
      if (state.configuration === undefined) {
        state.configuration = freeze(JSON.parse(state.configurationText));
      }
      return state.configuration;
    },
    enumerable: true,
    configurable: false,
  });

  Object.defineProperties(g, {
    // Auth0 rules sometimes cache in `global`; it exists, but every execution starts afresh.
    global: { value: g, writable: true, configurable: true },
    UnauthorizedError: { value: UnauthorizedError, writable: true, configurable: true },
    console: { value: console, writable: true, configurable: true },
    require: {
      value: function require(name) {
        throw new Error(`require('${name}') is not available in Wardstone rules`);
      },
      writable: true,
      configurable: true,
    },
  });

  let run = null;

  const update = (field, slot) => (userId, metadata) => {
    const state = run;
    if (!state) return Promise.reject(new Error(`auth0.users.${field}: no rule is running`));
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
  g.auth0 = {
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
  // trap in code that runs after `callback` cannot undo it), and QuickJS stops running the
  // rule's code.
  const concludeWithError = (state, error) => {
    state.done = true;
    state.error = error;
    hostSettle(isDenial(error) ? denialOf(error) : undefined);
  };
  const callback = (error, newUser, newContext) => {
    const state = run;
    if (!state) return;
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
  // A throw or a rejection fails the rule whatever was thrown (`throw 0` too).
  const failWith = (e) => {
    const state = run;
    if (!state || state.done) return;
    concludeWithError(state, e !== null && typeof e === 'object' ? e : new Error(`the rule threw ${show(e)}`));
  };

  const start = (rule, configuration, seedHigh, seedLow) => {
    seed(seedHigh, seedLow);
    const [user, userTarget] = lazy(0);
    const [context, contextTarget] = lazy(1);
    run = {
      done: false, error: null, user, context, appMetadata: null, userMetadata: null,
      proxies: [user, context], targets: [userTarget, contextTarget],
    };
    run.configurationText = configuration;
    try {
      const result = rule(user, context, callback);
      if (result && typeof result.then === 'function') result.then(undefined, failWith);
    } catch (e) {
      failWith(e);
    }
  };

  // The output of the execution (rule ABI v1), or a throw that fails it closed.
  const finish = () => {
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
    // For the objects the rule was given, what it read, wrote or deleted.
    return JSON.stringify({
      user: outputOf(state.proxies, state.targets, user),
      context: outputOf(state.proxies, state.targets, state.context),
    });
  };

  Object.defineProperty(g, '__wardstone', { value: Object.freeze({ start, finish }) });
})();
