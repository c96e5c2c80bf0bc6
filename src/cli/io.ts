/** What a command needs from the process, passed in so it can be tested. */
export interface CommandIo {
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/** Exit codes as `kubectl diff`: no changes, changes, error. */
export const EXIT = { noChanges: 0, changes: 1, error: 2 } as const;
