// A real third-party OpenID provider (panva oidc-provider) for authn's
// end-to-end test. TEST ONLY.
//
// It listens on 127.0.0.1 with an OS-assigned port and prints one line,
// "LISTENING <issuer URL>", once it serves. Configuration comes from the
// environment:
//
//   OIDC_CLIENT_ID, OIDC_CLIENT_SECRET  a client allowed the client
//                                       credentials grant
//   OIDC_RESOURCES                      space-separated resource indicators
//                                       (RFC 8707) the provider accepts;
//                                       each gets JWT access tokens whose
//                                       aud is the indicator
//   OIDC_SCOPES                         space-separated scopes of those
//                                       resources
//
// It stops when stdin closes, so it never outlives the test.
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`server.mjs: ${name} is required`);
    process.exit(2);
  }
  return v;
};
const clientId = env('OIDC_CLIENT_ID');
const clientSecret = env('OIDC_CLIENT_SECRET');
const resources = new Set(env('OIDC_RESOURCES').split(' '));
const scopes = env('OIDC_SCOPES');

const jwk = (type, options, alg, kid) => ({
  ...generateKeyPairSync(type, options).privateKey.export({ format: 'jwk' }),
  alg,
  use: 'sig',
  kid,
});

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      scope: scopes,
    }],
    jwks: {
      keys: [
        jwk('rsa', { modulusLength: 2048 }, 'RS256', 'rs256-1'),
        jwk('ec', { namedCurve: 'P-256' }, 'ES256', 'es256-1'),
      ],
    },
    scopes: scopes.split(' '),
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // A client credentials request without a resource gets an opaque
        // token; tests always name one.
        defaultResource: () => undefined,
        getResourceServerInfo: (_ctx, resourceIndicator) => {
          if (!resources.has(resourceIndicator)) {
            throw new Provider.errors.InvalidTarget();
          }
          return {
            scope: scopes,
            audience: resourceIndicator,
            accessTokenTTL: 300,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
  });
  // Keep the provider's own warnings (development keys, http issuer) off
  // stdout, which carries the handshake line.
  provider.on('server_error', (_ctx, err) => console.error('server_error', err));
  server.on('request', provider.callback());
  console.log(`LISTENING ${issuer}`);
});

process.stdin.on('end', () => server.close(() => process.exit(0)));
process.stdin.resume();
