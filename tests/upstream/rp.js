// An independent, OpenID Certified relying party (the npm package openid-client)
// signing in at Unitgate. Driven by tests/test_oidc_certified_rp.py over stdin/stdout,
// one JSON object per line:
//
//   node rp.js ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI POST_LOGOUT_URI LOGIN_HINT [PARAMS [FLAGS]]
//   (PARAMS: optional JSON object of authorization parameters added or replaced, such
//   as {"scope": "openid", "claims": "{...}"}; FLAGS: optional JSON object for the
//   FAPI-grade options: {"par": true} pushes the request (RFC 9126), {"dpop": true}
//   binds the tokens to a fresh DPoP key (RFC 9449) and uses it at userinfo and the
//   refresh, {"private_key_jwt": JWK} authenticates with a client assertion signed by
//   that private ES256 JWK (RFC 7523) instead of CLIENT_SECRET)
//   -> {"authorize": URL}          the browser leg is the test's (real login pages)
//   <- {"callback": URL}           where Unitgate sent the browser back
//   -> {"result": {...}}           what the library validated and received
//
// Everything the library checks is its own: discovery, the RFC 9207 `iss` of the
// authorization response, state, PKCE, the ID token (signature from the JWKS, iss,
// aud, azp, exp, iat, nonce), userinfo `sub`, the ID token of a refresh (OIDC Core
// 12.2), introspection and revocation with client_secret_basic.
import readline from 'node:readline';
import * as client from 'openid-client';

const [issuer, clientId, clientSecret, redirectUri, postLogoutUri, loginHint, extra, flagText] =
  process.argv.slice(2);
const flags = flagText ? JSON.parse(flagText) : {};
const say = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const next = async () => JSON.parse((await lines.next()).value);

function describe(err) {
  return {
    name: err?.name, code: err?.code, message: err?.message,
    error: err?.error, error_description: err?.error_description,
    cause: err?.cause ? String(err.cause?.message ?? err.cause) : undefined,
  };
}

async function main() {
  // Plain http on 127.0.0.1 in tests: allowed explicitly (the library refuses it otherwise).
  let auth = client.ClientSecretBasic(clientSecret);
  if (flags.private_key_jwt) {
    const { kid, ...jwk } = flags.private_key_jwt;
    const key = await crypto.subtle.importKey(
      'jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'],
    );
    auth = client.PrivateKeyJwt({ key, kid });
  }
  const config = await client.discovery(
    new URL(issuer), clientId, undefined, auth,
    { execute: [client.allowInsecureRequests] },
  );
  const DPoP = flags.dpop
    ? client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'))
    : undefined;
  const verifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const build = flags.par
    ? (cfg, params) => client.buildAuthorizationUrlWithPAR(cfg, params, { DPoP })
    : async (cfg, params) => client.buildAuthorizationUrl(cfg, params);
  const url = await build(config, {
    redirect_uri: redirectUri,
    scope: 'openid profile email wallet',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
    login_hint: loginHint,
    ...(extra ? JSON.parse(extra) : {}),
  });
  say({ authorize: url.href });

  const { callback } = await next();
  const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state,
    idTokenExpected: true,
  }, undefined, { DPoP });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub, { DPoP });
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP });
  const introspection = await client.tokenIntrospection(config, refreshed.access_token);
  await client.tokenRevocation(config, refreshed.refresh_token);
  let refreshAfterRevocation = 'accepted';
  try {
    await client.refreshTokenGrant(config, refreshed.refresh_token);
  } catch (err) {
    refreshAfterRevocation = err?.error ?? err?.code ?? String(err);
  }
  const logout = client.buildEndSessionUrl(config, {
    id_token_hint: refreshed.id_token, post_logout_redirect_uri: postLogoutUri, state,
  });
  say({
    result: {
      claims,
      userinfo,
      authorize_url: url.href,
      token_type: tokens.token_type,
      access_token: tokens.access_token,
      scope: tokens.scope,
      refreshed_claims: refreshed.claims() ?? null,
      refreshed_token_type: refreshed.token_type,
      introspection,
      refresh_after_revocation: refreshAfterRevocation,
      logout: logout.href,
      state,
    },
  });
}

main().then(
  () => process.exit(0),
  (err) => { say({ failure: describe(err) }); process.exit(1); },
);
