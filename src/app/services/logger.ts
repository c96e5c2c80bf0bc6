/** The logging Sluice's services use: fixed messages, details in an object (pino's signature). */
export interface Logger {
  info: (details: Record<string, unknown>, message: string) => void;
  warn: (details: Record<string, unknown>, message: string) => void;
  error: (details: Record<string, unknown>, message: string) => void;
}
