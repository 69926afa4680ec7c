// A real, independent OpenID provider (node-oidc-provider) for Unitgate's federation
// tests. One process listens on three loopback ports shaped like the upstreams
// Unitgate federates with:
//
//   google     issuer http://127.0.0.1:<g>                 (ID tokens with hd)
//   okta       org issuer http://127.0.0.1:<o> and custom authorization server
//              http://127.0.0.1:<o>/oauth2/default         (groups claim)
//   microsoft  one provider per tenant at /<tid>/v2.0 sharing one key set, plus a
//              hand-written /organizations/v2.0 "common" endpoint whose discovery
//              issuer is the template http://127.0.0.1:<m>/{tenantid}/v2.0
//              (tid, oid, xms_edov claims)
//
// Clients register through dynamic registration (RFC 7591, POST <issuer>/reg).
// The test drives the provider through a few /_test/ endpoints on any port:
//
//   POST /_test/login   {sub, claims, amr}   who signs in at the next interaction
//   plain      http://127.0.0.1:<g>/plain: a generic provider in node-oidc-provider's
//              DEFAULT claims configuration (conformIdTokenClaims: true): with an
//              access token issued, the ID token carries no scope claims (email,
//              email_verified, names); they come only from UserInfo (OIDC Core 5.4).
//              Signed UserInfo (application/jwt) for clients registering
//              userinfo_signed_response_alg.
//
//   POST /_test/tamper  {claims, remove, alg, key}  re-sign the next token response's
//                                                   id_token with these defects
//   POST /_test/tamper  {userinfo: {claims}}        change the next UserInfo answer
//                                                   (re-signed when it is a JWT)
//   POST /_test/rotate  {shape}               new signing key for google|okta|microsoft
//   POST /_test/entra-app {redirect_uris}     an app registration valid in every tenant
//
// On start it prints one JSON line: {"ready": true, "google": port, ...}.

import http from 'node:http';
import crypto from 'node:crypto';

import Provider from 'oidc-provider';
import { exportJWK, generateKeyPair } from 'jose';

const HOST = '127.0.0.1';
export const TENANTS = {
  a: 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa',
  b: 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb',
  c: 'cccccccc-cccc-4ccc-8ccc-cccccccccccc',
};

const accounts = new Map();
let nextLogin = null;
let pendingTamper = null;
let pendingUserinfo = null;
let lastTenant = null;
const keys = { google: [], okta: [], 'okta-custom': [], microsoft: [], plain: [] };
const routes = { google: [], okta: [], microsoft: [] }; // [prefix, provider] longest first
const ports = {};
const entraClients = [];
const registered = {}; // issuer -> clients registered through /reg, kept across rebuilds
const CLIENT_FIELDS = ['client_id', 'client_secret', 'redirect_uris', 'response_types',
  'grant_types', 'token_endpoint_auth_method', 'userinfo_signed_response_alg']; // one app registration, valid in every tenant (like Entra's)

async function newKey(alg = 'RS256') {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: crypto.randomBytes(8).toString('hex'), alg, use: 'sig' };
}

function publicJwk(jwk) {
  const { d, p, q, dp, dq, qi, ...pub } = jwk;
  return pub;
}

const CLAIMS = {
  openid: ['sub', 'amr', 'hd', 'tid', 'oid', 'xms_edov', 'employeeId', 'employeeNumber',
    'department', 'costCenter', 'groups'],
  email: ['email', 'email_verified'],
  profile: ['name', 'given_name', 'family_name', 'preferred_username', 'locale'],
  groups: ['groups'],
};

