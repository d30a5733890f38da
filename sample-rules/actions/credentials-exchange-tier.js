/**
 * Credentials-exchange (client credentials grant): tag machine tokens with the client's tier
 * from its metadata, and refuse clients marked as suspended with RFC 6749's invalid_request.
 */
exports.onExecuteCredentialsExchange = async (event, api) => {
  const metadata = event.client.metadata || {};
  if (metadata.suspended === 'true') {
    api.access.deny('invalid_request', `client ${event.client.client_id} is suspended`);
    return;
  }
  api.accessToken.setCustomClaim('https://wardstone.dev/tier', metadata.tier || 'standard');
};
