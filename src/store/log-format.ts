// The file store's on-disk log format, and the scanner that decides, record by record, whether a
// log is ours, intact, torn at the tail by a crash (safe to cut: never acknowledged) or damaged
// (refuse to open). Layout, all integers little-endian:
//
//   header  = "WEFTLOG\n" (8 bytes) | u32 format version
//   record  = u32 payload length | u32 crc32(payload) | payload (UTF-8 JSON)
//   payload = {"k":"snapshot","state":…}   only as the first record, after a compaction
//           | {"k":"batch","entries":[…]}  one group commit: everything one write made durable
//
// One record per write matters: a crash can only tear the last write, so a torn write is always
// the last record, and a bad record followed by more data can only be damage.
import { crc32 } from 'node:zlib';
import { WeftError } from '../errors.js';
import { parseEntry, parseSnapshot, type LogEntry, type SnapshotData } from './log-entry.js';

export const LOG_FILE = 'weft-store.log';
export const MAGIC = Buffer.from('WEFTLOG\n', 'latin1');
export const FORMAT_VERSION = 1;
export const HEADER_SIZE = MAGIC.length + 4;
const FRAME_SIZE = 8;

export type LogPayload = { k: 'batch'; entries: LogEntry[] } | { k: 'snapshot'; state: SnapshotData };

export function encodeHeader(): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(b, 0);
  b.writeUInt32LE(FORMAT_VERSION, MAGIC.length);
  return b;
}

export function encodeRecord(payload: LogPayload): Buffer {
  const body = Buffer.from(JSON.stringify(payload), 'utf8');
  const frame = Buffer.alloc(FRAME_SIZE);
  frame.writeUInt32LE(body.length, 0);
  frame.writeUInt32LE(crc32(body), 4);
  return Buffer.concat([frame, body]);
}

export interface ScannedRecord {
  offset: number;
  payload: LogPayload;
}

export interface ScanResult {
  records: ScannedRecord[];
  /** Where the intact log ends; anything after it is a torn final write. */
  validEnd: number;
  tornBytes: number;
}

const REMEDY =
  'Restore the data directory from a backup, or move the file away to start with an empty store ' +
  '(the control plane then needs every resource applied again).';

function corrupt(file: string, offset: number, what: string): WeftError {
  return new WeftError(
    'WEFT_E_STORE_CORRUPT',
    `store log ${file} is damaged at byte offset ${offset}: ${what}. ${REMEDY}`,
  );
}

function foreign(file: string, what: string): WeftError {
  return new WeftError(
    'WEFT_E_STORE_FOREIGN',
    `${file} is not a Weft store log this build can read: ${what}. If the data directory is wrong, point ` +
      'Weft at the right one; if the file belongs to something else, move it out of the data directory.',
  );
}

function parsePayload(body: Buffer): LogPayload {
  const x: unknown = JSON.parse(body.toString('utf8'));
  if (typeof x === 'object' && x !== null) {
    const p = x as Record<string, unknown>;
    if (p.k === 'batch' && Array.isArray(p.entries) && p.entries.length > 0) {
      return { k: 'batch', entries: p.entries.map(parseEntry) };
    }
    if (p.k === 'snapshot') return { k: 'snapshot', state: parseSnapshot(p.state) };
  }
  throw new Error('not a batch or snapshot record');
}

/** Checks a whole log file's bytes. Throws WEFT_E_STORE_FOREIGN / WEFT_E_STORE_CORRUPT. */
export function scanLog(buf: Buffer, file: string): ScanResult {
  const head = buf.subarray(0, MAGIC.length);
  if (!MAGIC.subarray(0, head.length).equals(head)) {
    throw foreign(file, `it does not start with the Weft store magic "WEFTLOG"`);
  }
  if (buf.length < HEADER_SIZE) {
    // We create logs whole (temp file, fsync, rename), so a short header is damage, not a crash.
    throw corrupt(file, buf.length, `the ${HEADER_SIZE}-byte header is cut short`);
  }
  const version = buf.readUInt32LE(MAGIC.length);
  if (version !== FORMAT_VERSION) {
    throw foreign(
      file,
      `its format version is ${version}, this build reads version ${FORMAT_VERSION} (a newer Weft wrote it?)`,
    );
  }
  const records: ScannedRecord[] = [];
  let off = HEADER_SIZE;
  while (off < buf.length) {
    if (off + FRAME_SIZE > buf.length) break; // torn frame header
    const len = buf.readUInt32LE(off);
    const end = off + FRAME_SIZE + len;
    if (end > buf.length) break; // torn payload
    const body = buf.subarray(off + FRAME_SIZE, end);
    if (crc32(body) !== buf.readUInt32LE(off + 4)) {
      if (end === buf.length) break; // the final write, torn inside (e.g. unwritten pages)
      throw corrupt(file, off, 'a record fails its checksum and more records follow it');
    }
    let payload: LogPayload;
    try {
      payload = parsePayload(body);
    } catch (err) {
      throw corrupt(file, off, `a record with a valid checksum does not decode (${(err as Error).message})`);
    }
    if (payload.k === 'snapshot' && off !== HEADER_SIZE) {
      throw corrupt(file, off, 'a snapshot record appears after the start of the log');
    }
    records.push({ offset: off, payload });
    off = end;
  }
  return { records, validEnd: off, tornBytes: buf.length - off };
}
