/**
 * Post-login: refuse users whose email is not verified, and count logins in app_metadata.
 */
exports.onExecutePostLogin = async (event, api) => {
  if (!event.user.email_verified) {
    api.access.deny('Please verify your email before logging in.');
    return;
  }
  const count = (event.user.app_metadata.login_count || 0) + 1;
  api.user.setAppMetadata('login_count', count);
};
