// Endpoint picking for one cluster. Per-endpoint load state (active requests, peak-EWMA
// latency, totals) lives in EndpointStats, which outlives config swaps so that a new config
// keeps the load picture of the endpoints it shares with the old one.
//
// ROUND_ROBIN is nginx's smooth weighted round robin: exact weight ratios, and a heavy endpoint's
// turns are spread out rather than bunched. LEAST_REQUEST is Linkerd's power of two choices over
// cost = peak-EWMA latency × (active + 1) when weights are equal; with unequal weights it becomes
// Envoy's weighted least request — smooth weighted round robin over weight / cost — so that an
// idle cluster gets the configured ratios and a loaded or slow endpoint gets proportionally less.

import type { Endpoint, LbPolicy } from '../runtime-config.js';

/** Linkerd's default decay: a latency sample's influence halves in about 7 s. */
const EWMA_DECAY_MS = 10_000;
/**
 * Cost of an endpoint with no sample when no peer has answered either: below any real latency,
 * so an untried endpoint is preferred to one known to fail; among untried ones only active
 * requests tell them apart.
 */
const UNSAMPLED_COST_MS = 1;
/** A failed attempt's latency when the cluster has no connect timeout to measure it by. */
export const FAILURE_PENALTY_MS = 1_000;

export interface Outcome {
  ok: boolean;
  /** Time to response headers, when there was a response. */
  latencyMs?: number | undefined;
  /**
   * No response, through the endpoint's fault (connect refused, reset, timeout): counted as a
   * sample at least this slow, so that a dead endpoint — which fails fast — does not look like
   * the fastest one and win every comparison.
   */
  penaltyMs?: number | undefined;
}

export class EndpointStats {
  active = 0;
  total = 0;
  failures = 0;
  /** Peak-EWMA of time to response headers, ms; undefined until the first sample. */
  ewmaMs: number | undefined;
  /** The last sample was a failure's penalty, not a latency: no yardstick for new peers. */
  penalized = false;
  private lastSampleAt = 0;

  constructor(
    readonly host: string,
    readonly port: number,
  ) {}

  /** Call when a request is sent; returns the completion callback (call it exactly once). */
  begin(): (outcome: Outcome) => void {
    this.active++;
    this.total++;
    let done = false;
    return ({ ok, latencyMs, penaltyMs }) => {
      if (done) return;
      done = true;
      this.active--;
      if (!ok) this.failures++;
      if (latencyMs !== undefined) {
        this.observe(latencyMs);
        this.penalized = false;
      } else if (penaltyMs !== undefined) {
        this.observe(Math.max(penaltyMs, this.ewmaMs ?? 0));
        this.penalized = true;
      }
    };
  }

  /** Peak-EWMA: a slower sample is taken at once, faster ones decay in with time. */
  observe(latencyMs: number, now = performance.now()): void {
    if (this.ewmaMs === undefined || latencyMs > this.ewmaMs) this.ewmaMs = latencyMs;
    else {
      const w = Math.exp(-Math.max(0, now - this.lastSampleAt) / EWMA_DECAY_MS);
      this.ewmaMs = this.ewmaMs * w + latencyMs * (1 - w);
    }
    this.lastSampleAt = now;
  }

  /**
   * The latency estimate at `now`, decayed toward zero since the last sample (as Linkerd's and
   * tower's peak-EWMA): an endpoint penalised for failing is not shunned forever, it is probed
   * again once its estimate has decayed below its peers'.
   */
  estimate(now: number): number | undefined {
    if (this.ewmaMs === undefined) return undefined;
    return this.ewmaMs * Math.exp(-Math.max(0, now - this.lastSampleAt) / EWMA_DECAY_MS);
  }
}

export interface LbEndpoint {
  endpoint: Endpoint;
  stats: EndpointStats;
}

export interface LoadBalancer {
  /** Undefined when no endpoint is healthy. */
  pick(): LbEndpoint | undefined;
}

