/*
 * chronos-training: the launcher of training runs on a Chronos foundation (docs/RUNS.md). Bundled by esbuild into
 * assets/cli/chronos-training.js (the package's `bin`); the library's index never imports it.
 */
import { agentPathCommand, listCommand, logsCommand, runCommand, statusCommand, stopCommand } from './commands';
import { Clients, CliError, createClients, errorCode, Io, packageVersion } from './context';

interface OptionSpec {
  readonly takesValue: boolean;
  readonly repeat?: boolean;
}

const GLOBAL: Record<string, OptionSpec> = {
  '--profile': { takesValue: true },
  '--region': { takesValue: true },
  '--env': { takesValue: true },
  '--help': { takesValue: false },
};

const COMMANDS: Record<string, { options: Record<string, OptionSpec>; usage: string }> = {
  'run': {
    options: {
      '--instance-types': { takesValue: true },
      '--image-id': { takesValue: true },
      '--spot': { takesValue: false },
      '--on-demand': { takesValue: false },
      '--spot-fallback': { takesValue: false },
      '--max-run-lifetime': { takesValue: true },
      '--env-var': { takesValue: true, repeat: true },
      '--name': { takesValue: true },
      '--max-attempts': { takesValue: true },
      '--on-demand-after-interruptions': { takesValue: true },
      '--detach': { takesValue: false },
      '--dir': { takesValue: true },
    },
    usage: `usage: chronos-training run --env ENV [options] -- COMMAND [ARG...]

Uploads the working directory (honouring .gitignore; content-addressed, so unchanged files are not sent again),
writes the run spec, launches an instance from the foundation's launch template and follows the run's logs.
Ctrl-C detaches (the run goes on); the run ID is printed on stdout.

options:
  --env ENV                           the foundation's environment (or CHRONOS_ENV)
  --instance-types a,b,c              instance types in order of preference (default: the template's)
  --image-id ami-…|resolve:ssm:NAME   the image: an AMI ID, or a Systems Manager parameter holding one, resolved by
                                      EC2 at launch; used instead of the template's image when it has one. Default:
                                      the template's image; when it has none, the AWS Deep Learning Base OSS Nvidia
                                      Driver GPU AMI (Amazon Linux 2023): resolve:ssm:/aws/service/deeplearning/ami/
                                      {x86_64|arm64}/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id
                                      (arm64 for Graviton types such as g5g)
  --spot | --on-demand | --spot-fallback
                                      spot only, on-demand only, or spot then on-demand (the default)
  --max-run-lifetime 2h|90m|1h30m     each attempt's lifetime, at most the foundation's (the default)
  --env-var KEY=VALUE                 an environment variable of the command (repeatable)
  --name NAME                         a human name, also the run ID's prefix
  --max-attempts N                    attempts after spot interruptions, while attached (default 3)
  --on-demand-after-interruptions N   switch to on-demand after N spot interruptions (default 2; needs on-demand allowed)
  --detach                            return once launched
  --dir DIR                           the working directory to upload (default: the current one)
  --profile, --region                 as in the AWS CLI`,
  },
  'logs': {
    options: { '--follow': { takesValue: false }, '-f': { takesValue: false } },
    usage: `usage: chronos-training logs RUN --env ENV [--follow]

Prints every attempt's logs (stdout on stdout; stderr and the agent's lines on stderr). --follow waits for more
until the run is over.`,
  },
  'status': {
    options: {},
    usage: `usage: chronos-training status [RUN] --env ENV

The run's state, attempt, instance, lifecycle, zone and age, from its status file and EC2. Without RUN: as list.`,
  },
  'list': {
    options: { '--limit': { takesValue: true } },
    usage: `usage: chronos-training list --env ENV [--limit N]

The environment's runs, newest first (default 20).`,
  },
  'stop': {
    options: { '--now': { takesValue: false } },
    usage: `usage: chronos-training stop RUN --env ENV [--now]

Asks the run's agent to stop (control.json): it drains, keeps its final checkpoint and logs, and ends as stopped.
--now also terminates the run's instances at once (no drain).`,
  },
  'agent-path': {
    options: { '--copy': { takesValue: true } },
    usage: `usage: chronos-training agent-path [--copy DEST]

Prints the path of the run agent (chronos_run_agent.py) shipped in this package, for a container image.
--copy DEST copies it to DEST (a file or a directory) and prints the copy's path: from the Python package's
console script, the printed path is in a temporary directory that is removed when the command exits.`,
  },
};

