/** What each `reefer-bridge` subcommand provides to the command line in `cli.ts`. */
export interface SubcommandIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env: Record<string, string | undefined>;
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM); long-running services close then. */
  stopRequested: Promise<string>;
}

export interface BridgeSubcommand {
  /** One line for `reefer-bridge --help`. */
  summary: string;
  /** Runs the subcommand with the arguments after its name; resolves to the exit code. */
  run(argv: readonly string[], io: SubcommandIo): Promise<number>;
}
