// The peer of the token-endpoint benchmark (benches/login.rs, BENCH_PEER): node-oidc-provider,
// from npm (pinned by package-lock.json), with everything in memory. One client authenticates
// with client_secret_basic and PKCE; the ID token is RS256 (2048-bit key), the access and refresh
// tokens are the provider's opaque ones (it signs one JWT per exchange, Wardstone two).
//
// Codes come from GET /bench/codes?n=N (minted the way the provider's own authorization endpoint
// stores them: a saved Grant, then an AuthorizationCode with the PKCE challenge), outside the
// timed phase, as Wardstone's come from logins outside it. Prints "listening <port>" when ready.
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const port = Number(process.env.PEER_PORT);
const { CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, CODE_CHALLENGE } = process.env;
const SCOPE = 'openid profile email offline_access';

// The provider's own memory adapter is an LRU of 1,000 entries: a benchmark's codes would be
// evicted before they are used. This one keeps every entry (the run is short).
const storage = new Map();
class Unbounded {
  constructor(model) { this.model = model; }
  key(id) { return `${this.model}:${id}`; }
  async upsert(id, payload) {
    storage.set(this.key(id), payload);
    if (payload.grantId) {
      const members = storage.get(`grant:${payload.grantId}`) ?? [];
      members.push(this.key(id));
      storage.set(`grant:${payload.grantId}`, members);
    }
    if (this.model === 'Session') storage.set(`sessionUid:${payload.uid}`, id);
  }
  async find(id) { return storage.get(this.key(id)); }
  async findByUid(uid) { return this.find(storage.get(`sessionUid:${uid}`)); }
  async findByUserCode() { return undefined; }
  async consume(id) { storage.get(this.key(id)).consumed = Math.floor(Date.now() / 1000); }
  async destroy(id) { storage.delete(this.key(id)); }
  async revokeByGrantId(grantId) {
    for (const key of storage.get(`grant:${grantId}`) ?? []) storage.delete(key);
    storage.delete(`grant:${grantId}`);
  }
}

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench', alg: 'RS256', use: 'sig' };

const provider = new Provider(`http://127.0.0.1:${port}`, {
  adapter: Unbounded,
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  }],
  jwks: { keys: [jwk] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  async findAccount(_ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return { sub, email: `${sub}@example.com`, email_verified: true, name: 'Bench User' };
      },
    };
  },
  features: { devInteractions: { enabled: false } },
  // Codes outlive a long phase (BENCH_SECONDS); the rest as Wardstone's defaults.
  ttl: { AuthorizationCode: 600, Grant: 14 * 86400, AccessToken: 3600, IdToken: 3600, RefreshToken: 14 * 86400 },
});

async function mint(n) {
  const client = await provider.Client.find(CLIENT_ID);
  const codes = [];
  for (let i = 0; i < n; i += 1) {
    const accountId = `user${i % 16}`;
    const grant = new provider.Grant({ accountId, clientId: CLIENT_ID });
    grant.addOIDCScope(SCOPE);
    const grantId = await grant.save();
    const code = new provider.AuthorizationCode({
      accountId,
      grantId,
      client,
      redirectUri: REDIRECT_URI,
      scope: SCOPE,
      codeChallenge: CODE_CHALLENGE,
      codeChallengeMethod: 'S256',
      authTime: Math.floor(Date.now() / 1000),
    });
    codes.push(await code.save());
  }
  return codes;
}

const callback = provider.callback();
http.createServer((req, res) => {
  const url = new URL(req.url, 'http://peer');
  if (url.pathname !== '/bench/codes') return callback(req, res);
  mint(Number(url.searchParams.get('n') ?? 1)).then((codes) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(codes));
  }, (err) => { res.statusCode = 500; res.end(String(err)); });
}).listen(port, '127.0.0.1', () => console.log(`listening ${port}`));
