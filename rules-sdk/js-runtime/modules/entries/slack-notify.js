// npm's `slack-notify`: require('slack-notify')(webhookUrl) posts to a Slack incoming webhook
// over the runtime's fetch (so the webhook's host must be on the tenant's allow-list).
// send / alert / bug / note / success / extend, with a callback and a Promise.
const { send } = require('../shared/http');

const fieldsAttachment = (fields) => ({
  fallback: 'Alert details',
  fields: Object.keys(fields).map((title) => {
    const value = typeof fields[title] === 'string' ? fields[title] : JSON.stringify(fields[title]);
    return { title, value, short: value.length < 25 };
  }),
});

module.exports = function slackNotify(url) {
  const post = (options, done) => {
    const payload = typeof options === 'string' ? { text: options } : Object.assign({}, options);
    if (payload.fields) {
      payload.attachments = (payload.attachments || []).concat(fieldsAttachment(payload.fields));
      delete payload.fields;
    }
    const result = !url
      ? Promise.reject(new Error('slack-notify: no webhook URL'))
      : send('POST', url, { 'content-type': 'application/json' }, JSON.stringify(payload)).then((r) => {
        if (r.status < 200 || r.status >= 300) throw new Error(`Slack answered ${r.status}: ${r.text}`);
        return r.text;
      });
    if (typeof done === 'function') result.then(() => done(null), (e) => done(e));
    else result.catch(() => {});
    return result;
  };
  const extend = (defaults) => (options, done) =>
    post(Object.assign({}, defaults, typeof options === 'string' ? { text: options } : options), done);
  return {
    send: post,
    extend,
    request: post,
    alert: extend({ channel: '#alerts', icon_emoji: ':warning:', username: 'Alert' }),
    bug: extend({ channel: '#bugs', icon_emoji: ':bomb:', username: 'Bug' }),
    note: extend({ channel: '#alerts', icon_emoji: ':bulb:', username: 'Note' }),
    success: extend({ channel: '#alerts', icon_emoji: ':trophy:', username: 'Hoorah' }),
  };
};
