// A real OpenID Connect provider on loopback for tests/e2e/test_sso.py:
//   node provider.mjs PORT REDIRECT_URI
// Any login name signs in (the provider's development sign-in pages); the account's groups come
// from its name: "lead-*" is in ml-leads and ml-team, anyone else in ml-team only, "nobody-*" in none.
import Provider from 'oidc-provider';

const [port, redirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'aicommons',
    client_secret: 'aicommons-test-secret',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['aicommons-test-cookie-key'] },
  async findAccount(ctx, id) {
    const groups = id.startsWith('nobody') ? [] : id.startsWith('lead') ? ['ml-leads', 'ml-team'] : ['ml-team'];
    return {
      accountId: id,
      async claims() {
        return { sub: `sub-${id}`, preferred_username: id, name: `Person ${id}`, email: `${id}@corp.example`,
                 email_verified: true, groups };
      },
    };
  },
});
provider.proxy = false;
provider.listen(Number(port), '127.0.0.1', () => console.log(`ready ${issuer}`));