const USAGE = `usage: chronos-training COMMAND [options]

commands:
  run -- COMMAND...   launch a training run and follow it
  logs RUN            print a run's logs (--follow)
  status [RUN]        a run's state and instances
  list                the environment's runs
  stop RUN            stop a run (--now: terminate)
  agent-path          the path of the packaged run agent

Run chronos-training COMMAND --help for a command's options. --version prints the version.
Credentials and region: the standard AWS chain, --profile and --region as in the AWS CLI; AWS_ENDPOINT_URL is honoured.`;

interface Parsed {
  readonly options: Record<string, string[]>;
  readonly positionals: string[];
  readonly rest?: string[];
}

function parse(args: string[], specs: Record<string, OptionSpec>, command: string): Parsed {
  const options: Record<string, string[]> = {};
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') return { options, positionals, rest: args.slice(i + 1) };
    if (arg.startsWith('-') && arg !== '-') {
      const eq = arg.indexOf('=');
      const name = eq > 0 ? arg.slice(0, eq) : arg;
      const spec = specs[name];
      if (!spec) throw new CliError(`${command}: unknown option ${name} (see chronos-training ${command} --help)`, 2);
      let value = 'true';
      if (spec.takesValue) {
        if (eq > 0) value = arg.slice(eq + 1);
        else if (i + 1 < args.length) value = args[++i];
        else throw new CliError(`${command}: ${name} needs a value`, 2);
      } else if (eq > 0) {
        throw new CliError(`${command}: ${name} takes no value`, 2);
      }
      if (options[name] && !spec.repeat && spec.takesValue) throw new CliError(`${command}: ${name} is given twice`, 2);
      (options[name] ??= []).push(value);
    } else {
      positionals.push(arg);
    }
  }
  return { options, positionals };
}

function integer(parsed: Parsed, name: string): number | undefined {
  const v = parsed.options[name]?.[0];
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new CliError(`${name} '${v}' is not a whole number`, 2);
  return Number(v);
}

/** Dependencies of `main`, replaced in tests. */
export interface MainDeps {
  readonly clients?: (options: { profile?: string; region?: string }) => Clients;
  readonly io: Io;
  /** Seconds between polls (default 5). */
  readonly pollSeconds?: number;
}

