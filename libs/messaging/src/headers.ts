/** Header names longtail sets on JetStream messages, beside the server's `Nats-*` headers. */
export const LongtailHeaders = {
  EventType: 'Longtail-Event-Type',
  EventVersion: 'Longtail-Event-Version',
  /** Why a message was dead-lettered: the handler's last error or the contract violation. */
  DlqReason: 'Longtail-Dlq-Reason',
  /** Stream the dead-lettered message came from. */
  DlqStream: 'Longtail-Dlq-Stream',
  /** Its sequence in that stream (decimal). */
  DlqSeq: 'Longtail-Dlq-Seq',
  /** Its original subject. */
  DlqSubject: 'Longtail-Dlq-Subject',
  /** The durable consumer that gave up on it. */
  DlqDurable: 'Longtail-Dlq-Durable',
  /** How many times it had been delivered. */
  DlqDeliveries: 'Longtail-Dlq-Deliveries',
} as const;

/** `dlq.<stream>.<durable>`: one dead-letter subject per consumer, all in the DLQ stream. */
export function deadLetterSubject(stream: string, durable: string): string {
  return `dlq.${stream}.${durable}`;
}

/** Header values are one line of printable text; a reason is cut to fit. */
export function headerValue(text: string, max = 1024): string {
  const line = text.replace(/[\r\n\t]+/g, ' ').replace(/[^\x20-\x7e]/g, '?');
  return line.length > max ? `${line.slice(0, max - 3)}...` : line;
}
