// The certified OpenID Provider (oidc-provider, pinned in package.json) that
// Warden's interop tests (identity/interop) run against. Started by the
// tests, one process per provider "boot" (restarts and outages are process
// restarts), configured from the environment:
//
//   PORT       loopback port to listen on
//   KEYS_FILE  a JWKS with private keys: the signing keys, in order (the
//              first key of an algorithm signs; the rest are published)
//
// It issues JWT access tokens (RFC 9068, typ at+jwt) for the resource
// servers https://orders.example/<alg> (audience = the resource indicator,
// signed with <alg>) and https://other.example (RS256), by client
// credentials (client "svc") and by authorization code (client "app", whose
// user "alice" logs in and consents without a form: /interaction/<uid>
// finishes the interaction at once). Sender-constrained tokens: a token
// request with a DPoP proof gets a DPoP-bound token (cnf.jkt, RFC 9449); client
// "bound" gets certificate-bound tokens (cnf.x5t#S256, RFC 8705) for the
// certificate in the x-test-client-cert header (URL-encoded PEM, as Envoy
// forwards it: this provider listens on loopback without TLS, so the test
// stands in for the TLS terminator). Tokens for https://opaque.example are
// opaque, for client "warden" to introspect (RFC 7662, signed answers by
// RFC 9701 when asked). Prints "ready <issuer>" once listening.
import * as fs from 'node:fs';
import * as http from 'node:http';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const jwks = JSON.parse(fs.readFileSync(process.env.KEYS_FILE, 'utf8'));

const algOf = { rs256: 'RS256', es256: 'ES256', eddsa: 'EdDSA' };

function resourceServer(indicator) {
  const m = /^https:\/\/orders\.example\/(rs256|es256|eddsa)$/.exec(indicator);
  if (m) {
    return { alg: algOf[m[1]], scope: 'orders:read orders:write' };
  }
  if (indicator === 'https://other.example') {
    return { alg: 'RS256', scope: 'orders:read' };
  }
  if (indicator === 'https://opaque.example') { // opaque tokens, judged by introspection
    return { alg: 'RS256', scope: 'orders:read', format: 'opaque' };
  }
  return undefined;
}

const provider = new Provider(issuer, {
  jwks,
  clients: [
    {
      client_id: 'svc',
      client_secret: 'svc-secret-for-tests-only',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
    },
    {
      // Warden, introspecting opaque tokens (RFC 7662; signed answers, RFC 9701).
      client_id: 'warden',
      client_secret: 'warden-secret-for-tests-only',
      grant_types: [],
      redirect_uris: [],
      response_types: [],
      introspection_signed_response_alg: 'RS256',
    },
    {
      client_id: 'app',
      client_secret: 'app-secret-for-tests-only',
      grant_types: ['authorization_code'],
      redirect_uris: [`http://127.0.0.1:${port}/cb`],
      response_types: ['code'],
    },
    {
      client_id: 'bound',
      client_secret: 'bound-secret-for-tests-only',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      tls_client_certificate_bound_access_tokens: true,
    },
  ],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    dPoP: { enabled: true },
    mTLS: {
      enabled: true,
      certificateBoundAccessTokens: true,
      getCertificate(ctx) {
        const c = ctx.get('x-test-client-cert');
        return c ? decodeURIComponent(c) : undefined;
      },
    },
    introspection: { enabled: true },
    jwtIntrospection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo(ctx, indicator) {
        const rs = resourceServer(indicator);
        if (!rs) {
          throw new Provider.errors.InvalidTarget();
        }
        return {
          scope: rs.scope,
          audience: indicator,
          accessTokenTTL: 300,
          accessTokenFormat: rs.format ?? 'jwt',
          ...(rs.format ? {} : { jwt: { sign: { alg: rs.alg } } }),
        };
      },
    },
  },
  scopes: ['openid', 'offline_access'],
  findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  // Group claims in the access token, as a Warden policy would use them.
  extraTokenClaims: async (ctx, token) => (token.accountId ? { groups: ['staff'] } : undefined),
});

// Log in alice and grant what was asked, with no form.
async function interaction(req, res) {
  try {
    const details = await provider.interactionDetails(req, res);
    const { prompt, params, session } = details;
    if (prompt.name === 'login') {
      await provider.interactionFinished(req, res, { login: { accountId: 'alice' } }, { mergeWithLastSubmission: false });
      return;
    }
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    grant.addOIDCScope(String(params.scope));
    for (const r of [].concat(params.resource ?? [])) {
      grant.addResourceScope(r, resourceServer(r)?.scope ?? '');
    }
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  } catch (err) {
    res.statusCode = 500;
    res.end(String(err));
  }
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res);
    return;
  }
  callback(req, res);
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => process.exit(0));
}