function buildProvider(issuer, jwks, mount, clients = [], { plain = false } = {}) {
  registered[issuer] ||= [];
  const provider = new Provider(issuer, {
    clients: [...clients, ...registered[issuer]],
    jwks: { keys: jwks },
    claims: CLAIMS,
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    // The shaped providers put every claim in the ID token; "plain" keeps the default.
    ...(plain ? {} : { conformIdTokenClaims: false }),
    responseTypes: ['code'],
    pkce: { required: () => true },
    cookies: { keys: ['unitgate-test-upstream-cookie-key'] },
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: true },
      ...(plain ? { jwtUserinfo: { enabled: true } } : {}),
    },
    interactions: { url: (ctx, interaction) => `${mount}/interaction/${interaction.uid}` },
    findAccount: async (ctx, sub) => {
      const account = accounts.get(sub);
      if (!account) return undefined;
      return { accountId: sub, claims: async () => ({ ...account, sub }) };
    },
  });
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === '/reg' && ctx.status === 201) {
      registered[issuer].push(Object.fromEntries(
        CLIENT_FIELDS.filter((f) => ctx.body[f] !== undefined).map((f) => [f, ctx.body[f]]),
      ));
    }
    if (ctx.path === '/me' && ctx.status === 200 && pendingUserinfo) {
      const change = pendingUserinfo;
      pendingUserinfo = null;
      ctx.body = typeof ctx.body === 'string'
        ? await tamperToken(ctx.body, { claims: change }, jwks[0])
        : { ...ctx.body, ...change };
    }
    if (ctx.path === '/token' && ctx.status === 200 && ctx.body?.id_token && pendingTamper) {
      const tamper = pendingTamper;
      pendingTamper = null;
      ctx.body = { ...ctx.body, id_token: await tamperToken(ctx.body.id_token, tamper, jwks[0]) };
    }
  });
  return provider;
}

function b64json(value) {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

async function tamperToken(token, tamper, signingJwk) {
  const [h, p] = token.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url').toString());
  const payload = { ...JSON.parse(Buffer.from(p, 'base64url').toString()), ...(tamper.claims || {}) };
  for (const name of tamper.remove || []) delete payload[name];
  if (tamper.alg === 'none') {
    return `${b64json({ alg: 'none', typ: 'JWT' })}.${b64json(payload)}.`;
  }
  if (tamper.alg === 'HS256') {
    const input = `${b64json({ alg: 'HS256', kid: header.kid })}.${b64json(payload)}`;
    const secret = JSON.stringify(publicJwk(signingJwk));
    return `${input}.${crypto.createHmac('sha256', secret).update(input).digest('base64url')}`;
  }
  let jwk = signingJwk;
  let kid = header.kid;
  if (tamper.key === 'foreign-same-kid' || tamper.key === 'foreign-new-kid') {
    jwk = await newKey(header.alg);
    if (tamper.key === 'foreign-new-kid') kid = jwk.kid;
  }
  // Signed by hand (RS256), so even headers a JOSE library would refuse (crit, jwk,
  // jku) can be produced.
  const input = `${b64json({ ...header, ...(tamper.header || {}), kid })}.${b64json(payload)}`;
  const key = crypto.createPrivateKey({ key: jwk, format: 'jwk' });
  return `${input}.${crypto.sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

async function finishInteraction(provider, req, res) {
  const details = await provider.interactionDetails(req, res);
  if (!nextLogin) {
    res.statusCode = 409;
    res.end('no test login set: POST /_test/login first');
    return;
  }
  const { prompt, params } = details;
  const result = {};
  let accountId = details.session?.accountId;
  if (prompt.name === 'login') {
    accountId = nextLogin.sub;
    result.login = { accountId, amr: nextLogin.amr || ['pwd'] };
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: params.client_id });
  grant.addOIDCScope(String(params.scope || 'openid'));
  result.consent = { grantId: await grant.save() };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString();
}

function sendJson(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

async function rebuild(shape) {
  if (shape === 'google') {
    const base = `http://${HOST}:${ports.google}`;
    routes.google = [
      ['/plain', buildProvider(`${base}/plain`, keys.plain, '/plain', [], { plain: true })],
      ['', buildProvider(base, keys.google, '')],
    ];
  } else if (shape === 'okta') {
    const base = `http://${HOST}:${ports.okta}`;
    routes.okta = [
      ['/oauth2/default', buildProvider(`${base}/oauth2/default`, keys['okta-custom'], '/oauth2/default')],
      ['', buildProvider(base, keys.okta, '')],
    ];
  } else if (shape === 'microsoft') {
    const base = `http://${HOST}:${ports.microsoft}`;
    routes.microsoft = Object.values(TENANTS).map((tid) => [
      `/${tid}/v2.0`,
      buildProvider(`${base}/${tid}/v2.0`, keys.microsoft, `/${tid}/v2.0`, entraClients),
    ]);
  }
}

