/**
 * The session protocol on agentd's side, without the socket: newline-delimited JSON in, requests
 * checked against the contract's schemas, responses out. Pure apart from the handlers it calls.
 */
import {
  SESSION_MAX_LINE,
  type SessionRequest,
  sessionRequestSchema,
  type SessionResponse,
} from '../core/agents/agentContract';
import type { ExecStepResult } from './execStep';
import type { CommandStatus } from './supervisor';

/** Splits a byte stream into lines; a line longer than the limit ends the session (`'too-long'`). */
export class LineReader {
  private pending: Buffer[] = [];
  private pendingLength = 0;

  constructor(private readonly maxLine: number = SESSION_MAX_LINE) {}

  push(chunk: Buffer): string[] | 'too-long' {
    const lines: string[] = [];
    let start = 0;
    for (let newline = chunk.indexOf(0x0a); newline !== -1; newline = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, newline);
      if (this.pendingLength + piece.length > this.maxLine) return 'too-long';
      // Split on the byte, decode the whole line: a UTF-8 character is never cut in two.
      lines.push(Buffer.concat([...this.pending, piece]).toString('utf8').replace(/\r$/, ''));
      this.pending = [];
      this.pendingLength = 0;
      start = newline + 1;
    }
    const rest = chunk.subarray(start);
    // An empty rest (the chunk ended with a newline) adds nothing: no length, an empty piece.
    if (this.pendingLength + rest.length > this.maxLine) return 'too-long';
    this.pending.push(Buffer.from(rest));
    this.pendingLength += rest.length;
    return lines;
  }
}

export type ParsedLine =
  | { readonly request: SessionRequest }
  /** Answerable: the line had a usable id. */
  | { readonly id: number; readonly error: string }
  /** Not even an id: the session is closed after the error. */
  | { readonly fatal: string };

const isId = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value >= 0;

export function parseRequestLine(line: string): ParsedLine {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return { fatal: 'a request must be one JSON object per line' };
  }
  const parsed = sessionRequestSchema.safeParse(json);
  if (parsed.success) return { request: parsed.data };
  const id = typeof json === 'object' && json !== null ? (json as { id?: unknown }).id : undefined;
  const problems = parsed.error.issues
    .slice(0, 3)
    .map((issue) => (issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message))
    .join('; ');
  if (!isId(id)) return { fatal: `invalid request: ${problems}` };
  return { id, error: `invalid request: ${problems}` };
}

export interface SessionHandlers {
  status(): CommandStatus;
  /** Starts the command (idempotent); throws if it cannot. */
  start(): CommandStatus;
  exec(request: Extract<SessionRequest, { op: 'exec' }>): Promise<ExecStepResult>;
}

const statusFields = (status: CommandStatus): Omit<SessionResponse, 'id' | 'ok'> => ({
  state: status.state,
  command: [...status.command],
  ...(status.pid !== undefined ? { pid: status.pid } : {}),
  ...(status.exitCode !== undefined ? { exitCode: status.exitCode } : {}),
  ...(status.signal !== undefined ? { signal: status.signal } : {}),
});

export async function answer(request: SessionRequest, handlers: SessionHandlers): Promise<SessionResponse> {
  const { id } = request;
  try {
    switch (request.op) {
      case 'status':
        return { id, ok: true, ...statusFields(handlers.status()) };
      case 'start':
        return { id, ok: true, ...statusFields(handlers.start()) };
      case 'exec':
        return { id, ...(await handlers.exec(request)) };
    }
  } catch (error) {
    return { id, ok: false, error: (error as Error).message };
  }
}

export const encodeResponse = (response: SessionResponse): string => `${JSON.stringify(response)}\n`;
