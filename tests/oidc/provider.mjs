// A real OpenID Connect provider for Paved's test suite, built on the
// `oidc-provider` npm package. Test-only: fixed accounts, in-memory storage,
// a signing key generated at every start, plain http on 127.0.0.1.
//
// Usage:
//   node provider.mjs --port 0 \
//     --client-id paved --client-secret paved-test-secret \
//     --redirect-uri http://127.0.0.1:8000/auth/oidc/callback \
//     --post-logout-redirect-uri http://127.0.0.1:8000/
//
// Flags:
//   --port N                      port on 127.0.0.1 (0, the default, lets the OS pick one)
//   --client-id ID                default "paved"
//   --client-secret SECRET        default "paved-test-secret"
//   --redirect-uri URI            required; repeatable and/or comma separated
//   --post-logout-redirect-uri U  repeatable and/or comma separated; optional
//   --verbose                     log every provider error event to stderr
//
// Once listening it prints exactly one line `READY <issuer>` to stdout, where the
// issuer is `http://127.0.0.1:<port>`. SIGTERM/SIGINT close it and exit with 0.
//
// Accounts: see ACCOUNTS below (mirrored in tests/oidc_provider.py); the password
// of each is `<username>-password`.
//
// Client: confidential, token_endpoint_auth_method client_secret_basic. The
// provider accepts client_secret_post for such a client as well (oidc-provider
// treats the two secret methods as interchangeable), so a relying party may use
// either. PKCE (S256 only) is required for every authorization request.
//
// Consent is granted automatically (no consent screen). RP-initiated logout:
// when the browser still has a session at the provider, the confirmation page
// auto-submits itself with an inline script ("Yes, sign me out"); a client
// without JavaScript has to POST that form (fields `xsrf` and `logout=yes`)
// itself. Without a session, oidc-provider answers with its own auto-submitting
// form. Either way the browser ends at the post_logout_redirect_uri (with
// `state` if one was given).

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

const ACCOUNTS = {
  alice: {
    name: 'Alice Example',
    email: 'alice@example.com',
    groups: ['ml-engineers', 'team-fraud'],
  },
  bob: {
    name: 'Bob Example',
    email: 'bob@example.com',
    groups: ['team-leads', 'team-fraud'],
  },
  dana: {
    name: 'Dana Example',
    email: 'dana@example.com',
    groups: ['data-scientists', 'team-churn'],
  },
  audrey: {
    name: 'Audrey Example',
    email: 'audrey@example.com',
    groups: ['auditors'],
  },
  root: {
    name: 'Root Example',
    email: 'root@example.com',
    groups: ['platform-admins'],
  },
};

const passwordFor = (username) => `${username}-password`;

function splitList(values) {
  return (values ?? [])
    .flatMap((value) => value.split(','))
    .map((value) => value.trim())
    .filter(Boolean);
}

function fail(message) {
  process.stderr.write(`provider.mjs: ${message}\n`);
  process.exit(2);
}

function parseCommandLine() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: 'string', default: '0' },
        'client-id': { type: 'string', default: 'paved' },
        'client-secret': { type: 'string', default: 'paved-test-secret' },
        'redirect-uri': { type: 'string', multiple: true },
        'post-logout-redirect-uri': { type: 'string', multiple: true },
        verbose: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    fail(err.message);
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    fail(`--port must be an integer between 0 and 65535, got ${values.port}`);
  }
  const redirectUris = splitList(values['redirect-uri']);
  if (redirectUris.length === 0) {
    fail('at least one --redirect-uri is required');
  }
  for (const uri of [...redirectUris, ...splitList(values['post-logout-redirect-uri'])]) {
    if (!URL.canParse(uri) || !['http:', 'https:'].includes(new URL(uri).protocol)) {
      fail(`not an absolute http(s) URL: ${uri}`);
    }
  }
  return {
    port,
    clientId: values['client-id'],
    clientSecret: values['client-secret'],
    redirectUris,
    postLogoutRedirectUris: splitList(values['post-logout-redirect-uri']),
    verbose: values.verbose,
  };
}

