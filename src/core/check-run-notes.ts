import { CHECK_RUN_TEXT_LIMIT, prefixWithin, utf8Length } from "./markdown.ts";

/** A check run's output as its webhook gave it. */
export interface CheckRunOutput {
  title: string;
  summary: string;
  text?: string;
}

/** A check run's output with a line added to its summary: the summary cut (in bytes) to keep within GitHub's limit, the text kept. */
export function withNote(output: CheckRunOutput, line: string): CheckRunOutput {
  const summary = prefixWithin(output.summary, CHECK_RUN_TEXT_LIMIT - utf8Length(line) - 2);
  return { ...output, summary: `${summary}\n\n${line}` };
}
