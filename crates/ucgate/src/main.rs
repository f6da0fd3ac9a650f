//! The `ucgate` binary: command line, logging, signals. Everything else is
//! in the library (`ucgate::run`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ucgate::config::{Config, LogFormat};
use ucgate::logging::{eprint_line, print_line};
use ucgate::{Control, Listeners};

const EXAMPLES: &str = "\
Examples:
  ucgate                                  run on the embedded default (127.0.0.1:5290, admin 127.0.0.1:9280)
  ucgate run --config /etc/ucgate/ucgate.toml
  ucgate run --config ucgate.toml --log-format json
  ucgate check-config /etc/ucgate/ucgate.toml
  ucgate completions bash > /etc/bash_completion.d/ucgate
  curl -s http://127.0.0.1:9280/metrics

Signals: SIGTERM/SIGINT drain and exit 0 (a second one exits at once with 1);
SIGHUP reloads TLS certificates.
Documentation: docs/config.md (every key), docs/metrics.md (every metric).";

#[derive(Parser, Debug)]
#[command(name = "ucgate", version, about = "Web-transport gateway for unified communications: WebSocket and BOSH in front of TCP, XMPP and SIP services.", after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the gateway (the default command).
    Run(RunArgs),
    /// Check a configuration file: exit 0 if valid, else print every error and exit 1.
    CheckConfig {
        /// The TOML file to check.
        file: PathBuf,
    },
    /// Print a shell completion script (e.g. `ucgate completions bash > /etc/bash_completion.d/ucgate`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) of `ucgate` or of one of its commands, as packaged in man1.
    #[command(hide = true)]
    Manpage {
        /// The command (`run`, `check-config`, `completions`); the main page without it.
        command: Option<String>,
    },
}

#[derive(Args, Debug, Clone, Default)]
struct RunArgs {
    /// Configuration file (TOML). Without it, the embedded default is used.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log format (overrides `log.format`).
    #[arg(long, value_enum, value_name = "FORMAT")]
    log_format: Option<LogFormatArg>,
    /// Log filter, e.g. `info` or `ucgate=debug` (overrides `log.level`; RUST_LOG overrides both).
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum LogFormatArg {
    Human,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig { file }) => check_config(&file),
        Some(Command::Completions { shell }) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "ucgate", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Some(Command::Manpage { command }) => manpage(command.as_deref()),
        Some(Command::Run(args)) => run(args),
        None => run(cli.run),
    }
}

/// Writes the roff manual page of `ucgate`, or of `ucgate COMMAND`, to stdout.
fn manpage(command: Option<&str>) -> ExitCode {
    let cmd = <Cli as clap::CommandFactory>::command();
    let page = match command {
        None => clap_mangen::Man::new(cmd),
        Some(name) => match cmd.find_subcommand(name) {
            Some(sub) => clap_mangen::Man::new(sub.clone()).title(format!("ucgate-{name}")),
            None => {
                eprint_line(&format!("ucgate manpage: no command `{name}`"));
                return ExitCode::from(2);
            }
        },
    };
    let mut out = Vec::new();
    if page.render(&mut out).is_err() {
        return ExitCode::from(1);
    }
    use std::io::Write;
    let _ = std::io::stdout().write_all(&out);
    ExitCode::SUCCESS
}

fn check_config(file: &std::path::Path) -> ExitCode {
    match Config::load(file) {
        Ok(c) => {
            print_line(&format!(
                "{}: OK ({} route{}, listen {}, admin {})",
                file.display(),
                c.routes.len(),
                if c.routes.len() == 1 { "" } else { "s" },
                c.server.listen,
                c.admin.listen
            ));
            for line in c.describe_certificates() {
                print_line(&line);
            }
            for w in &c.warnings {
                eprint_line(w);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprint_line(&e.to_string());
            for w in &e.warnings {
                eprint_line(w);
            }
            eprint_line(&format!(
                "{}: {} error{}",
                file.display(),
                e.errors.len(),
                if e.errors.len() == 1 { "" } else { "s" }
            ));
            ExitCode::from(1)
        }
    }
}

fn run(args: RunArgs) -> ExitCode {
    let config = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprint_line(&e.to_string());
                eprint_line("ucgate: the configuration has errors; nothing was started");
                return ExitCode::from(2);
            }
        },
        None => Config::embedded_default(),
    };
    let format = match args.log_format {
        Some(LogFormatArg::Json) => LogFormat::Json,
        Some(LogFormatArg::Human) => LogFormat::Human,
        None => config.log.format,
    };
    let level = args
        .log_level
        .clone()
        .unwrap_or_else(|| config.log.level.clone());
    let _log = ucgate::logging::init(format, &level, config.log.access);
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if config.server.worker_threads > 0 {
        builder.worker_threads(config.server.worker_threads);
    }
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprint_line(&format!("ucgate: cannot start the runtime: {e}"));
            return ExitCode::from(1);
        }
    };
    rt.block_on(async move {
        let source = args
            .config
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "<embedded default>".into());
        let listeners = match Listeners::bind(&config).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("{e:#}");
                return ExitCode::from(1);
            }
        };
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            config = %source,
            listen = %listeners.main_addr(),
            admin = %listeners.admin_addr(),
            "ucgate starting"
        );
        let control = Control::new();
        spawn_signal_handlers(control.clone());
        match ucgate::run(config, listeners, control).await {
            Ok(()) => {
                tracing::info!("ucgate stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!("{e:#}");
                ExitCode::from(1)
            }
        }
    })
}

fn spawn_signal_handlers(control: Control) {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        let mut stopping = false;
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading certificates");
                    control.reload.notify_one();
                    continue;
                }
            };
            if stopping {
                tracing::warn!(signal = name, "second signal: exiting at once");
                std::process::exit(1);
            }
            stopping = true;
            tracing::info!(
                signal = name,
                "shutting down gracefully (send again to exit at once)"
            );
            control.shutdown.cancel();
        }
    });
}
