/** A problem in a file of a checkout: the file (relative to the checkout), the 1-based line, and what is wrong. */
export interface SourceProblem {
  file: string;
  line: number;
  message: string;
  /**
   * Set when the document is not a Kubernetes object at all (no apiVersion or kind, or not a
   * map) or is not YAML: a lenient render skips such files rather than failing on them.
   */
  reason?: "not-an-object" | "invalid-yaml";
}

/** An error about a place in a checkout; it keeps the file and line so every surface can point at them. */
export class SourceError extends Error {
  /** The file the error is about, relative to the checkout. */
  readonly file: string;
  /** The 1-based line in that file, or 0 when the whole file is meant. */
  readonly line: number;
  /** The message without the location prefix. */
  readonly detail: string;

  constructor(problem: SourceProblem, options?: ErrorOptions) {
    super(formatProblem(problem), options);
    this.name = "SourceError";
    this.file = problem.file;
    this.line = problem.line;
    this.detail = problem.message;
  }

  /** The error as a plain problem record. */
  toProblem(): SourceProblem {
    return { file: this.file, line: this.line, message: this.detail };
  }
}

/** Formats a problem the way compilers do: `file:line: message`. */
export function formatProblem(problem: SourceProblem): string {
  return problem.line > 0 ? `${problem.file}:${problem.line}: ${problem.message}` : `${problem.file}: ${problem.message}`;
}

/** The message of an unknown thrown value. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A YAML parser error reduced to its first sentence, so no source text (which may hold a secret) is echoed. */
export function yamlErrorMessage(message: string): string {
  const first = message.split("\n", 1)[0] ?? message;
  // The parser recurses once per level: a document nested thousands deep exhausts the stack.
  if (first.includes("Maximum call stack size exceeded"))
    return "it nests too deeply to read (the parser ran out of stack); Kubernetes objects nest a few dozen levels at most";
  return first.replace(/ at line \d+, column \d+:?$/, "").trim();
}
