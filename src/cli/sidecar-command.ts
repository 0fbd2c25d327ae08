// `weft sidecar` and `weft run`: the sidecar on its own, or the sidecar and the app together.
// Both print one `key: value` line per listener (outbound, inbound, admin) and `ready` once the
// workload is registered, for people and scripts; logs go to standard error.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants as osConstants } from 'node:os';
import { bundlePins } from '../ca/ca-pin.js';
import { createLogger } from '../log.js';
import type { GivenBundle } from '../sidecar/bootstrap-trust.js';
import { portAnswers, Sidecar, type AppProtocol, type SidecarOptions } from '../sidecar/sidecar.js';
import { CliError, serverUrl } from './client.js';
import type { SidecarFlags } from './sidecar-flags.js';

/** --token-file, else WEFT_TOKEN; undefined when neither is given. */
function joinToken(file: string | undefined): string | undefined {
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new CliError(`--token-file ${file}: ${(e as Error).message}`);
    }
    const token = text.trim();
    if (token === '')
      throw new CliError(`--token-file ${file} is empty; it should hold a token from \`weft token create\``);
    return token;
  }
  const env = process.env.WEFT_TOKEN?.trim();
  return env === '' ? undefined : env;
}

/** --trust-bundle, else WEFT_TRUST_BUNDLE (a file each); undefined when neither is given. */
function trustBundle(flag: string | undefined): GivenBundle | undefined {
  const env = process.env.WEFT_TRUST_BUNDLE?.trim();
  const [file, name] =
    flag !== undefined ? [flag, '--trust-bundle'] : env ? [env, 'WEFT_TRUST_BUNDLE'] : [undefined, ''];
  if (file === undefined) return undefined;
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(`${name} ${file}: ${(e as Error).message}`);
  }
  if (bundlePins(pem).length === 0)
    throw new CliError(`${name} ${file} holds no PEM certificate; it should hold the mesh's root(s)`);
  return { pem, source: `${name} ${file}` };
}

function toOptions(f: SidecarFlags): SidecarOptions {
  const labels: Record<string, string> = {};
  for (const l of f.label) {
    const i = l.indexOf('=');
    if (i <= 0) throw new CliError(`--label must be KEY=VALUE, got "${l}"`);
    labels[l.slice(0, i)] = l.slice(i + 1);
  }
  if (f.version) labels.version = f.version;
  const appPort = f.appPort === undefined ? undefined : Number(f.appPort);
  if (appPort !== undefined && (!Number.isInteger(appPort) || appPort < 1 || appPort > 65535)) {
    throw new CliError(`--app-port must be a port number from 1 to 65535, got "${f.appPort}"`);
  }
  const seconds = (v: string, flag: string): number => {
    const n = Number(v);
    if (!(n > 0)) throw new CliError(`${flag} must be a positive number of seconds, got "${v}"`);
    return n;
  };
  return {
    service: f.service,
    namespace: f.namespace,
    ...(f.name ? { name: f.name } : {}),
    labels,
    serviceAccount: f.serviceAccount ?? f.service,
    token: joinToken(f.tokenFile),
    trustBundle: trustBundle(f.trustBundle),
    ...(appPort !== undefined ? { appPort } : {}),
    protocol: f.protocol as AppProtocol,
    controlPlane: serverUrl(f.controlPlane),
    ...(f.xdsAddr ? { xdsAddr: f.xdsAddr } : {}),
    outboundAddr: f.outboundAddr,
    inboundAddr: f.inboundAddr,
    adminAddr: f.adminAddr,
    ...(f.advertiseAddr ? { advertiseAddr: f.advertiseAddr } : {}),
    upstreams: f.upstream,
    drainTimeoutMs: seconds(f.drainTimeout, '--drain-timeout') * 1000,
    leaseTtlSeconds: Math.ceil(seconds(f.leaseTtl, '--lease-ttl')),
    logger: createLogger('sidecar'),
  };
}