function escapeHtml(value) {
  return String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>${escapeHtml(title)}</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
</head>
<body>
${body}
</body>
</html>`;
}

function loginPage({ uid, clientId, username = '', error }) {
  const alert = error
    ? `  <p role="alert" class="error" id="login-error">${escapeHtml(error)}</p>\n`
    : '';
  return page('Sign in - Test OIDC Provider', `  <h1>Sign in</h1>
  <p>to continue to <strong>${escapeHtml(clientId)}</strong></p>
${alert}  <form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
    <p><label for="username">Username</label>
      <input id="username" name="username" type="text" value="${escapeHtml(username)}" required autofocus></p>
    <p><label for="password">Password</label>
      <input id="password" name="password" type="password" required></p>
    <p><button type="submit" name="submit" value="sign-in">Sign in</button></p>
  </form>`);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) {
      throw new Error('request body too large');
    }
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function autoConsent(provider, details) {
  const { prompt, params, session, grantId: existingGrantId } = details;
  const grant = existingGrantId
    ? await provider.Grant.find(existingGrantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) {
    grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  }
  if (missing.missingOIDCClaims) {
    grant.addOIDCClaims(missing.missingOIDCClaims);
  }
  if (missing.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  const grantId = await grant.save();
  return existingGrantId ? {} : { grantId };
}

function interactionRoutes(provider) {
  const pattern = /^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/;

  return async function interactions(ctx, next) {
    const match = pattern.exec(ctx.path);
    if (!match) {
      return next();
    }
    const [, uid, login] = match;
    ctx.set('cache-control', 'no-store');

    try {
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      if (details.uid !== uid) {
        throw new errors.SessionNotFound('interaction uid mismatch');
      }
      const clientId = details.params.client_id;

      if (!login && ctx.method === 'GET') {
        if (details.prompt.name === 'login') {
          ctx.type = 'html';
          ctx.body = loginPage({ uid, clientId, username: details.params.login_hint ?? '' });
          return undefined;
        }
        if (details.prompt.name === 'consent') {
          const consent = await autoConsent(provider, details);
          const returnTo = await provider.interactionResult(ctx.req, ctx.res, { consent }, {
            mergeWithLastSubmission: true,
          });
          ctx.status = 303;
          ctx.redirect(returnTo);
          return undefined;
        }
        ctx.status = 400;
        ctx.type = 'html';
        ctx.body = page('Error', `<h1>Unsupported prompt</h1><p>${escapeHtml(details.prompt.name)}</p>`);
        return undefined;
      }

      if (login && ctx.method === 'POST') {
        if (details.prompt.name !== 'login') {
          throw new errors.SessionNotFound('interaction is not a login prompt');
        }
        const form = await readForm(ctx.req);
        const username = (form.get('username') ?? '').trim();
        const password = form.get('password') ?? '';
        if (!Object.hasOwn(ACCOUNTS, username) || password !== passwordFor(username)) {
          ctx.status = 401;
          ctx.type = 'html';
          ctx.body = loginPage({ uid, clientId, username, error: 'Invalid username or password.' });
          return undefined;
        }
        const returnTo = await provider.interactionResult(ctx.req, ctx.res, {
          login: { accountId: username, amr: ['pwd'] },
        }, { mergeWithLastSubmission: false });
        ctx.status = 303;
        ctx.redirect(returnTo);
        return undefined;
      }

      ctx.status = 405;
      ctx.body = 'method not allowed';
      return undefined;
    } catch (err) {
      if (err instanceof errors.SessionNotFound) {
        ctx.status = 400;
        ctx.type = 'html';
        ctx.body = page('Error', `<h1>Interaction expired</h1><p>${escapeHtml(err.error_description ?? err.message)}</p>`);
        return undefined;
      }
      throw err;
    }
  };
}

function signingKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: `test-${crypto.randomBytes(6).toString('hex')}`, alg: 'RS256', use: 'sig' };
}

function configuration(options) {
  return {
    clients: [{
      client_id: options.clientId,
      client_secret: options.clientSecret,
      client_name: 'Paved (test)',
      redirect_uris: options.redirectUris,
      post_logout_redirect_uris: options.postLogoutRedirectUris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    }],
    jwks: { keys: [signingKey()] },
    cookies: {
      keys: ['paved-test-cookie-key-1-not-secret', 'paved-test-cookie-key-2-not-secret'],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    // Put the claims of the granted scopes in the ID token too (not only at
    // the userinfo endpoint), so `groups`, `email` and `name` are in it.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    responseTypes: ['code'],
    async findAccount(_ctx, sub) {
      if (!Object.hasOwn(ACCOUNTS, sub)) {
        return undefined;
      }
      const account = ACCOUNTS[sub];
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            name: account.name,
            preferred_username: sub,
            email: account.email,
            email_verified: true,
            groups: [...account.groups],
          };
        },
      };
    },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          // Confirm on the user's behalf: add logout=yes and submit at once.
          const confirmForm = form.replace(
            '</form>',
            '<input type="hidden" name="logout" value="yes"/>'
              + '<button type="submit">Yes, sign me out</button></form>',
          );
          ctx.body = page('Signing out - Test OIDC Provider', `  <h1>Signing out</h1>
  ${confirmForm}
  <script>document.getElementById('op.logoutForm').submit();</script>`);
        },
        async postLogoutSuccessSource(ctx) {
          ctx.body = page('Signed out - Test OIDC Provider', '  <h1>Signed out</h1>');
        },
      },
    },
    ttl: {
      AccessToken: 60 * 60,
      AuthorizationCode: 60,
      IdToken: 60 * 60,
      RefreshToken: 24 * 60 * 60,
      Interaction: 60 * 60,
      Session: 24 * 60 * 60,
      Grant: 24 * 60 * 60,
    },
    clientBasedCORS: () => false,
    async renderError(ctx, out) {
      ctx.type = 'html';
      const rows = Object.entries(out)
        .map(([key, value]) => `<p><strong>${escapeHtml(key)}</strong>: <span class="${escapeHtml(key)}">${escapeHtml(value)}</span></p>`)
        .join('\n');
      ctx.body = page('Error - Test OIDC Provider', `  <h1>Error</h1>\n${rows}`);
    },
  };
}

async function main() {
  const options = parseCommandLine();
  const server = http.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;

  const provider = new Provider(issuer, configuration(options));
  provider.use(interactionRoutes(provider));

  for (const event of ['server_error', 'authorization.error', 'grant.error', 'end_session.error',
    'userinfo.error', 'jwks.error', 'discovery.error', 'check_session.error']) {
    provider.on(event, (ctx, err) => {
      if (options.verbose || event === 'server_error') {
        process.stderr.write(`[${event}] ${err?.message ?? err} ${err?.error_description ?? ''}\n`);
      }
    });
  }

  // Validate the client metadata now rather than at the first request.
  await provider.Client.find(options.clientId);
  server.on('request', provider.callback());

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  process.stdout.write(`READY ${issuer}\n`);
}

main().catch((err) => {
  const detail = err?.error_description ? ` (${err.error_description})` : '';
  process.stderr.write(`provider.mjs: ${err?.stack ?? err}${detail}\n`);
  process.exit(1);
});
