// Reads a tenant setting (configuration) and records the first login in app_metadata through
// auth0.users.updateAppMetadata, with async/await. Only on interactive logins: a refresh
// (context.protocol === 'oauth2-refresh-token') only copies the plan into the access token.
async function planFromConfiguration(user, context, callback) {
  const namespace = configuration.CLAIM_NAMESPACE || 'https://wardstone.dev/';
  user.app_metadata = user.app_metadata || {};
  if (context.protocol !== 'oauth2-refresh-token') {
    const firstSeen = user.app_metadata.first_login || new Date(0).toISOString();
    user.app_metadata.first_login = firstSeen;
    user.app_metadata.plan = user.app_metadata.plan || configuration.DEFAULT_PLAN || 'free';
    await auth0.users.updateAppMetadata(user.user_id, user.app_metadata);
    console.log('plan', user.app_metadata.plan, 'for', user.email);
  }
  context.accessToken[namespace + 'plan'] = user.app_metadata.plan || 'free';
  context.accessToken[namespace + 'protocol'] = context.protocol;
  callback(null, user, context);
}
