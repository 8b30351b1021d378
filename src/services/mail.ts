import type { Database } from "../db/client";
import { outbox } from "../db/schema";
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

export function createMailer(transport: string, db: Database): Mailer {
  if (transport === "outbox") return new OutboxMailer(db);
  throw new Error(`Unknown MAIL_TRANSPORT "${transport}"`);
}
