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
  // the host (xorshift128+, 53 random bits per number).
  let s0 = 1n, s1 = 2n;
  const MASK = (1n << 64n) - 1n;
  Math.random = function random() {
    let x = s0;
    const y = s1;
    s0 = y;
    x = (x ^ (x << 23n)) & MASK;
    s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return Number(((s1 + y) & MASK) >> 11n) / 9007199254740992;
  };

  Object.defineProperties(g, {
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

  const start = (rule, input, seedHigh, seedLow) => {
    s0 = (BigInt.asUintN(32, BigInt(seedHigh)) << 32n) | BigInt.asUintN(32, BigInt(seedLow));
    s1 = s0 ^ 0x9e3779b97f4a7c15n;
    if (s0 === 0n) s0 = 1n;
    const parsed = JSON.parse(input);
    const user = parsed.user || {};
    const context = parsed.context || {};
    run = { done: false, error: null, user, context, appMetadata: null, userMetadata: null };
    const state = run;
    g.configuration = freeze(parsed.configuration || {});
    const update = (field) => (userId, metadata) => {
      if (userId !== user.user_id) {
        return Promise.reject(new Error(
          `auth0.users.${field}: only the user who is logging in (${user.user_id}) can be updated`));
      }
      if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
        return Promise.reject(new TypeError(`auth0.users.${field}: metadata must be an object`));
      }
      state[field === 'updateAppMetadata' ? 'appMetadata' : 'userMetadata'] =
        JSON.parse(JSON.stringify(metadata));
      return Promise.resolve();
    };
    g.auth0 = {
      users: {
        updateAppMetadata: update('updateAppMetadata'),
        updateUserMetadata: update('updateUserMetadata'),
      },
    };
    const callback = (error, newUser, newContext) => {
      if (state.done) {
        console.warn('callback was called more than once; only the first call counts');
        return;
      }
      state.done = true;
      if (error) {
        state.error = error;
        return;
      }
      if (newUser !== undefined) state.user = newUser;
      if (newContext !== undefined) state.context = newContext;
    };
    try {
      const result = rule(user, context, callback);
      if (result && typeof result.then === 'function') {
        result.then(undefined, (e) => callback(e === undefined || e === null ? new Error(String(e)) : e));
      }
    } catch (e) {
      callback(e === undefined || e === null ? new Error(String(e)) : e);
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
      if (error instanceof UnauthorizedError || (error && error.name === 'UnauthorizedError')) {
        const message = error.message === undefined ? '' : String(error.message);
        return JSON.stringify({ error: { kind: 'unauthorized', message } });
      }
      throw error;
    }
    const user = state.user;
    if (!user || typeof user !== 'object') throw new TypeError('callback was given a user that is not an object');
    if (!state.context || typeof state.context !== 'object') throw new TypeError('callback was given a context that is not an object');
    if (state.appMetadata) user.app_metadata = Object.assign({}, user.app_metadata, state.appMetadata);
    if (state.userMetadata) user.user_metadata = Object.assign({}, user.user_metadata, state.userMetadata);
    return JSON.stringify({ user, context: state.context });
  };

  Object.defineProperty(g, '__wardstone', { value: Object.freeze({ start, finish }) });
})();
