// The programs the proxy bench compares against and drives: nginx, HAProxy, wrk, h2load and hey, from
// Debian's packages. Installed on first use, because the project's machines are laid anew and
// only the project's own files can bring them back.

import { execFileSync, spawnSync } from 'node:child_process';

const TOOLS = [
  { command: 'nginx', pkg: 'nginx-light' },
  { command: 'haproxy', pkg: 'haproxy' },
  { command: 'wrk', pkg: 'wrk' },
  { command: 'hey', pkg: 'hey' },
  { command: 'h2load', pkg: 'nghttp2-client' },
] as const;

function has(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

function run(command: string, args: string[]): void {
  console.log(`$ ${command} ${args.join(' ')}`);
  const r = spawnSync(command, args, {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (status ${r.status ?? r.signal})`);
}

/** Installs whatever is missing with apt-get (one update, one install); prints what it does. */
export function ensureTools(extra: ReadonlyArray<{ command: string; pkg: string }> = []): void {
  const missing = [...TOOLS, ...extra].filter((t) => !has(t.command));
  if (missing.length === 0) return;
  console.log(`missing ${missing.map((t) => t.command).join(', ')}: installing from Debian packages`);
  if (process.getuid?.() !== 0) {
    throw new Error(
      `run as root, or install them first: apt-get install -y --no-install-recommends ${missing.map((t) => t.pkg).join(' ')}`,
    );
  }
  run('apt-get', ['update']);
  run('apt-get', ['install', '-y', '--no-install-recommends', ...missing.map((t) => t.pkg)]);
  for (const t of missing) if (!has(t.command)) throw new Error(`${t.command} still missing after apt-get`);
}

function firstLine(command: string, args: string[], pattern: RegExp): string {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  const m = pattern.exec(`${r.stdout}\n${r.stderr}`);
  return m?.[1] ?? 'unknown';
}

/** Versions as the tools report them; hey has no version flag, so its Debian package's. */
export function toolVersions(): Record<string, string> {
  let hey = 'unknown';
  try {
    hey = execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'hey'], { encoding: 'utf8' }).trim();
  } catch {
    // not from a Debian package
  }
  return {
    nginx: firstLine('nginx', ['-v'], /nginx\/(\S+)/),
    haproxy: firstLine('haproxy', ['-v'], /version (\S+)/),
    wrk: firstLine('wrk', ['-v'], /wrk (\S+)/),
    h2load: firstLine('h2load', ['--version'], /nghttp2\/(\S+)/),
    hey: `${hey} (Debian package)`,
  };
}
