// One mutual-TLS connection to an inbound hop, as the handshake-rate client makes them: a full
// TLS 1.3 handshake (no session is ever offered for resumption) with a client certificate, then
// one HTTP/1.1 GET with `Connection: close`, read until the server closes. Also the start-up
// check that an inbound hop is mTLS: it must serve a client with a certificate from its CA, and
// refuse one without a certificate and one with a certificate from another CA.

import tls from 'node:tls';
import { uriSans } from '../../src/ca/spiffe-id.js';

/** Where an inbound hop listens and how a client it accepts connects (plain data: it is sent to worker threads). */
export interface TlsTarget {
  host: string;
  port: number;
  /** SNI, as the variant's outbound hop sends it. */
  servername: string;
  /** The Host header of the request. */
  hostHeader: string;
  /** The SPIFFE ID the inbound hop's certificate must carry. */
  serverId: string;
  /** The roots the server is verified against, and the client's certificate and key. */
  caPem: string;
  certPem: string;
  keyPem: string;
  /** The response body's size. */
  bodyBytes: number;
}

export interface Negotiated {
  protocol: string;
  suite: string;
  group: string;
}

export type Outcome = { ok: true; negotiated: Negotiated } | { ok: false; error: string; status?: number };

/** A context with the client's credentials, made once and shared by every connection. */
export function clientContext(t: Pick<TlsTarget, 'caPem' | 'certPem' | 'keyPem'>): tls.SecureContext {
  return tls.createSecureContext({
    ca: t.caPem,
    cert: t.certPem,
    key: t.keyPem,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
  });
}

function negotiated(socket: tls.TLSSocket): Negotiated {
  const key = socket.getEphemeralKeyInfo();
  return {
    protocol: socket.getProtocol() ?? 'unknown',
    suite: socket.getCipher().standardName,
    group: (key && 'name' in key ? key.name : undefined) ?? 'unknown',
  };
}

/** A TLS alert by its RFC 8446 name (`certificate_required`), other errors by their code. */
function errorName(e: NodeJS.ErrnoException): string {
  const alert = /^ERR_SSL_TLSV1[0-9]?_ALERT_(\w+)$/.exec(e.code ?? '');
  return alert ? `TLS alert ${alert[1]!.toLowerCase()}` : (e.code ?? e.message);
}

/** Whether `data` holds a whole HTTP/1.1 response of `bodyBytes` with status 200, or what it holds instead. */
function judge(
  data: Buffer,
  bodyBytes: number,
): { ok: true } | { ok: false; error: string; status?: number } {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0)
    return { ok: false, error: data.length === 0 ? 'closed without a response' : 'truncated response head' };
  const head = data.subarray(0, end).toString('latin1');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(head);
  if (!status) return { ok: false, error: `not an HTTP/1.x response: ${JSON.stringify(head.slice(0, 40))}` };
  if (status[1] !== '200') return { ok: false, error: `HTTP ${status[1]}`, status: Number(status[1]) };
  const got = data.length - end - 4;
  return got === bodyBytes ? { ok: true } : { ok: false, error: `${got} body bytes, not ${bodyBytes}` };
}

/**
 * One connection, one request. `context` undefined: no client certificate (the refusal check);
 * the server's certificate is then still verified, against `target.caPem`. The outcome is
 * judged when the connection ends, however it ends: a whole 200 response is a success even if
 * the server reset the connection after it.
 */
export function oneRequest(
  target: TlsTarget,
  context: tls.SecureContext | undefined,
  timeoutMs = 10_000,
): Promise<Outcome> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let done = false;
    let info: Negotiated | undefined;
    const settle = (why: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const r = judge(Buffer.concat(chunks), target.bodyBytes);
      if (r.ok && info) resolve({ ok: true, negotiated: info });
      // A TLS alert or a reset says more than "no response".
      else if (!r.ok && r.status === undefined && why !== 'end') resolve({ ok: false, error: why });
      else resolve(r.ok ? { ok: false, error: 'no handshake' } : r);
    };
    const socket = tls.connect({
      host: target.host,
      port: target.port,
      servername: target.servername,
      ALPNProtocols: ['http/1.1'],
      ...(context ? { secureContext: context } : { ca: target.caPem, minVersion: 'TLSv1.3' }),
      checkServerIdentity: (_name, cert) => {
        const ids = uriSans(cert);
        return ids.includes(target.serverId)
          ? undefined
          : new Error(`the server presented ${ids.join(', ') || 'no SPIFFE ID'}, not ${target.serverId}`);
      },
    });
    const timer = setTimeout(() => settle(`no end within ${timeoutMs} ms`), timeoutMs);
    socket.setNoDelay(true);
    socket.once('secureConnect', () => {
      info = negotiated(socket);
      socket.write(`GET / HTTP/1.1\r\nHost: ${target.hostHeader}\r\nConnection: close\r\n\r\n`);
    });
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.once('error', (e: NodeJS.ErrnoException) => settle(errorName(e)));
    // With Connection: close the server closes after the response.
    socket.once('end', () => settle('end'));
    socket.once('close', () => settle('closed without a FIN'));
  });
}

export interface MtlsProof {
  /** What a client with Node's defaults negotiated with the inbound hop. */
  negotiated: Negotiated;
  /** How the hop refused a client without a certificate (a TLS alert or an HTTP status). */
  withoutCertificate: string;
  /** How it refused a client whose certificate is from another CA. */
  untrustedCertificate: string;
}

/**
 * Proves an inbound hop is mutual TLS: served with a trusted client certificate, refused
 * without one and with an untrusted one (nginx answers 400 after the handshake; a refusal in the
 * handshake ends with a TLS alert). Throws if either is served.
 */
export async function proveMtls(
  name: string,
  target: TlsTarget,
  stranger: { certPem: string; keyPem: string },
): Promise<MtlsProof> {
  const good = await oneRequest(target, clientContext(target));
  if (!good.ok)
    throw new Error(`${name}: the inbound hop refused a trusted client certificate: ${good.error}`);
  const refusal = async (what: string, context: tls.SecureContext | undefined): Promise<string> => {
    const r = await oneRequest(target, context);
    if (r.ok) throw new Error(`${name}: the inbound hop served a client ${what}; it is not mutual TLS`);
    return r.error;
  };
  return {
    negotiated: good.negotiated,
    withoutCertificate: await refusal('without a certificate', undefined),
    untrustedCertificate: await refusal(
      'with a certificate from another CA',
      clientContext({ certPem: stranger.certPem, keyPem: stranger.keyPem, caPem: target.caPem }),
    ),
  };
}
