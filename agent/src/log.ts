/** The agent's log: plain lines for people, JSON lines for collectors (`--log-format`). Never secrets. */
export type LogFormat = "plain" | "json";
export type Level = "debug" | "info" | "warn" | "error";
export type Fields = Record<string, unknown>;

const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
}

function plainValue(v: unknown): string {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return /[\s"=]/.test(s) ? JSON.stringify(s) : s;
}

export function createLogger(format: LogFormat, minimum: Level = "info", out: NodeJS.WritableStream = process.stderr): Logger {
  const write = (level: Level, msg: string, fields: Fields = {}) => {
    if (ORDER[level] < ORDER[minimum]) return;
    const time = new Date().toISOString();
    if (format === "json") {
      out.write(`${JSON.stringify({ time, level, msg, ...fields })}\n`);
    } else {
      const extra = Object.entries(fields)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${plainValue(v)}`)
        .join(" ");
      out.write(`${time} ${level.toUpperCase().padEnd(5)} ${msg}${extra ? ` ${extra}` : ""}\n`);
    }
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
  };
}