async function control(req, res, path) {
  const body = req.method === 'POST' ? JSON.parse((await readBody(req)) || '{}') : {};
  if (path === '/_test/login') {
    accounts.set(body.sub, { ...(body.claims || {}), ...(body.amr ? { amr: body.amr } : {}) });
    nextLogin = { sub: body.sub, amr: body.amr };
    return sendJson(res, 200, { ok: true });
  }
  if (path === '/_test/tamper') {
    if (body.userinfo) {
      pendingUserinfo = body.userinfo;
      return sendJson(res, 200, { ok: true });
    }
    pendingTamper = body;
    return sendJson(res, 200, { ok: true });
  }
  if (path === '/_test/rotate') {
    const shape = body.shape;
    const names = shape === 'okta' ? ['okta', 'okta-custom'] : [shape];
    for (const name of names) keys[name] = [await newKey(), ...keys[name]];
    await rebuild(shape);
    return sendJson(res, 200, { kid: keys[names[0]][0].kid });
  }
  if (path === '/_test/entra-app') {
    const client = {
      client_id: crypto.randomUUID(),
      client_secret: crypto.randomBytes(24).toString('base64url'),
      redirect_uris: body.redirect_uris,
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
    };
    entraClients.push(client);
    await rebuild('microsoft');
    return sendJson(res, 200, client);
  }
  if (path === '/_test/info') {
    return sendJson(res, 200, { ...ports, tenants: TENANTS });
  }
  return sendJson(res, 404, { error: 'not_found' });
}

async function organizations(req, res, path) {
  const base = `http://${HOST}:${ports.microsoft}`;
  const common = `${base}/organizations/v2.0`;
  if (path === '/organizations/v2.0/.well-known/openid-configuration') {
    return sendJson(res, 200, {
      issuer: `${base}/{tenantid}/v2.0`,
      authorization_endpoint: `${common}/auth`,
      token_endpoint: `${common}/token`,
      jwks_uri: `${common}/jwks`,
      response_types_supported: ['code'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      code_challenge_methods_supported: ['S256'],
    });
  }
  if (path === '/organizations/v2.0/jwks') {
    return sendJson(res, 200, { keys: keys.microsoft.map(publicJwk) });
  }
  if (path === '/organizations/v2.0/auth') {
    const tid = nextLogin?.tid || accounts.get(nextLogin?.sub)?.tid || TENANTS.a;
    lastTenant = tid;
    const query = req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : '';
    res.writeHead(302, { location: `${base}/${tid}/v2.0/auth${query}` });
    return res.end();
  }
  if (path === '/organizations/v2.0/token' && req.method === 'POST') {
    const body = await readBody(req);
    const upstream = http.request({
      host: HOST,
      port: ports.microsoft,
      method: 'POST',
      path: `/${lastTenant}/v2.0/token`,
      headers: {
        'content-type': req.headers['content-type'] || 'application/x-www-form-urlencoded',
        ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
        'content-length': Buffer.byteLength(body),
      },
    }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => sendJson(res, 502, { error: 'proxy_error' }));
    upstream.end(body);
    return undefined;
  }
  return sendJson(res, 404, { error: 'not_found' });
}

function handler(shape) {
  return async (req, res) => {
    try {
      const path = req.url.split('?')[0];
      if (path.startsWith('/_test/')) return await control(req, res, path);
      if (shape === 'microsoft' && path.startsWith('/organizations/v2.0/')) {
        return await organizations(req, res, path);
      }
      for (const [prefix, provider] of routes[shape]) {
        if (prefix === '' || path === prefix || path.startsWith(`${prefix}/`)) {
          const rest = req.url.slice(prefix.length) || '/';
          if (rest.split('?')[0].startsWith('/interaction/')) {
            return await finishInteraction(provider, req, res);
          }
          req.originalUrl = req.url;
          req.url = rest;
          return provider.callback()(req, res);
        }
      }
      return sendJson(res, 404, { error: 'not_found' });
    } catch (err) {
      process.stderr.write(`${err.stack || err}\n`);
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error', message: String(err) });
      return undefined;
    }
  };
}

function listen(shape) {
  return new Promise((resolve) => {
    const server = http.createServer(handler(shape));
    server.listen(0, HOST, () => resolve(server.address().port));
  });
}

async function main() {
  for (const name of Object.keys(keys)) keys[name] = [await newKey()];
  for (const shape of Object.keys(routes)) ports[shape] = await listen(shape);
  for (const shape of Object.keys(routes)) await rebuild(shape);
  process.stdout.write(`${JSON.stringify({ ready: true, ...ports, tenants: TENANTS })}\n`);
}

process.on('SIGTERM', () => process.exit(0));
main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