function printAddresses(sidecar: Sidecar): void {
  const a = sidecar.addresses();
  const fmt = (h: { host: string; port: number }): string =>
    h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`;
  console.log(`workload: ${sidecar.name}`);
  console.log(`outbound: ${fmt(a.outbound)}`);
  if (a.inbound) console.log(`inbound: ${fmt(a.inbound)}`);
  console.log(`admin: ${fmt(a.admin)}`);
}

export async function runSidecarCommand(flags: SidecarFlags): Promise<void> {
  const opts = toOptions(flags);
  const sidecar = await Sidecar.start(opts);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    // Inbound first (deregister, drain), then the app's own outbound calls, all within
    // --drain-timeout; the app runs on its own here and may still be calling out.
    const started = Date.now();
    void sidecar
      .shutdown()
      .then(() => sidecar.drainOutbound(Math.max(0, opts.drainTimeoutMs - (Date.now() - started))))
      .then(() => sidecar.close())
      .then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Only now: whoever reads the addresses may signal at once, and must meet the handlers.
  printAddresses(sidecar);
  try {
    await sidecar.waitForApp(appStartTimeoutMs(flags));
    await sidecar.register();
  } catch (e) {
    // Told to stop before it was ready: not a failure, and not ready either; stop() exits.
    if (stopping) return;
    throw e;
  }
  console.log('ready');
}

function appStartTimeoutMs(flags: SidecarFlags): number {
  const n = Number(flags.appStartTimeout);
  if (!(n > 0))
    throw new CliError(
      `--app-start-timeout must be a positive number of seconds, got "${flags.appStartTimeout}"`,
    );
  return n * 1000;
}

/**
 * `weft run`: sidecar first (config in force, listeners open), then the app with HTTP_PROXY
 * pointing at the outbound listener, registration once the app answers. SIGTERM: the sidecar
 * stops taking inbound requests and lets in-flight ones finish, then the app is stopped; when
 * the app exits by itself, the sidecar drains and exits with the app's status.
 */
export async function runRunCommand(flags: SidecarFlags, command: string[]): Promise<void> {
  if (command.length === 0) throw new CliError('usage: weft run --service NAME [flags] -- COMMAND [ARGS…]');
  const opts = toOptions(flags);
  // The app is about to take --app-port. If something already answers there, the app cannot
  // bind it, yet that something would pass the readiness check and get the mesh's traffic.
  if (opts.appPort !== undefined && (await portAnswers(opts.appPort)))
    throw new CliError(
      `--app-port ${opts.appPort}: another process already listens on 127.0.0.1:${opts.appPort}, ` +
        'so the app could not take it and the mesh would send its requests to that process; ' +
        'stop it or give the app (and --app-port) a free port',
    );
  const sidecar = await Sidecar.start(opts);
  const { outbound } = sidecar.addresses();
  const proxy = `http://${outbound.host.includes(':') ? `[${outbound.host}]` : outbound.host}:${outbound.port}`;
  const noProxy = 'localhost,127.0.0.1,::1';
  const [file, args] = withParentDeathSignal(command);
  const app: ChildProcess = spawn(file, args, {
    stdio: 'inherit',
    env: {
      // The app gets no credential of the sidecar's: not its join token, not an admin token.
      ...withoutCredentials(process.env),
      HTTP_PROXY: proxy,
      http_proxy: proxy,
      WEFT_OUTBOUND: proxy,
      NO_PROXY: noProxy,
      no_proxy: noProxy,
    },
  });
  const appExit = new Promise<number>((resolve) => {
    app.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + signalNumber(signal) : 1)));
    app.once('error', (e) => {
      opts.logger.error({ err: e.message, command: command[0] }, 'could not start the app');
      resolve(127);
    });
  });

  let finishing: Promise<never> | undefined;
  const finish = (stopApp: boolean): Promise<never> =>
    (finishing ??= (async () => {
      await sidecar.shutdown();
      if (stopApp && app.exitCode === null && app.signalCode === null) {
        app.kill('SIGTERM');
        const killer = setTimeout(() => app.kill('SIGKILL'), opts.drainTimeoutMs);
        await appExit;
        clearTimeout(killer);
      }
      const code = await appExit;
      await sidecar.close();
      process.exit(code);
    })());
  process.on('SIGTERM', () => void finish(true));
  process.on('SIGINT', () => void finish(true));
  void appExit.then(() => finish(false));
  // After the handlers: whoever reads the addresses may signal at once. (The app, started a
  // moment ago, has not written anything yet.)
  printAddresses(sidecar);

  // However this process ends (an uncaught error included), the app must not outlive it.
  process.once('exit', () => {
    if (app.exitCode === null && app.signalCode === null) app.kill('SIGKILL');
  });

  try {
    await sidecar.waitForApp(appStartTimeoutMs(flags));
    await sidecar.register();
    console.log('ready');
  } catch (e) {
    if (finishing) return;
    // The app never came up (or registration failed for good): stop it, and fail. This is the
    // way out now: the app's exit, which follows, must not finish with the app's status instead.
    opts.logger.error({ err: (e as Error).message }, 'weft run: giving up');
    console.error(`error: ${(e as Error).message}`);
    finishing = (async () => {
      if (app.exitCode === null && app.signalCode === null) app.kill('SIGTERM');
      const killer = setTimeout(() => app.kill('SIGKILL'), opts.drainTimeoutMs);
      await appExit;
      clearTimeout(killer);
      await sidecar.close();
      process.exit(1);
    })();
    await finishing;
  }
}

/**
 * On Linux the app is started through util-linux's `setpriv --pdeathsig TERM` (it sets the
 * parent-death signal, then execs the app: same pid, same argv for the app). Then even a weft run
 * killed with SIGKILL, which can run no cleanup of its own, leaves no app behind: the kernel
 * sends the app SIGTERM. Elsewhere, or without setpriv, the app is started directly.
 */
function withParentDeathSignal(command: string[]): [string, string[]] {
  const setpriv =
    process.platform === 'linux'
      ? (process.env.PATH ?? '')
          .split(':')
          .filter((d) => d !== '')
          .map((d) => join(d, 'setpriv'))
          .find((p) => existsSync(p))
      : undefined;
  return setpriv ? [setpriv, ['--pdeathsig', 'TERM', '--', ...command]] : [command[0]!, command.slice(1)];
}

function withoutCredentials(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { WEFT_TOKEN: _token, WEFT_ADMIN_TOKEN: _admin, ...rest } = env;
  return rest;
}

function signalNumber(signal: NodeJS.Signals): number {
  return osConstants.signals[signal] ?? 0;
}
