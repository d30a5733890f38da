// Adds the user's roles (app_metadata.roles) to the ID and access tokens as a namespaced claim.
// An Auth0 rule as Auth0 tenants write it: it runs in Wardstone unchanged.
function addRoles(user, context, callback) {
  const namespace = 'https://wardstone.dev/';
  const roles = ((user.app_metadata || {}).roles || []).filter((r) => typeof r === 'string');
  context.idToken[namespace + 'roles'] = roles;
  context.accessToken[namespace + 'roles'] = roles;
  callback(null, user, context);
}