/** nginx's smooth weighted round robin over weights computed at each pick. */
class SmoothWeighted {
  private readonly current: number[];

  constructor(
    private readonly endpoints: LbEndpoint[],
    private readonly weightOf: (e: LbEndpoint) => number,
  ) {
    this.current = endpoints.map(() => 0);
  }

  pick(): LbEndpoint | undefined {
    let total = 0;
    let best = -1;
    for (let i = 0; i < this.endpoints.length; i++) {
      const w = this.weightOf(this.endpoints[i]!);
      total += w;
      this.current[i]! += w;
      if (best < 0 || this.current[i]! > this.current[best]!) best = i;
    }
    if (best < 0) return undefined;
    this.current[best]! -= total;
    return this.endpoints[best];
  }
}

export class RoundRobin implements LoadBalancer {
  private readonly smooth: SmoothWeighted;

  constructor(endpoints: LbEndpoint[]) {
    // Start at a random phase so many proxies restarted together do not all hit endpoint 0 first.
    this.smooth = new SmoothWeighted(endpoints, (e) => e.endpoint.weight);
    const skip = Math.floor(Math.random() * endpoints.length);
    for (let i = 0; i < skip; i++) this.smooth.pick();
  }

  pick(): LbEndpoint | undefined {
    return this.smooth.pick();
  }
}

export class LeastRequest implements LoadBalancer {
  private readonly weighted: SmoothWeighted | undefined;
  /** The time of the pick in progress, read by the weighted path's cost function. */
  private now = 0;

  constructor(
    private readonly endpoints: LbEndpoint[],
    private readonly random: () => number = Math.random,
  ) {
    const w0 = endpoints[0]?.endpoint.weight;
    const equal = endpoints.every((e) => e.endpoint.weight === w0);
    this.weighted = equal
      ? undefined
      : new SmoothWeighted(endpoints, (e) => e.endpoint.weight / this.cost(e));
  }

  /**
   * Latency estimate × (active + 1). An endpoint never sampled is assumed as fast as its
   * answering peers on average: tried, not flooded. Peers whose last word was a failure are
   * left out of that mean, else a new endpoint would look as bad as a dead one next to it.
   */
  cost(e: LbEndpoint): number {
    const est = e.stats.estimate(this.now) ?? this.peerMean();
    return est * (e.stats.active + 1);
  }

  // O(n), but only while some endpoint has never answered (just added, or never picked).
  private peerMean(): number {
    let sum = 0;
    let n = 0;
    for (const e of this.endpoints) {
      const v = e.stats.estimate(this.now);
      if (v !== undefined && !e.stats.penalized) {
        sum += v;
        n++;
      }
    }
    return n > 0 ? sum / n : UNSAMPLED_COST_MS;
  }

  pick(): LbEndpoint | undefined {
    this.now = performance.now();
    if (this.weighted) return this.weighted.pick();
    const n = this.endpoints.length;
    if (n <= 1) return this.endpoints[0];
    const i = Math.floor(this.random() * n);
    let j = Math.floor(this.random() * (n - 1));
    if (j >= i) j++; // two distinct candidates
    const a = this.endpoints[i]!;
    const b = this.endpoints[j]!;
    const ca = this.cost(a);
    const cb = this.cost(b);
    if (ca === cb) return this.random() < 0.5 ? a : b;
    return ca < cb ? a : b;
  }
}

/** Only healthy endpoints take part; an empty balancer picks nothing (→ 503). */
export function createLoadBalancer(
  policy: LbPolicy,
  endpoints: LbEndpoint[],
  random?: () => number,
): LoadBalancer {
  const healthy = endpoints.filter((e) => e.endpoint.healthy && e.endpoint.weight > 0);
  return policy === 'LEAST_REQUEST' ? new LeastRequest(healthy, random) : new RoundRobin(healthy);
}