/** Runs the command line `argv` (without node and the script); returns the exit code. Never throws. */
export async function main(argv: string[], deps: MainDeps): Promise<number> {
  const { io } = deps;
  try {
    const [command, ...args] = argv;
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      io.out(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    }
    if (command === '--version' || command === 'version') {
      io.out(`chronos-training ${packageVersion()}\n`);
      return 0;
    }
    const def = COMMANDS[command];
    if (!def) throw new CliError(`unknown command '${command}' (commands: ${Object.keys(COMMANDS).join(', ')})`, 2);
    const parsed = parse(args, { ...GLOBAL, ...def.options }, command);
    if (parsed.options['--help']) {
      io.out(`${def.usage}\n`);
      return 0;
    }
    if (command === 'agent-path') return agentPathCommand(io, parsed.options['--copy']?.[0]);
    const env = parsed.options['--env']?.[0] ?? process.env.CHRONOS_ENV;
    if (!env) throw new CliError(`${command}: --env ENV is needed (or CHRONOS_ENV)`, 2);
    const clients = (deps.clients ?? createClients)({ profile: parsed.options['--profile']?.[0], region: parsed.options['--region']?.[0] });
    const runArg = () => {
      if (parsed.positionals.length !== 1) throw new CliError(`${command}: give one run ID (see chronos-training ${command} --help)`, 2);
      return parsed.positionals[0];
    };
    const pollSeconds = deps.pollSeconds ?? (process.env.CHRONOS_POLL_SECONDS ? Number(process.env.CHRONOS_POLL_SECONDS) : undefined);
    switch (command) {
      case 'run': {
        const o = parsed.options;
        const markets = ['--spot', '--on-demand', '--spot-fallback'].filter(m => o[m]);
        if (markets.length > 1) throw new CliError(`run: ${markets.join(' and ')} contradict each other; choose one`, 2);
        const command_ = parsed.rest ?? parsed.positionals;
        if (parsed.rest && parsed.positionals.length > 0) throw new CliError(`run: unexpected ${parsed.positionals[0]} before --`, 2);
        return await runCommand(clients, io, {
          env,
          command: command_,
          instanceTypes: o['--instance-types']?.[0].split(',').map(s => s.trim()).filter(Boolean),
          imageId: o['--image-id']?.[0],
          market: markets[0]?.slice(2) as 'spot' | 'on-demand' | 'spot-fallback' | undefined,
          maxRunLifetime: o['--max-run-lifetime']?.[0],
          envVars: o['--env-var'],
          name: o['--name']?.[0],
          maxAttempts: integer(parsed, '--max-attempts'),
          onDemandAfterInterruptions: integer(parsed, '--on-demand-after-interruptions'),
          detach: Boolean(o['--detach']),
          dir: o['--dir']?.[0],
          pollSeconds,
        });
      }
      case 'logs':
        return await logsCommand(clients, io, { env, runId: runArg(), follow: Boolean(parsed.options['--follow'] || parsed.options['-f']), pollSeconds });
      case 'status':
        if (parsed.positionals.length === 0) return await listCommand(clients, io, { env });
        return await statusCommand(clients, io, { env, runId: runArg() });
      case 'list':
        return await listCommand(clients, io, { env, limit: integer(parsed, '--limit') });
      case 'stop':
        return await stopCommand(clients, io, { env, runId: runArg(), now: Boolean(parsed.options['--now']) });
      default:
        throw new CliError(`unknown command '${command}'`, 2);
    }
  } catch (e) {
    const message = e instanceof CliError ? e.message : describeError(e);
    io.err(`chronos-training: error: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
    return e instanceof CliError ? e.exitCode : 1;
  }
}

function describeError(e: unknown): string {
  const code = errorCode(e);
  const message = (e as Error)?.message ?? String(e);
  if (code === 'CredentialsProviderError' || /Could not load credentials/.test(message)) {
    return `no AWS credentials: ${message} (set a profile with --profile or AWS_PROFILE, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)`;
  }
  if (/Region is missing/i.test(message)) return 'no AWS region: pass --region or set AWS_REGION';
  return code && code !== 'Error' && !message.startsWith(code) ? `${code}: ${message}` : message;
}

/** The process's Io: stdout, stderr, real time, and Ctrl-C as a detach. */
export function processIo(): Io {
  const controller = new AbortController();
  let presses = 0;
  process.on('SIGINT', () => {
    presses++;
    if (presses > 1) process.exit(130);
    controller.abort();
  });
  return {
    out: text => process.stdout.write(text),
    err: text => process.stderr.write(text),
    // A Ctrl-C ends the wait at once (the timer would otherwise keep the process up to a poll longer).
    sleep: ms => new Promise(resolve => {
      const timer = setTimeout(resolve, ms);
      controller.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    }),
    now: () => new Date(),
    interrupted: controller.signal,
  };
}

if (require.main === module) {
  void main(process.argv.slice(2), { io: processIo() }).then(code => {
    process.exitCode = code;
  });
}
