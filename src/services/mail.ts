import type { Database } from "../db/client";
import { outbox } from "../db/schema";
import type { Env } from "../env";
import { newId } from "../lib/ids";

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
}

/** Everything that sends mail goes through this one interface. */
export interface Mailer {
  send(message: MailMessage): Promise<void>;
}

/** Keeps mail in D1 for a developer to read (GET /api/v1/dev/outbox); nothing leaves the machine. */
export class OutboxMailer implements Mailer {
  constructor(private readonly db: Database) {}
  async send(message: MailMessage): Promise<void> {
    await this.db.insert(outbox).values({ id: newId("mail"), ...message });
  }
}

/** Sends through Cloudflare's send_email binding (Email Service), from MAIL_FROM. */
export class CloudflareMailer implements Mailer {
  constructor(
    private readonly binding: SendEmail,
    private readonly from: string,
  ) {}
  async send(message: MailMessage): Promise<void> {
    await this.binding.send({ from: { name: "Berth", email: this.from }, to: message.to, subject: message.subject, text: message.text });
  }
}

/** The transport MAIL_TRANSPORT names; config.ts refuses to serve with one that cannot work. */
export function createMailer(env: Pick<Env, "MAIL_TRANSPORT" | "MAIL" | "MAIL_FROM">, db: Database): Mailer {
  if (env.MAIL_TRANSPORT === "outbox") return new OutboxMailer(db);
  if (env.MAIL_TRANSPORT === "cloudflare" && env.MAIL && env.MAIL_FROM) return new CloudflareMailer(env.MAIL, env.MAIL_FROM);
  throw new Error(`MAIL_TRANSPORT "${env.MAIL_TRANSPORT}" is not usable here`);
}
