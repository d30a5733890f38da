// Auth0's `@auth0/rule-utilities` (0.1.0 / 0.2.0: github.com/auth0/rule-utilities, MIT; never
// published on npm), written to the same API over Wardstone's pieces: the redirect is Rules'
// `context.redirect` (honoured through `/continue`, where the rules run again with
// `context.protocol === 'redirect-callback'`), session tokens are the host-signed HS256 JWTs of
// `jsonwebtoken`, and metadata updates go through the rule's `auth0.users` (the user logging
// in only; saved when the login completes).
const jwt = require('jsonwebtoken');

// The claim that marks a session token a rule sent out.
const OUTBOUND = 'https://wardstone.dev/outbound';

const noRedirectProtocols = [
  'oauth2-resource-owner',
  'oauth2-refresh-token',
  'oauth2-password',
  'redirect-callback',
];

class Auth0RedirectRuleUtilities {
  constructor(user, context, configuration) {
    this.context = context || {};
    this.user = user || {};
    this.noRedirectProtocols = noRedirectProtocols;
    const config = configuration || {};
    this.tokenSecret = config.SESSION_TOKEN_SECRET;
    this.tokenExpiresIn = config.SESSION_TOKEN_EXPIRES_IN || '3d';
    this.verify = jwt.verify;
    this.sign = jwt.sign;
  }

  get redirectUrl() {
    return this.context.redirect && this.context.redirect.url;
  }

  get queryParams() {
    return (this.context.request && this.context.request.query) || {};
  }

  get protocolCanRedirect() {
    return !this.noRedirectProtocols.includes(this.context.protocol);
  }

  get isRedirectCallback() {
    return this.context.protocol === 'redirect-callback';
  }

  get canRedirect() {
    if (this.redirectUrl) return false;
    if (this.context.multifactor) return false;
    if (this.queryParams.prompt === 'none') return false;
    return this.protocolCanRedirect;
  }

  createSessionToken(additionalClaims = {}) {
    const request = this.context.request || {};
    // Marked as ours: the token a rule sends out must not come back as the page's answer
    // (the browser carries it, so the user could hand it straight to /continue).
    const claims = Object.assign(
      { ip: request.ip, iss: `https://${request.hostname}/`, sub: this.user.user_id },
      additionalClaims,
      { [OUTBOUND]: true },
    );
    return this.sign(claims, this.tokenSecret, { expiresIn: this.tokenExpiresIn });
  }

  validateSessionToken(verifyOptions = {}) {
    const request = this.context.request || {};
    const payload = this.verify(
      this.queryParams.session_token,
      this.tokenSecret,
      Object.assign({}, verifyOptions, { subject: this.user.user_id, issuer: `https://${request.hostname}/` }),
    );
    if (!payload.exp) throw new Error('Expired token');
    if (payload[OUTBOUND]) throw new Error('The session token is the one sent to the page, not its answer');
    // A page that puts the login's `state` in its answer binds it to this login.
    if (payload.state !== undefined && payload.state !== this.queryParams.state) {
      throw new Error('The session token belongs to another login (state)');
    }
    return payload;
  }

  doRedirect(url, options = {}) {
    if (!this.canRedirect || !url) throw new Error('Cannot redirect');
    // 0.1.0 took the session token itself as the second argument.
    const opts = typeof options === 'string' ? { sessionToken: options } : options || {};
    const { sessionToken, generateSessionToken = true } = opts;
    let token;
    if (sessionToken && typeof sessionToken === 'string') token = sessionToken;
    else if (generateSessionToken === true) token = this.createSessionToken();
    let target = url;
    if (token) target += `${target.includes('?') ? '&' : '?'}session_token=${token}`;
    this.context.redirect = { url: target };
  }
}

class Auth0UserUpdateUtilities {
  constructor(user, auth0, namespace) {
    this.auth0 = auth0;
    this.updatedUserData = {};
    this.userId = user.user_id;
    this.user = user;
    this.user.user_metadata = user.user_metadata || {};
    this.user.app_metadata = user.app_metadata || {};
    this.isNamespaced = !!namespace && typeof namespace === 'string';
    if (this.isNamespaced) {
      this.namespace = namespace;
      this.user.user_metadata[namespace] = user.user_metadata[namespace] || {};
      this.user.app_metadata[namespace] = user.app_metadata[namespace] || {};
    }
  }

  setUser(key, value) {
    this.user[key] = value;
    this.updatedUserData[key] = value;
  }

  setUserMeta(key, value) {
    if (this.isNamespaced && key !== this.namespace) this.user.user_metadata[this.namespace][key] = value;
    else this.user.user_metadata[key] = value;
  }

  setAppMeta(key, value) {
    if (this.isNamespaced && key !== this.namespace) this.user.app_metadata[this.namespace][key] = value;
    else this.user.app_metadata[key] = value;
  }

  getUserMeta(key) {
    return this.isNamespaced && key !== this.namespace
      ? this.user.user_metadata[this.namespace][key]
      : this.user.user_metadata[key];
  }

  getAppMeta(key) {
    return this.isNamespaced && key !== this.namespace
      ? this.user.app_metadata[this.namespace][key]
      : this.user.app_metadata[key];
  }

  async updateUser() {
    if (Object.keys(this.updatedUserData).length === 0) return;
    throw new Error('Auth0UserUpdateUtilities.updateUser: Wardstone rules can change only app_metadata and user_metadata');
  }

  async updateUserMeta() {
    await this.auth0.users.updateUserMetadata(this.userId, this.user.user_metadata);
  }

  async updateAppMeta() {
    await this.auth0.users.updateAppMetadata(this.userId, this.user.app_metadata);
  }
}

module.exports = { Auth0RedirectRuleUtilities, Auth0UserUpdateUtilities, noRedirectProtocols };
