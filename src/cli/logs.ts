import { S3Client } from '@aws-sdk/client-s3';
import { Io } from './context';
import { getText, keys, listKeys, pad } from './runs';

export const STREAMS = ['stdout', 'stderr', 'agent'] as const;

/**
 * Prints the log chunks of a run as they appear (`{env}/logs/{runId}/{attempt}/{stream}/{chunk}.log`): stdout to
 * stdout, stderr and the agent's lines to stderr (the agent's prefixed `[agent]`). Within an attempt, chunks are
 * printed in the order of their numbers, the streams of one number together.
 */
export class LogPrinter {
  /** The last key printed, per `{attempt}/{stream}`. */
  private readonly last = new Map<string, string>();

  constructor(private readonly s3: S3Client, private readonly bucket: string, private readonly env: string,
    private readonly runId: string, private readonly io: Io) {}

  /** The attempts that have logs, in order. */
  public async attempts(): Promise<number[]> {
    const all = await listKeys(this.s3, this.bucket, keys.logs(this.env, this.runId));
    const prefix = keys.logs(this.env, this.runId);
    const numbers = new Set(all.map(k => Number(k.slice(prefix.length).split('/')[0])).filter(n => Number.isInteger(n) && n > 0));
    return [...numbers].sort((a, b) => a - b);
  }

  /** Prints the chunks of `attempt` not printed yet; returns how many. */
  public async printNew(attempt: number): Promise<number> {
    const found: Array<{ key: string; stream: string; chunk: number }> = [];
    for (const stream of STREAMS) {
      const prefix = `${keys.logs(this.env, this.runId)}${pad(attempt, 3)}/${stream}/`;
      const id = `${attempt}/${stream}`;
      const after = this.last.get(id);
      for (const key of await listKeys(this.s3, this.bucket, prefix, after)) {
        const chunk = Number(key.slice(prefix.length).replace(/\.log$/, ''));
        found.push({ key, stream, chunk: Number.isFinite(chunk) ? chunk : 0 });
      }
    }
    found.sort((a, b) => a.chunk - b.chunk || STREAMS.indexOf(a.stream as any) - STREAMS.indexOf(b.stream as any));
    for (const f of found) {
      const text = (await getText(this.s3, this.bucket, f.key)) ?? '';
      if (f.stream === 'stdout') this.io.out(text);
      else if (f.stream === 'stderr') this.io.err(text);
      else this.io.err(text.split('\n').map((l, i, all) => (l === '' && i === all.length - 1 ? '' : `[agent] ${l}`)).join('\n'));
      const id = `${attempt}/${f.stream}`;
      if (!this.last.has(id) || this.last.get(id)! < f.key) this.last.set(id, f.key);
    }
    return found.length;
  }
}
