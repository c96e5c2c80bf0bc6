import { SourceError, type SourceProblem } from "../core/errors.ts";

/** Why a renderer run failed, apart from what it said about the files. */
export type RenderFailure = "timeout" | "output-limit" | "memory-limit" | "exit" | "missing-tool" | "spawn";

/** A renderer that could not produce objects; names the file and line when the tool said them. */
export class RenderError extends SourceError {
  /** What kind of failure this was. */
  readonly failure: RenderFailure;

  constructor(problem: SourceProblem, failure: RenderFailure, options?: ErrorOptions) {
    super(problem, options);
    this.name = "RenderError";
    this.failure = failure;
  }
}
