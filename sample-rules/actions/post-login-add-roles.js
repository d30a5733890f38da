/**
 * Post-login: put the user's roles and plan into the tokens (Auth0's "Add roles to tokens"
 * Action, unchanged). Claims are namespaced, as Auth0 and Wardstone require of custom claims.
 *
 * @param {Event} event - Details about the user and the context in which they are logging in.
 * @param {PostLoginAPI} api - Interface whose methods can be used to change the login.
 */
exports.onExecutePostLogin = async (event, api) => {
  const namespace = 'https://wardstone.dev';
  const roles = event.authorization ? event.authorization.roles : [];
  api.idToken.setCustomClaim(`${namespace}/roles`, roles);
  api.accessToken.setCustomClaim(`${namespace}/roles`, roles);
  const plan = event.user.app_metadata.plan || 'free';
  api.accessToken.setCustomClaim(`${namespace}/plan`, plan);
};
