// npm's `auth0` (v2): the ManagementClient subset Auth0's rule templates use — reading and
// updating the user who is logging in, in a rule. Wardstone gives a rule no Management API
// token and no other tenant's (or other user's) data: calls about anyone else, root
// attributes, roles and everything else are refused with an error naming what was asked,
// never answered with an empty result. Metadata updates are merged (as the API's PATCH is)
// and saved when the login completes. In an action, use `api.user.setAppMetadata`.
const host = __wardstone_host;

const refuse = (what, why) => Promise.reject(new Error(`auth0 ManagementClient.${what}: ${why}`));

// A promise, and the node-style callback when one is given (as the client offers both).
const settle = (promise, cb) => {
  if (typeof cb !== 'function') return promise;
  promise.then((value) => cb(null, value), (error) => cb(error));
  return undefined;
};

const userOrRefusal = (what, id) => {
  const user = host.ruleUser();
  if (!user) return { refusal: refuse(what, 'only rules can use the Management API client; actions have api.user') };
  if (id !== user.user_id) {
    return { refusal: refuse(what, `a rule reaches only the user logging in (${user.user_id}), not ${JSON.stringify(id)}`) };
  }
  return { user };
};

const idOf = (params) => (params && typeof params === 'object' ? params.id : params);
const copy = (value) => JSON.parse(JSON.stringify(value));

class ManagementClient {
  constructor(options) {
    this.options = options || {};
    const self = this;
    this.users = {
      get: (params, cb) => self.getUser(params, cb),
      update: (params, data, cb) => self.updateUser(params, data, cb),
      updateAppMetadata: (params, data, cb) => self.updateAppMetadata(params, data, cb),
      updateUserMetadata: (params, data, cb) => self.updateUserMetadata(params, data, cb),
      getByEmail: (email, cb) => self.getUsersByEmail(email, cb),
    };
  }

  getUser(params, cb) {
    const { user, refusal } = userOrRefusal('getUser', idOf(params));
    return settle(refusal || Promise.resolve(copy(user)), cb);
  }

  getUsersByEmail(email, cb) {
    const user = host.ruleUser();
    if (user && typeof email === 'string' && user.email && email.toLowerCase() === String(user.email).toLowerCase()) {
      return settle(Promise.resolve([copy(user)]), cb);
    }
    return settle(refuse('getUsersByEmail', 'a rule reaches only the user logging in'), cb);
  }

  updateAppMetadata(params, metadata, cb) {
    return settle(this._metadata('updateAppMetadata', 'app_metadata', params, metadata), cb);
  }

  updateUserMetadata(params, metadata, cb) {
    return settle(this._metadata('updateUserMetadata', 'user_metadata', params, metadata), cb);
  }

  updateUser(params, data, cb) {
    const fields = Object.keys(data || {});
    const other = fields.filter((f) => f !== 'app_metadata' && f !== 'user_metadata');
    if (other.length) {
      return settle(refuse('updateUser', `rules can change only app_metadata and user_metadata, not ${other.join(', ')}`), cb);
    }
    const steps = [];
    if (data.app_metadata !== undefined) steps.push(() => this._metadata('updateUser', 'app_metadata', params, data.app_metadata));
    if (data.user_metadata !== undefined) steps.push(() => this._metadata('updateUser', 'user_metadata', params, data.user_metadata));
    const done = steps.reduce((p, step) => p.then(step), Promise.resolve()).then(() => this.getUser(params));
    return settle(done, cb);
  }

  _metadata(what, field, params, metadata) {
    const { user, refusal } = userOrRefusal(what, idOf(params));
    if (refusal) return refusal;
    if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
      return refuse(what, 'metadata must be an object');
    }
    const merged = Object.assign({}, user[field], metadata);
    const update = field === 'app_metadata' ? host.users.updateAppMetadata : host.users.updateUserMetadata;
    return update(user.user_id, merged).then(() => {
      user[field] = merged;
      return copy(user);
    });
  }
}

// Everything else the client has: refused by name rather than `undefined is not a function`.
const refusing = (target) => new Proxy(target, {
  get(object, name, receiver) {
    // `then` stays undefined: the client is not a promise (awaiting it must not hang).
    if (typeof name !== 'string' || name in object || name === 'then' || name === 'toJSON') {
      return Reflect.get(object, name, receiver);
    }
    return () => refuse(name, 'not available in Wardstone');
  },
});

class AuthenticationClient {
  constructor(options) {
    this.options = options || {};
    return refusing(this);
  }
}

module.exports = {
  ManagementClient: new Proxy(ManagementClient, {
    construct(target, args) {
      return refusing(new target(...args));
    },
  }),
  AuthenticationClient,
};
